// What a stream segment cost its provider when the provider never said (docs/metrics.md "Tokens of a broken or
// continued stream"): a segment that broke mid-answer reports no usage, yet its provider billed the prompt and what
// it generated. One estimate for the record's attempt (`tokens_total`), the budgets and /stats (recorder.ts).
import { countTextTokens } from "../limits/token-estimate.ts";
import type { SegmentEnd, TokenUsage } from "../streaming/relay-types.ts";

/**
 * The gateway's estimate of a segment's usage: the prompt it was sent plus the text and reasoning it delivered (for a
 * replay, with the repeated start it generated and the gateway dropped), counted with the gateway's tokenizer.
 * Undefined when the provider reported usage, when the segment succeeded (a success without a report stays unknown,
 * as for any answer), and when it delivered nothing and was not continued (a failure before any output). Before
 * 2026-12-06 its reasoning was not counted: a stream cut while it reasoned was charged no output at all.
 */
export function estimatedSegmentUsage(
  end: SegmentEnd,
  promptTokens: number,
  generatedBeforeText = "",
): TokenUsage | undefined {
  if (end.usage !== undefined || end.outcome === "success") return undefined;
  const reasoning = end.reasoning ?? "";
  if (end.text === "" && reasoning === "" && end.isContinued !== true) return undefined;
  const generated = end.text === "" ? "" : generatedBeforeText + end.text;
  return { promptTokens, completionTokens: countGenerated(generated, reasoning) };
}

/** Text and reasoning are counted apart, as the estimated usage chunk counts each piece (estimated-usage.ts). */
function countGenerated(text: string, reasoning: string): number {
  return countTextTokens(text) + (reasoning === "" ? 0 : countTextTokens(reasoning));
}

/**
 * A continuation segment's estimate: as estimatedSegmentUsage, and also when it ended the answer without a usage
 * report (most providers that send no usage chunk). Its provider billed its prompt (a prefill's holding the delivered
 * text) and what it generated as surely as a broken segment's did: without this, `llm_gateway_tokens_total`, /stats
 * and the record's attempt counted nothing for the deployment that finished the answer, only the broken segment's
 * estimate. Text past `max_retained_stream_chars` is not kept, so not counted.
 */
export function estimatedContinuationUsage(
  end: SegmentEnd,
  promptTokens: number,
  generatedBeforeText: string,
): TokenUsage | undefined {
  if (end.usage !== undefined) return undefined;
  if (end.outcome !== "success") return estimatedSegmentUsage(end, promptTokens, generatedBeforeText);
  return { promptTokens, completionTokens: countGenerated(generatedBeforeText + end.text, end.reasoning ?? "") };
}
