// What a stream segment's budgets are charged when it ends (the recorder's settlement). Pure.
import type { SegmentEnd, TokenUsage } from "../streaming/relay-types.ts";

/**
 * What a stream segment's budgets are charged when it ends: its reported usage; else, when it broke (or, being a
 * continuation, finished the answer) without a report, the estimate its record attempt carries (segment-usage.ts).
 * The segment's reservation (its prompt's calibrated estimate, plus `max_tokens` when counted) stays the floor, as for
 * any stream that did not say what it used (docs/limits.md "Streams"), except for a segment another deployment
 * continued (the first one, or a continuation that broke too): the rest of the answer, and its own reservation, are
 * the next segment's, so it is charged what it produced. A continuation's reservation counts the original prompt
 * only, not a prefill's delivered text: the estimate covers it. Undefined: the reservation stays charged (a first
 * segment's success without a usage report, a failure before any output).
 */
export function segmentCharge(
  end: SegmentEnd,
  reservedTokens: number,
  estimated: TokenUsage | undefined,
): number | undefined {
  if (end.usage !== undefined) return end.usage.promptTokens + end.usage.completionTokens;
  if (estimated === undefined) return undefined;
  const estimatedTokens = estimated.promptTokens + estimated.completionTokens;
  return end.isContinued === true ? estimatedTokens : Math.max(reservedTokens, estimatedTokens);
}
