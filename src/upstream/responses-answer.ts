// A native Responses provider's JSON answer (`responses_api: native`), checked as a chat answer is (json-attempt.ts
// missingAnswer): one the Responses door cannot give its client is a `bad_response`, and the next candidate is tried.
import { isRecord } from "../is-record.ts";

/** The upstream path of a native Responses call (server/responses-adapter.ts). */
const RESPONSES_PATH = "/responses";

/**
 * What a native Responses answer lacks to be one, or undefined (any other endpoint's): an `output` list of items, each
 * an object, a message's `content` a list of parts (objects). Passed on, the door's translation threw on it (a 500
 * `internal_error`) or refused it (a 502 that tried no other candidate), the attempt counted a success.
 */
export function missingResponsesOutput(json: Record<string, unknown>, endpointPath: string): string | undefined {
  if (endpointPath !== RESPONSES_PATH) return undefined;
  const output = json.output;
  if (!Array.isArray(output)) return "no `output` array";
  for (const item of output) {
    if (!isRecord(item)) return "an `output` item that is not an object";
    if (item.type === "message" && !(Array.isArray(item.content) && item.content.every(isRecord))) {
      return "an `output` message whose `content` is not a list of parts";
    }
  }
  return undefined;
}
