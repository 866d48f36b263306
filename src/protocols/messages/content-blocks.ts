// The content blocks of a Messages request as Anthropic's API checks them: each is an object with a string `type`,
// one of those its place takes (a user turn's, an assistant's, a system turn's, a tool result's), and a problem is
// told with its position first, dotted (`messages.3.content.2: ...`), as Anthropic's errors are.
import type { z } from "zod";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { formatPath, openAiProblemText, type ProblemText, validateAt } from "../validate.ts";

type Path = readonly PropertyKey[];
export type Block = { readonly type: string; readonly [field: string]: unknown };

/** Anthropic's position of a field: `messages.3.content.2` (its API's errors start with it). */
export function anthropicPath(path: Path): string {
  return path.map(String).join(".");
}

/**
 * A problem inside the body's structure (a message, a block, a tool) reads as Anthropic's do, the position first:
 * `messages.3.content.2.source: ...`. Top-level fields keep the gateway's own wording (`max_tokens` is required ...).
 */
export const anthropicProblemText: ProblemText = (param, path, detail) =>
  path.length >= 2 ? `${anthropicPath(path)}: ${detail}` : openAiProblemText(param, path, detail);

/** `value` checked against `schema`, a problem told at its position as Anthropic's API tells it. */
export function check<T extends z.ZodType>(schema: T, value: unknown, path: Path): z.infer<T> {
  return validateAt(schema, value, path, anthropicProblemText);
}

/** A value the gateway cannot translate (not an invalid one): a 400 `unsupported_value` naming it. */
export function unsupported(message: string, path: Path): InvalidRequestError {
  return new InvalidRequestError(message, { param: formatPath(path), code: "unsupported_value" });
}

/** The block types each place takes, as they are listed to a client who sent another. */
export const USER_BLOCKS = ["text", "image", "document", "search_result", "tool_result"] as const;
export const ASSISTANT_BLOCKS = ["text", "tool_use"] as const;
export const TEXT_BLOCKS = ["text"] as const;
export const TOOL_RESULT_BLOCKS = ["text", "image", "document", "search_result"] as const;

function typeList(types: readonly string[]): string {
  const quoted = types.map((type) => `\`${type}\``);
  return quoted.length === 1 ? (quoted[0] ?? "") : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/**
 * `value`, the block at `path`, if it is an object with a string `type`; else a 400 naming its position and the types
 * accepted there. (Whether that type is one of them is the caller's `switch`.)
 */
export function blockAt(value: unknown, path: Path, accepted: readonly string[]): Block {
  const expected = `a content block is an object whose \`type\` is ${typeList(accepted)}.`;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidBlock(`${anthropicPath(path)}: Input should be an object: ${expected}`, path);
  }
  const { type } = value as { type?: unknown };
  if (type === undefined) {
    throw invalidBlock(`${anthropicPath(path)}: Unable to extract tag using discriminator 'type': ${expected}`, path);
  }
  if (typeof type !== "string") {
    throw invalidBlock(`${anthropicPath([...path, "type"])}: Input should be a valid string: ${expected}`, [
      ...path,
      "type",
    ]);
  }
  return value as Block;
}

export function invalidBlock(message: string, path: Path): InvalidRequestError {
  return new InvalidRequestError(message, { param: formatPath(path), code: "invalid_value" });
}

/** A block whose type is not taken at `path` (its switch's default). */
export function unsupportedBlock(
  block: Block,
  path: Path,
  accepted: readonly string[],
  what = "Content blocks",
): InvalidRequestError {
  return new InvalidRequestError(
    `${anthropicPath(path)}: ${what} of type \`${block.type.slice(0, 64)}\` are not supported; use ${typeList(accepted)}.`,
    { param: formatPath([...path, "type"]), code: "unsupported_value" },
  );
}
