// A precompiled check of the common chat body, ahead of zod's chatBodySchema (request-body.ts): zod's parse of the
// bench's two-message body was ~6 µs of a JSON request's CPU under load (bench/README.md, section 39); this is a
// fraction of that. It only ever accepts: a body it is not sure of (any field out of its plain form, `models`, an
// `undefined` a door's translation left) goes to zod, which decides and words the 400. What it accepts comes out as
// zod's output would, key order and copies included: the upstream body, the cache key and the request log read the
// same bytes whichever path a request took (chat-body-check.test.ts compares the two).

import { chatBodyProblem, dropEmptyTools } from "../protocols/chat-message-rules.ts";

/** chatBodySchema's own fields, in its order: zod's output lists them first, then the rest in the client's order. */
const CHAT_FIELDS = [
  "model",
  "models",
  "messages",
  "stream",
  "max_tokens",
  "max_completion_tokens",
  "tools",
  "n",
  "x_gateway_reasoning_effort",
] as const;
const CHAT_FIELD_SET: ReadonlySet<string> = new Set(CHAT_FIELDS);

/** Not sure: zod decides. */
const UNSURE = Symbol("unsure");

/**
 * The body as chatBodySchema would return it, or undefined when zod must look (it may still accept). `body` is a
 * non-null, non-array object (parseBody checked).
 */
export function quickChatBody(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const field of CHAT_FIELDS) {
    if (!Object.hasOwn(body, field)) {
      // Required: zod words the 400.
      if (field === "model" || field === "messages") return undefined;
      continue;
    }
    const value = checkedField(field, body[field]);
    if (value === UNSURE) return undefined;
    out[field] = value;
  }
  for (const key of Object.keys(body)) {
    // An own `__proto__` (a batch line's JSON.parse keeps one): assigned, it would become the copy's prototype, and its
    // unchecked `models` or `max_tokens` would be read as the body's. zod leaves it out.
    if (key === "__proto__") return undefined;
    if (!CHAT_FIELD_SET.has(key)) out[key] = body[key];
  }
  // The reference's rules on roles, contents and tools (protocols/chat-message-rules.ts): a body they refuse is zod's to
  // word; an empty `tools` it drops, as zod's transform does.
  if (chatBodyProblem(out.messages as unknown[], out.tools, out.tool_choice) !== undefined) return undefined;
  return dropEmptyTools(out);
}

function checkedField(field: (typeof CHAT_FIELDS)[number], value: unknown): unknown {
  switch (field) {
    case "model":
      return typeof value === "string" && value !== "" ? value : UNSURE;
    case "messages":
      return messagesOf(value);
    case "stream":
      // `null` is "not streamed": dropped to undefined (request-body.ts streamField), the key kept as zod keeps it.
      return value === true || value === false ? value : value === null ? undefined : UNSURE;
    case "max_tokens":
    case "max_completion_tokens":
    case "n":
      return value === null || (Number.isSafeInteger(value) && (value as number) > 0) ? value : UNSURE;
    case "tools":
      return Array.isArray(value) ? [...value] : UNSURE;
    case "x_gateway_reasoning_effort":
      return typeof value === "string" && value !== "" ? value : UNSURE;
    default:
      // `models` (fallback names): rare, and its own arrayOf's output is zod's to make.
      return UNSURE;
  }
}

/** Each message copied with `role` first, as zod's loose object copies it; anything but an object with a role: unsure. */
function messagesOf(value: unknown): unknown[] | typeof UNSURE {
  if (!Array.isArray(value) || value.length === 0) return UNSURE;
  const messages: unknown[] = [];
  for (const message of value as unknown[]) {
    if (typeof message !== "object" || message === null || Array.isArray(message)) return UNSURE;
    const { role } = message as { role?: unknown };
    if (typeof role !== "string") return UNSURE;
    const copy: Record<string, unknown> = { role };
    for (const key of Object.keys(message)) {
      if (key === "__proto__") return UNSURE;
      if (key !== "role") copy[key] = (message as Record<string, unknown>)[key];
    }
    messages.push(copy);
  }
  return messages;
}
