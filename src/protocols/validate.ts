// Validates a protocol's request (or one nested part of it) with a zod schema; the first problem becomes a 400
// whose `param` names the field the way OpenAI does (`input[2].content[0].text`).
import type { z } from "zod";
import { InvalidRequestError } from "../errors/gateway-error.ts";

export { arrayOf } from "../zod-arrays.ts";

/**
 * How a problem found at `path` reads. OpenAI's doors: ``Invalid `input[2].content`: <detail>`` (`param` names the
 * field too); the Messages door gives Anthropic's dotted position instead (request-mapping.ts).
 */
export type ProblemText = (param: string, path: readonly PropertyKey[], detail: string) => string;

export const openAiProblemText: ProblemText = (param, _path, detail) =>
  detail.startsWith("`") || param === "" ? detail : `Invalid \`${param}\`: ${detail}`;

export function validateBody<T extends z.ZodType>(
  schema: T,
  body: unknown,
  problemText: ProblemText = openAiProblemText,
): z.infer<T> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new InvalidRequestError("The request body must be a JSON object.", { code: "invalid_body" });
  }
  return validateAt(schema, body, [], problemText);
}

/** Validates `value`, found at `path` in the request body. */
export function validateAt<T extends z.ZodType>(
  schema: T,
  value: unknown,
  path: readonly PropertyKey[],
  problemText: ProblemText = openAiProblemText,
): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const fullPath = [...path, ...(issue?.path ?? [])];
  const param = formatPath(fullPath);
  const detail = issue?.message ?? "Invalid request body.";
  throw new InvalidRequestError(problemText(param, fullPath, detail), {
    param: param === "" ? null : param,
    code: "invalid_value",
  });
}

/** A value chat providers cannot serve (a built-in tool, an input item type), at `path` in the request body. */
export function unsupportedAt(message: string, path: readonly PropertyKey[]): InvalidRequestError {
  return new InvalidRequestError(message, { param: formatPath(path), code: "unsupported_value" });
}

/** `["input", 2, "content"]` -> `input[2].content`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else if (typeof key === "string") text += text === "" ? key : `.${key}`;
  }
  return text;
}
