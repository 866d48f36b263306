// What a stream segment's budgets are charged when it ends (the recorder's settlement). Pure.
import { traitsOf } from "../errors/outcomes.ts";
import type { Reservation } from "../limits/budgets.ts";
import type { RequestRecord } from "../observability/request-record.ts";
import type { SegmentEnd, TokenUsage } from "../streaming/relay-types.ts";
import type { AttemptReport } from "../upstream/forward-types.ts";

/**
 * What a stream segment's budgets are charged when it ends: its reported usage; else (an upstream gateway's usage
 * marked `usage_estimated` is no report: SegmentEnd.isUsageEstimated, charged as this gateway's own estimate is), when
 * it broke (or, being a
 * continuation, finished the answer; or, being the first, ended the answer on a door that estimates usage) without a
 * report, the estimate its record attempt carries (segment-usage.ts). The segment's reservation (its prompt's
 * calibrated estimate, plus `max_tokens` when counted) stays the floor, as for any stream that did not say what it used
 * (docs/limits.md "Streams"): without a report the gateway cannot tell what its provider counted (a `max_tokens` it
 * counted at admission, a tokenizer above the estimate), so a first segment that ended the answer unreported is charged
 * its estimate only when that is more (until 2026-12-07 it kept its reservation, its answer uncounted); except for a
 * segment another deployment continued (the first one, or a continuation that broke too): the rest of the answer, and
 * its own reservation, are the next segment's, so it is charged what it produced. A continuation's reservation counts
 * the original prompt only, not a prefill's delivered text: the estimate covers it. Undefined: the reservation stays
 * charged (a first segment's success without a usage report or an estimate, a failure before any output). An abandoned
 * segment (isAbandoned: the client left, a replay diverged) is charged its estimate without the floor: its prompt,
 * which its provider counted as it arrived, plus what it generated (segment-usage.ts; never undefined for a
 * continuation without a report: until 2026-12-06 one that generated nothing was charged 0, as if it had never been
 * sent).
 */
export function segmentCharge(
  end: SegmentEnd,
  reservedTokens: number,
  estimated: TokenUsage | undefined,
  isFirst: boolean,
): number | undefined {
  if (end.usage !== undefined && end.isUsageEstimated !== true)
    return end.usage.promptTokens + end.usage.completionTokens;
  // An upstream gateway's estimate (its own upstream reported nothing) says no more of what the provider counted than
  // this gateway's would: until 2026-12-07 it was charged as a report, without the reservation's floor.
  const estimate = end.usage ?? estimated;
  if (estimate === undefined) return undefined;
  const estimatedTokens = estimate.promptTokens + estimate.completionTokens;
  if (isAbandoned(end, isFirst)) return estimatedTokens;
  return end.isContinued === true ? estimatedTokens : Math.max(reservedTokens, estimatedTokens);
}

/**
 * A segment the gateway hung up on: its client left (the first segment or a continuation, also as one opened; the
 * gateway's exit and a client that read nothing until `max_stream_duration_ms` end it the same way), or a replay that
 * diverged before it added anything to the client's answer. The gateway aborts its upstream request at once, and a
 * provider stops generating when its connection closes: the output its reservation counted (the rest of `max_tokens`)
 * was never generated. One whose upstream broke it (a cut, a stall, an error event), before its first output or after,
 * keeps its reservation as its floor: nobody hung up on its provider, which may have generated on for nobody, and what
 * the client got from it says nothing of that (until 2026-12-06 a continuation that broke before its first output was
 * charged without the floor). Before 2026-12-07 a first segment whose client left kept its reservation as its floor
 * while a continuation the client left did not (before 2026-12-06 both kept it). Unless the client left while the
 * relay waited for it to read (SegmentEnd.isLeftUnread): its upstream was not read meanwhile, and what its provider
 * generated then, billed, may have waited unread in the connection's buffers, which the estimate does not count. It
 * keeps its reservation as its floor (without it, a client that stopped reading and left was charged only what the
 * gateway had read: test/e2e/unread-stream-charges.test.ts).
 */
function isAbandoned(end: SegmentEnd, isFirst: boolean): boolean {
  if (end.outcome === "client_aborted") return end.isLeftUnread !== true;
  return !isFirst && end.hasAddedNothing === true && traitsOf(end.outcome).blames === "none";
}

/**
 * What a JSON answer's budgets are charged: its usage; when that is an estimate (AttemptReport.isUsageEstimated: no
 * upstream reported any and this gateway estimated it, or an upstream gateway marked its own `usage_estimated`), the
 * estimate never below the reservation, as for a stream without a report (segmentCharge above): nobody can tell what
 * the provider counted (a `max_tokens` counted at admission, a tokenizer above the estimate). Until 2026-12-07 an
 * upstream gateway's estimate was charged as a report, without the floor. 0: the reservation stays (no usage, audio
 * bytes).
 */
export function answerCharge(report: AttemptReport, reservation: Reservation): number {
  const total = (report.usage?.promptTokens ?? 0) + (report.usage?.completionTokens ?? 0);
  return report.isUsageEstimated === true ? Math.max(total, reservation.tokens) : total;
}

/**
 * What a request charged to its client's budgets (client-budget.ts) is charged when it ends: the tokens it used (the
 * estimate when an answer came without a count; the reservation when it counted none), plus what its failed attempts
 * stay charged to their deployments (RecordedAttempt.chargedTokens: the prompts its providers took in before it was
 * abandoned). Until 2026-12-07 those prompts were not counted: a request that timed out after its send, or whose client
 * left, cost its client 0 while its provider's budget kept the prompt. Unserved, its successful attempts are an
 * embeddings batch's chunks answered before one failed (embeddings-chunks.ts): their usage stays charged too.
 */
export function clientCharge(record: RequestRecord, reservedTokens: number): number {
  const used = record.tokensIn + record.tokensOut;
  const chunks = record.attempts.filter((attempt) => attempt.outcome === "success");
  const chunksUsed = chunks.reduce((sum, attempt) => sum + (attempt.tokensIn ?? 0) + (attempt.tokensOut ?? 0), 0);
  const answered = record.servedBy === undefined ? chunksUsed : used > 0 ? used : reservedTokens;
  return record.attempts.reduce((sum, attempt) => sum + (attempt.chargedTokens ?? 0), answered);
}
