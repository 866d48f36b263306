// What a stream segment cost its provider when the provider never said (docs/metrics.md "Tokens of a broken or
// continued stream"): a segment that broke mid-answer reports no usage, yet its provider billed the prompt and what
// it generated. One estimate for the record's attempt (`tokens_total`), the budgets and /stats (recorder.ts).
import { countTextTokens } from "../limits/token-estimate.ts";
import type { SegmentEnd, TokenUsage } from "../streaming/relay-types.ts";

/**
 * The gateway's estimate of a first segment's usage: `promptTokens`, the prompt it was sent as its deployment counts it
 * (calibrated: the figure its reservation and the client's estimated usage start from), plus what it generated: the
 * text and reasoning it delivered and the text the gateway dropped (a replay's repeated start, a diverging event),
 * counted with the gateway's tokenizer, the reasoning it dropped (generatedReasoning), and its tool calls, refusals and
 * other choices (countGenerated). A success the provider reported no usage for is the relay's estimate of the whole
 * answer (SegmentEnd.estimatedUsage: the record's totals, so every book agrees; until 2026-12-07 such a stream counted 0
 * everywhere when its client had not asked for usage, and its budget kept only its reservation). Undefined when the
 * provider reported usage, for a success no estimate was made for (not a chat stream of a door that estimates usage),
 * and when it generated nothing and was not continued (a failure before any output). Before 2026-12-06 its reasoning
 * was not counted: a stream cut while it reasoned was charged no output at all.
 */
export function estimatedSegmentUsage(end: SegmentEnd, promptTokens: number): TokenUsage | undefined {
  if (end.usage !== undefined) return undefined;
  if (end.outcome === "success") return end.estimatedUsage;
  const hasGenerated =
    generatedText(end) !== "" || generatedReasoning(end) !== "" || end.otherOutputTokens !== undefined;
  if (!hasGenerated && end.isContinued !== true) return undefined;
  return { promptTokens, completionTokens: countGenerated(end) };
}

/**
 * Text and reasoning are counted apart, as the estimated usage chunk counts each piece (estimated-usage.ts), plus the
 * tokens the relay counted of the rest (tool calls, refusals, the other choices: SegmentEnd.otherOutputTokens; before
 * 2026-12-06 left out, so a segment of tool calls only that broke was charged no output).
 */
function countGenerated(end: SegmentEnd): number {
  const reasoning = generatedReasoning(end);
  return (
    countTextTokens(generatedText(end)) +
    (reasoning === "" ? 0 : countTextTokens(reasoning)) +
    (end.otherOutputTokens ?? 0)
  );
}

/**
 * A continuation segment's estimate, whenever it reported no usage: also when it ended the answer (most providers that
 * send no usage chunk), and when it generated nothing. Its provider billed its prompt (a prefill's holding the
 * delivered text) and what it generated as surely as a broken segment's did: without this, `llm_gateway_tokens_total`,
 * /stats and the record's attempt counted nothing for the deployment that finished the answer, only the broken
 * segment's estimate. A continuation is a stream that opened (its upstream took the request and answered), so its
 * prompt counts even with no output (a replay whose fresh answer was only a finish, then abandoned): its provider's
 * token window counted that prompt as it arrived, and a charge of 0 (until 2026-12-06) let its budget admit more than
 * the provider would. Text past `max_retained_stream_chars` is not kept, so not counted.
 */
export function estimatedContinuationUsage(end: SegmentEnd, promptTokens: number): TokenUsage | undefined {
  if (end.usage !== undefined) return undefined;
  return { promptTokens, completionTokens: countGenerated(end) };
}

/**
 * The reasoning the segment's upstream generated: what it delivered and what the gateway dropped (a continuation's
 * thinking again before its first output, a replay's). Before 2026-12-06 the dropped part was not counted: a
 * continuation that reasoned and broke before its first text was charged no output.
 */
function generatedReasoning(end: SegmentEnd): string {
  return (end.droppedReasoning ?? "") + (end.reasoning ?? "");
}

/** What the segment's upstream generated of the first choice's text: what it delivered after what was dropped. */
function generatedText(end: SegmentEnd): string {
  return (end.droppedText ?? "") + end.text;
}
