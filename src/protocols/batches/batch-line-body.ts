// A batch line's body, parsed when the line runs (checkBatchInput only scanned it), under the JSON door's rule on
// prototype keys: JSON.parse makes a `__proto__` key an own member, which a copy by assignment took as its prototype.
import { isSuspectJson, prototypeKeyRefusal } from "../prototype-keys.ts";
import type { BatchLine } from "./batch-objects.ts";

/**
 * The checked line's `body` (checkBatchInput found it a JSON object there). Throws the door's 400 `invalid_value` for a
 * body with a `__proto__` key or a `constructor` holding `prototype` in any object (prototype-keys.ts), as the door
 * refuses such a body; its paths are the body's, as the door's are. A line without either word is not walked.
 */
export function lineBody(input: Buffer, line: BatchLine): Record<string, unknown> {
  const text = input.toString("utf8", line.start, line.end);
  const parsed = JSON.parse(text) as { body: Record<string, unknown> };
  const refusal = isSuspectJson(text) ? prototypeKeyRefusal(parsed.body) : undefined;
  if (refusal !== undefined) throw refusal;
  return parsed.body;
}
