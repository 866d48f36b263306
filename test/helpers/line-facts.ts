// The oracle of the line-scan tests (src/protocols/batches/line-scan*.test.ts): what the batch validation read of a
// line before line-scan.ts, the scanner that now reads it without building the line's object.
import { isRecord } from "../../src/is-record.ts";
import type { ScannedLine } from "../../src/protocols/batches/line-scan.ts";
import { jsonShapeOverBounds } from "../../src/protocols/json-shape.ts";

const NONE = { customId: undefined, method: undefined, url: undefined, isBodyObject: false, model: undefined };

/**
 * The facts of a line's trimmed text: its shape against the bounds, then JSON.parse. `method` and `url` are only
 * compared with "POST" and an endpoint, so the scanner leaves long ones (over 256 bytes as written) unread: a value
 * longer than `maxComparedChars` counts as none here.
 */
export function parsedLineFacts(
  source: string,
  maxDepth: number,
  maxMembers: number,
  maxComparedChars: number,
): ScannedLine {
  const overBounds = jsonShapeOverBounds(source, maxDepth, maxMembers);
  if (overBounds !== undefined) return { overBounds, isJson: false, isObject: false, ...NONE };
  let parsed: unknown;
  try {
    parsed = JSON.parse(source) as unknown;
  } catch {
    return { overBounds, isJson: false, isObject: false, ...NONE };
  }
  if (!isRecord(parsed)) return { overBounds, isJson: true, isObject: false, ...NONE };
  const string = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
  const compared = (value: unknown): string | undefined =>
    typeof value === "string" && value.length <= maxComparedChars ? value : undefined;
  const body = parsed.body;
  return {
    overBounds,
    isJson: true,
    isObject: true,
    customId: string(parsed.custom_id),
    method: compared(parsed.method),
    url: compared(parsed.url),
    isBodyObject: isRecord(body),
    model: isRecord(body) ? string(body.model) : undefined,
  };
}
