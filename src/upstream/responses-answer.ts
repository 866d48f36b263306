// A native Responses provider's JSON answer (`responses_api: native`), checked as a chat answer is (json-attempt.ts
// missingAnswer): one the Responses door cannot give its client is a `bad_response`, and the next candidate is tried.
import { outputFault } from "../responses-items.ts";

/** The upstream path of a native Responses call (server/responses-adapter.ts). */
const RESPONSES_PATH = "/responses";

/**
 * What a native Responses answer lacks to be one, or undefined (any other endpoint's): an `output` list of items the
 * next turn's input takes (responses-items.ts, the rule a streamed answer's items are held to as well). Passed on, the
 * door's translation threw on it (a 500 `internal_error`) or refused it (a 502 that tried no other candidate), or the
 * answer was kept and joined its conversation as it came, so that every later turn of it was refused (a 400 naming
 * `conversation[n].name`), the attempt counted a success.
 */
export function missingResponsesOutput(json: Record<string, unknown>, endpointPath: string): string | undefined {
  if (endpointPath !== RESPONSES_PATH) return undefined;
  return outputFault(json.output);
}
