// Validates a protocol's request (or one nested part of it) with a zod schema; the first problem becomes a 400
// whose `param` names the field the way OpenAI does (`input[2].content[0].text`).
import { z } from "zod";
import { InvalidRequestError } from "../errors/gateway-error.ts";

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

/**
 * `z.array(element)` that stops at the first bad element. zod's own array checks every element and keeps an issue for
 * each, of which the client is shown one: 1,000,000 bad `messages` (a 2 MB body) held the event loop for 4.5 s and
 * more and took 700 MB, and nested arrays (content blocks inside messages) multiply it. The first bad element's
 * issues come out as zod's own would (path `[index, ...]`), so the 400 reads the same. `bounds` are the array's own
 * checks (its type error, `.min`, `.max`), made on `z.array(z.unknown())` and run before any element is looked at.
 */
export function arrayOf<T extends z.ZodType>(element: T, bounds: z.ZodArray<z.ZodUnknown> = z.array(z.unknown())) {
  return bounds.transform((items, context): z.output<T>[] => {
    const parsed: z.output<T>[] = [];
    for (let index = 0; index < items.length; index++) {
      // zod's own array runs its element this way (core's `_zod.run`, which `safeParse` wraps): the raw issues are
      // finished (messages made, error maps applied) by the top-level parse as if zod's array had found them, and no
      // result or error object is made per element (`safeParse` per element was 2 to 4 times slower).
      const result = element._zod.run({ value: items[index], issues: [] }, {});
      if (result instanceof Promise) throw new Error("arrayOf: an asynchronous element schema cannot be checked here");
      if (result.issues.length > 0) {
        for (const issue of result.issues) context.issues.push({ ...issue, path: [index, ...(issue.path ?? [])] });
        return z.NEVER;
      }
      parsed.push(result.value as z.output<T>);
    }
    return parsed;
  });
}
