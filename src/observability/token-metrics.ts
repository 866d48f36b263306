// What one request record adds to `llm_gateway_tokens_total`: the tokens each deployment produced or was charged, on
// that deployment, `source` reported or estimated (docs/metrics.md "Tokens of a broken or continued stream",
// "Estimated tokens"). The numbers /stats counts per deployment (pipeline/recorder.ts), from the same record.
import type { KnownNames } from "./live-state.ts";
import type { LabeledCounter } from "./metric-accumulators.ts";
import { oneOf } from "./metric-names.ts";
import type { RecordedAttempt, RequestRecord } from "./request-record.ts";

/** The token metrics' `source`: the provider's usage report, or the gateway's estimate where it reported none. */
export const REPORTED = "reported";
export const ESTIMATED = "estimated";

/**
 * `served`: the answering deployment's provider and upstream model labels. Failed attempts count their charge
 * (observeChargedTokens). The answer counts per attempt when its tokens are not all the answering deployment's
 * reported usage: a continued stream (each segment's own), and a stream that broke without a report (the client was
 * told no usage, the record's totals are 0, yet its provider billed the estimate its attempt carries); else the
 * record's totals on the answering deployment. A chunked embeddings batch counts per attempt too (each chunk's own).
 */
export function observeProviderTokens(
  tokens: LabeledCounter,
  record: RequestRecord,
  names: KnownNames,
  served: readonly [provider: string, upstreamModel: string],
): void {
  observeChargedTokens(tokens, record.attempts, names);
  // A chunked embeddings batch's chunks may each have been answered by another deployment: each counts its own
  // (before 2026-12-07, when every chunk reported usage, the batch's total went to the last chunk's deployment).
  const isPerAttempt = record.continuations.length > 0 || record.chunks !== undefined;
  if (isPerAttempt || record.attempts.some((attempt) => attempt.isUsageEstimated === true)) {
    observeSegmentTokens(tokens, record.attempts, names);
  } else if (record.servedBy !== undefined) {
    // An estimate the client was told (its upstream reported no usage) counts on the answering deployment too, as
    // `estimated`: what the client, the request log and the dashboard show is then in the provider's totals.
    const source = record.isUsageEstimated === true ? ESTIMATED : REPORTED;
    // Listed, not spread: a spread in an array literal walks an iterator per request.
    if (record.tokensIn > 0) tokens.inc(["in", served[0], served[1], source], record.tokensIn);
    if (record.tokensOut > 0) tokens.inc(["out", served[0], served[1], source], record.tokensOut);
  }
}

/**
 * A continued or broken stream's tokens, on the deployment that produced (and billed) each segment. The record's own
 * totals are what the client was told about the whole answer, and a prefill continuation's prompt held the delivered
 * text: counted on the first provider, they put the continuation's share on the wrong one. A segment that broke
 * without a usage report carries the gateway's estimate (RecordedAttempt.isUsageEstimated).
 */
function observeSegmentTokens(tokens: LabeledCounter, attempts: readonly RecordedAttempt[], names: KnownNames): void {
  for (const attempt of attempts) {
    // A failed attempt's tokens are its charge (observeChargedTokens).
    if (attempt.chargedTokens !== undefined) continue;
    const labels = [
      oneOf(attempt.provider, names.providers),
      oneOf(attempt.model, names.upstreamModels),
      attempt.isUsageEstimated === true ? ESTIMATED : REPORTED,
    ];
    if (attempt.tokensIn !== undefined && attempt.tokensIn > 0) tokens.inc(["in", ...labels], attempt.tokensIn);
    if (attempt.tokensOut !== undefined && attempt.tokensOut > 0) tokens.inc(["out", ...labels], attempt.tokensOut);
  }
}

/**
 * What failed attempts stay charged to their deployments' budgets (RecordedAttempt.chargedTokens: the prompt a
 * provider took in before the attempt timed out, broke or was abandoned; a Llama Guard moderation's answered calls),
 * on those deployments, as /stats counts it (pipeline/recorder.ts): the usage its calls reported as reported, the rest
 * (the prompt's estimate) as an estimated `in`. Until 2026-12-07 left out: the budgets counted tokens that no token
 * total showed.
 */
function observeChargedTokens(tokens: LabeledCounter, attempts: readonly RecordedAttempt[], names: KnownNames): void {
  for (const attempt of attempts) {
    const charged = attempt.chargedTokens;
    if (charged === undefined) continue;
    const provider = oneOf(attempt.provider, names.providers);
    const model = oneOf(attempt.model, names.upstreamModels);
    const reportedIn = attempt.tokensIn ?? 0;
    const reportedOut = attempt.tokensOut ?? 0;
    const source = attempt.isUsageEstimated === true ? ESTIMATED : REPORTED;
    if (reportedIn > 0) tokens.inc(["in", provider, model, source], reportedIn);
    if (reportedOut > 0) tokens.inc(["out", provider, model, source], reportedOut);
    const prompt = charged - reportedIn - reportedOut;
    if (prompt > 0) tokens.inc(["in", provider, model, ESTIMATED], prompt);
  }
}
