// A native Responses provider's JSON answer (`responses_api: native`), checked as a chat answer is (json-attempt.ts
// missingAnswer): one the Responses door cannot give its client is a `bad_response`, and the next candidate is tried.
import { isRecord } from "../is-record.ts";
import { MAX_NAMESPACE_CHARS } from "../responses-namespace.ts";

/** The roles a message item may have (OpenAI answers `assistant`; the next turn's input takes these). */
const MESSAGE_ROLES: ReadonlySet<string> = new Set(["assistant", "user", "system", "developer"]);

/** The upstream path of a native Responses call (server/responses-adapter.ts). */
const RESPONSES_PATH = "/responses";

/**
 * What a native Responses answer lacks to be one, or undefined (any other endpoint's): an `output` list of items, each
 * an object with a `type`, each read later as OpenAI's reference types it (itemFault). Passed on, the door's
 * translation threw on it (a 500 `internal_error`) or refused it (a 502 that tried no other candidate), or the answer
 * was kept and joined its conversation as it came, so that every later turn of it was refused (a 400 naming
 * `conversation[n].name`), the attempt counted a success.
 */
export function missingResponsesOutput(json: Record<string, unknown>, endpointPath: string): string | undefined {
  if (endpointPath !== RESPONSES_PATH) return undefined;
  const output = json.output;
  if (!Array.isArray(output)) return "no `output` array";
  for (const item of output) {
    if (!isRecord(item)) return "an `output` item that is not an object";
    const fault = itemFault(item);
    if (fault !== undefined) return fault;
  }
  return undefined;
}

/**
 * The fields of an item the gateway reads after the attempt (the kept conversation's chat messages, tool names
 * restored for the client, `output_text`, a conversation's items, the next turn's input), typed as OpenAI's Responses
 * reference gives them. Other item types (hosted tools' calls, reasoning, MCP) are read only where they are guarded,
 * so they pass as they come.
 */
function itemFault(item: Record<string, unknown>): string | undefined {
  if (typeof item.type !== "string") return "an `output` item with no `type`";
  switch (item.type) {
    case "message":
      // The next turn's input takes these roles only (request-schema.ts messageItemSchema): a message kept with none
      // made every later turn of its conversation a 400 naming `conversation[n].role`.
      if (typeof item.role !== "string" || !MESSAGE_ROLES.has(item.role)) {
        return "an `output` message whose `role` is not a message role";
      }
      if (!(Array.isArray(item.content) && item.content.every(isRecord))) {
        return "an `output` message whose `content` is not a list of parts";
      }
      return item.content.map(partFault).find((fault) => fault !== undefined);
    case "function_call":
      return callFault(item, "function_call", "arguments");
    case "custom_tool_call":
      return callFault(item, "custom_tool_call", "input");
    default:
      return undefined;
  }
}

/**
 * A call's `call_id`, `name` and arguments (`arguments` or a custom tool's `input`) are strings; `namespace` too when
 * given. `call_id`, `name` and `namespace` are not empty either, and `namespace` at most MAX_NAMESPACE_CHARS, as the
 * next turn's input requires of them (request-schema.ts): such a call was kept and joined its conversation, whose
 * every later turn was then a 400.
 */
function callFault(item: Record<string, unknown>, type: string, argumentsField: string): string | undefined {
  for (const field of ["call_id", "name", argumentsField]) {
    if (typeof item[field] !== "string") return `a \`${type}\` whose \`${field}\` is not a string`;
  }
  for (const field of ["call_id", "name"]) {
    if (item[field] === "") return `a \`${type}\` whose \`${field}\` is empty`;
  }
  if (item.namespace !== undefined && item.namespace !== null) {
    if (typeof item.namespace !== "string") return `a \`${type}\` whose \`namespace\` is not a string`;
    if (item.namespace === "" || item.namespace.length > MAX_NAMESPACE_CHARS) {
      return `a \`${type}\` whose \`namespace\` is empty or over ${MAX_NAMESPACE_CHARS} characters`;
    }
  }
  return undefined;
}

/**
 * A message part: a `type`, `output_text`'s `text` a string and its `annotations` a list (some compatible providers leave the
 * list out, or null it: taken), a `refusal`'s `refusal` a string. Other part types pass as they come.
 */
function partFault(part: Record<string, unknown>): string | undefined {
  // The next turn's input takes a part only with a type (request-schema.ts messageItemSchema): kept without one, every
  // later turn of its conversation was a 400 naming `conversation[n].content`.
  if (typeof part.type !== "string") return "an `output` message part with no `type`";
  if (part.type === "output_text") {
    if (typeof part.text !== "string") return "an `output_text` part whose `text` is not a string";
    if (part.annotations !== undefined && part.annotations !== null && !Array.isArray(part.annotations)) {
      return "an `output_text` part whose `annotations` is not a list";
    }
  }
  if (part.type === "refusal" && typeof part.refusal !== "string") {
    return "a `refusal` part whose `refusal` is not a string";
  }
  return undefined;
}
