// An embeddings batch larger than every candidate takes in one request (`max_inputs`, or a limit a refusal stated:
// Google's endpoint takes 100 inputs, Cohere's 96), sent in chunks: each chunk planned (and queued while nothing is
// free) and forwarded as a request of its own, reserved and charged on its deployment's budgets, failing over like any
// request; the vectors joined in the client's order with their `index` counted from the batch's start, the usage
// summed. One record for the client's request, with every chunk's attempts in it. Sent whole, such a batch was only
// refused by every candidate (the first refusal came back) although each would have served it in parts.

import { isoTime } from "../clock.ts";
import { RateLimitedError, UpstreamOverloadedError } from "../errors/gateway-error.ts";
import { renderError, toGatewayError } from "../errors/render-error.ts";
import { isRecord } from "../is-record.ts";
import type { Reservation } from "../limits/budgets.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RouteCandidate, RoutePlan } from "../router/plan-route.ts";
import { INPUTS_FEATURE } from "../router/request-features.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { ForwardOutcome, ForwardTrace, JsonResult } from "../upstream/forward-types.ts";
import { sleepUntil } from "../upstream/sleep-until.ts";
import { chargedBeforeFailure } from "./chunk-charges.ts";
import { chargeClientChunk, giveBackClientChunk } from "./client-chunk-charges.ts";
import {
  type ChunkAnswer,
  chunkAnswerOf,
  countEstimatedAttempts,
  joinedAnswer,
  joinedUsage,
} from "./embeddings-chunk-answers.ts";
import { forwardRequestOf } from "./forward-request.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { planRequest, requestFactsOf } from "./plan-request.ts";

/**
 * A chunked batch's outcome: its last chunk's answer replaced by the joined one, the chunks' usage (joinedUsage), the
 * deployment that answered each chunk, in order.
 */
export interface ChunkedOutcome extends ForwardOutcome {
  readonly result: JsonResult;
  readonly usage: TokenUsage | undefined;
  readonly chunks: readonly Deployment[];
  /**
   * Answered in part (`x-gateway-partial: allow`): the first `answered` of the batch's `inputs`; `retryAfterMs`, the
   * wait the missing chunk's error named (a 429's: its provider's `retry-after`, or the window that would admit it).
   */
  readonly partial?: { readonly answered: number; readonly inputs: number; readonly retryAfterMs?: number };
}

/**
 * Where a batch's chunks end (each chunk's end, exclusive) and why it was split, as the error of a chunk no candidate
 * answered says: by inputs (countChunks) or by tokens (embeddings-token-chunks.ts).
 */
export interface ChunkPlan {
  readonly ends: readonly number[];
  readonly why: string;
  /**
   * The inputs from `start` on planned again before a later chunk is sent (chunks by tokens: the answers so far may
   * have raised a deployment's calibration, and a chunk planned at the old one would be too large for good); undefined
   * when they cannot be, the plan kept.
   */
  readonly rest?: (start: number) => ChunkPlan | undefined;
}

/** A batch of `count` inputs in chunks of `size`: the candidates' known input limits (embeddingsChunkSize). */
export function countChunks(count: number, size: number): ChunkPlan {
  const ends: number[] = [];
  for (let end = size; end < count + size; end += size) ends.push(Math.min(end, count));
  return { ends, why: `sent in chunks of ${size}, the most every candidate takes: ${INPUTS_LIMIT_SOURCES}` };
}

/** Where a chunk's size comes from, as the error of a chunk no candidate answered says. */
const INPUTS_LIMIT_SOURCES = "`max_inputs`, or a limit a provider's refusal stated";

/** How the skip of a candidate known to take fewer inputs than a batch sent whole begins (wholeBatchPlan). */
const INPUTS_SKIP_PREFIX = "takes at most ";

/**
 * How long an input limit learned from a refusal splits batches (1 h from the refusal that taught it, not the lesson's
 * `cooldowns.unsupported_feature_ms`, 6 h by default). The split itself keeps any larger batch from reaching the
 * deployment, so no success could ever end the lesson: a provider that raised its limit (or a lesson learned from a
 * refusal that misstated it) was held to it until the lesson ended or an operator reset it. Past this, the next batch
 * above it is sent whole again (the router still ranks the deployment last for it while the lesson holds): refused
 * stating the limit again, the lesson is learned afresh (its time restarts) and the batch split in the same request,
 * one refused call an hour; answered, the success ends the lesson (refused-features.ts `unlearn`).
 */
export const LEARNED_INPUTS_TRUST_MS = 60 * 60_000;

/**
 * The most inputs the deployment takes in one request, when known: its `max_inputs`, and below it the limit a refusal
 * stated (lessons.ts inputsLesson: a sized lesson of INPUTS_FEATURE, one less than the fewest refused) while it is
 * trusted (LEARNED_INPUTS_TRUST_MS).
 */
export function knownMaxInputs(deployment: Deployment, books: RefusedFeatures, nowMs: number): number | undefined {
  const configured = deployment.model.maxInputs;
  const lesson = books.refusalOf(deployment.key, [INPUTS_FEATURE], nowMs);
  const isTrusted = lesson?.minEntries !== undefined && nowMs < lesson.atMs + LEARNED_INPUTS_TRUST_MS;
  const learned = isTrusted ? (lesson.minEntries as number) - 1 : undefined;
  if (configured === undefined) return learned;
  return learned === undefined ? configured : Math.min(configured, learned);
}

/**
 * How many inputs each chunk holds when the batch must be split, else undefined (sent whole): an embeddings request
 * of more inputs than every candidate of its plan is known to take. The smallest of their limits, so that any
 * candidate takes any chunk and a chunk fails over like a request. A candidate whose limit is unknown may take the
 * whole batch: then it is sent whole, as before.
 */
export function embeddingsChunkSize(request: PipelineRequest, plan: RoutePlan): number | undefined {
  if (request.endpoint.upstreamPath !== "/embeddings") return undefined;
  const inputs = request.body.input;
  if (!Array.isArray(inputs) || inputs.length < 2) return undefined;
  const candidates = plan.waitFor === undefined ? plan.candidates : [...plan.candidates, plan.waitFor];
  if (candidates.length === 0) return undefined;
  const nowMs = request.runtime.clock.now();
  let size = Number.POSITIVE_INFINITY;
  for (const { deployment } of candidates) {
    const limit = knownMaxInputs(deployment, request.runtime.refusedFeatures, nowMs);
    if (limit === undefined || limit >= inputs.length) return undefined;
    size = Math.min(size, limit);
  }
  // One list of token ids is one input (read last: a million ids is a valid input, and most batches end above).
  return inputs.every((item) => typeof item === "number") ? undefined : size;
}

/**
 * The plan of a batch sent whole (embeddingsChunkSize undefined: a candidate may take it) without the candidates known
 * to take fewer inputs than it holds: sent the batch, each refused it every time, first when it ranked first. Each is
 * skipped with its limit in `trace` (the client's error names it when no other candidate answers). Never empties the
 * plan: a batch every candidate is known too small for is sent in chunks instead.
 */
export function wholeBatchPlan(request: PipelineRequest, plan: RoutePlan, trace: ForwardTrace): RoutePlan {
  if (request.endpoint.upstreamPath !== "/embeddings") return plan;
  const inputs = request.body.input;
  if (!Array.isArray(inputs) || inputs.length < 2) return plan;
  const nowMs = request.runtime.clock.now();
  const limits = new Map<RouteCandidate, number>();
  for (const candidate of plan.waitFor === undefined ? plan.candidates : [...plan.candidates, plan.waitFor]) {
    const limit = knownMaxInputs(candidate.deployment, request.runtime.refusedFeatures, nowMs);
    if (limit !== undefined && limit < inputs.length) limits.set(candidate, limit);
  }
  // One list of token ids is one input (read last, as embeddingsChunkSize does).
  if (limits.size === 0 || inputs.every((item) => typeof item === "number")) return plan;
  const candidates = plan.candidates.filter((candidate) => !limits.has(candidate));
  const waitFor = plan.waitFor !== undefined && limits.has(plan.waitFor) ? undefined : plan.waitFor;
  if (candidates.length === 0 && waitFor === undefined) return plan;
  for (const [{ deployment }, limit] of limits) {
    // Each round of a request that queued again plans (and skips) the candidate again: it is listed once.
    const isListed = trace.skips.some(
      (skip) => skip.deploymentKey === deployment.key && skip.reason.startsWith(INPUTS_SKIP_PREFIX),
    );
    const reason = `${INPUTS_SKIP_PREFIX}${limit} inputs (${INPUTS_LIMIT_SOURCES}); the batch holds ${inputs.length}`;
    if (!isListed) trace.skips.push({ deploymentKey: deployment.key, reason });
  }
  return { ...plan, candidates, waitFor };
}

/**
 * Sends the batch in the chunks `chunks` plans, one after the other (each waits in the route queue like a request
 * while its candidates' budgets are spent), every attempt into `trace`. Throws the first chunk's error that no
 * candidate could answer, its message naming the chunk: the client gets that one error, nothing of the chunks before;
 * unless it allowed a partial answer (`x-gateway-partial: allow`) and chunks were answered before it: then their
 * answer, marked partial (partialAnswer), with that error in it.
 */
export async function forwardInChunks(
  request: PipelineRequest,
  chunks: ChunkPlan,
  trace: ForwardTrace,
  startedAtMs: number,
): Promise<ChunkedOutcome> {
  const { runtime } = request;
  const inputs = request.body.input as readonly unknown[];
  const answers: ChunkAnswer[] = [];
  let last: JsonResult | undefined;
  let start = 0;
  let plan = chunks;
  /** The error of the chunk no candidate answered, when the client allowed a partial answer. */
  let unanswered: unknown;
  for (let index = 0; index < plan.ends.length; index++) {
    // Before 2026-12-07 the chunks were planned once: the first chunk's usage raised its deployment's calibration
    // (a provider counting the estimate teaches 1.2), and the next one, planned to the whole tpm, got a 413, paid for.
    const replanned = index === 0 ? undefined : plan.rest?.(start);
    if (replanned !== undefined) plan = { ...replanned, ends: [...plan.ends.slice(0, index), ...replanned.ends] };
    const end = plan.ends[index] as number;
    const body = { ...request.body, input: inputs.slice(start, end) };
    const chunk: PipelineRequest = { ...request, body, ...requestFactsOf(request.endpoint, body, false) };
    let answer: ChunkAnswer | undefined;
    // A trace of its own: `routing.max_attempts` bounds each chunk's attempts (a batch of more chunks than it was
    // refused at the chunk past it), and a chunk's error lists its attempts, not the chunks' before it.
    const chunkTrace: ForwardTrace = { attempts: [], skips: [] };
    let clientCharge: Reservation | undefined;
    try {
      // A named client whose token budget the batch is larger than pays its tokens chunk by chunk, before each is sent.
      clientCharge = await chargeClientChunk(request, chunk.prompt.promptTokens);
      const outcome = await forwardChunk(chunk, chunkTrace, startedAtMs, start);
      if (outcome.result.kind !== "json") throw new Error(`an embeddings chunk answered as ${outcome.result.kind}`);
      last = outcome.result;
      const attempt = outcome.attempts.at(-1);
      answer = chunkAnswerOf(outcome.result, attempt, chunk.prompt.promptTokens, start);
      if (clientCharge !== undefined) {
        const { promptTokens, completionTokens } = answer.tokens;
        runtime.recorder.clientChunkAnswered(clientCharge, promptTokens + completionTokens, attempt?.startedAtMs ?? 0);
      }
    } catch (error) {
      // Charged to its client but not sent (no attempt): given back now, as the batch may be planned and charged again.
      if (clientCharge !== undefined && chunkTrace.attempts.length === 0) giveBackClientChunk(request, clientCharge);
      // The chunks answered without usage kept their reservations on their deployments: their attempts say so, and
      // the client is charged them too (segment-charge.ts clientCharge; before 2026-12-07 it counted them 0).
      countEstimatedAttempts(answers, trace.attempts);
      const isPartial = answers.length > 0 && request.context.allowsPartialAnswer === true;
      const failed = { from: start, to: end, count: inputs.length, why: plan.why, isPartial };
      const failure = failedChunk(error, failed, answers);
      if (!isPartial) throw failure;
      unanswered = failure;
    } finally {
      trace.attempts.push(...chunkTrace.attempts);
      trace.skips.push(...chunkTrace.skips);
    }
    if (answer === undefined) break;
    answers.push(answer);
    start = end;
  }
  const partial = unanswered === undefined ? undefined : partialOf(start, inputs.length, unanswered);
  // A partial answer of chunks that reported no usage counts their estimates: read as a whole batch without a report,
  // its client was charged the reservation of every input, the unanswered ones too.
  const usage = joinedUsage(answers) ?? (partial === undefined ? undefined : estimatedUsage(answers));
  if (usage !== undefined) countEstimatedAttempts(answers, trace.attempts);
  const joined = joinedAnswer(answers, usage);
  const bodyText = JSON.stringify(partial === undefined ? joined : partialAnswer(joined, partial, unanswered));
  return {
    // The record says estimated when any chunk's usage is (before 2026-12-07 only the last chunk's flag was read).
    result: {
      ...(last as JsonResult),
      bodyText,
      isUsageEstimated: usage?.isEstimated === true,
      ...(partial === undefined ? {} : { isPartial: true }),
    },
    attempts: [...trace.attempts],
    skips: [...trace.skips],
    usage: usage?.tokens,
    chunks: answers.map((answer) => answer.deployment),
    ...(partial === undefined ? {} : { partial }),
  };
}

/**
 * The answered chunks' answer when the client allowed a partial one (`x-gateway-partial: allow`) and a later chunk got
 * no answer: their vectors (indexes from the batch's start) and usage, and `x_gateway.partial` saying how many of the
 * inputs, from the first, were answered, and the error the rest got (as the client would have got it whole). Without
 * it the client got that error alone and paid the answered chunks again when it sent the batch again.
 */
function partialAnswer(
  joined: Record<string, unknown>,
  partial: NonNullable<ChunkedOutcome["partial"]>,
  error: unknown,
): Record<string, unknown> {
  const { message, type, code } = renderError(toGatewayError(error)).error;
  const mark = isRecord(joined.x_gateway) ? joined.x_gateway : {};
  const { answered, inputs } = partial;
  return { ...joined, x_gateway: { ...mark, partial: { answered, inputs, error: { message, type, code } } } };
}

/** What a partial answer says of itself: how many inputs were answered, and the missing chunk's wait if it named one. */
function partialOf(answered: number, inputs: number, error: unknown): NonNullable<ChunkedOutcome["partial"]> {
  const { retryAfterMs } = toGatewayError(error);
  return { answered, inputs, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/** The answered chunks' estimates (none reported usage), for a partial answer. */
function estimatedUsage(answers: readonly ChunkAnswer[]): { readonly tokens: TokenUsage; readonly isEstimated: true } {
  const promptTokens = answers.reduce((sum, answer) => sum + answer.tokens.promptTokens, 0);
  return { tokens: { promptTokens, completionTokens: 0 }, isEstimated: true };
}

/** Rounds of a later chunk's wait for its budget: a bound on a loop whose every round plans (and may reserve). */
const MAX_CHUNK_WAITS = 20;

/**
 * Plans and forwards one chunk. A chunk after the first that finds its candidates over a budget or cooling (a 429)
 * waits for the time the 429 names, while the request's time lasts, and is tried again: the chunks before it were
 * paid for, and a 429 for the whole batch (a batch line sent again, a client retrying) paid for them again each time,
 * never served when the batch needs more chunks than a window takes (rpm 3, 4 chunks). The first waits as a request
 * does (the route queue, or a 429 at once).
 */
async function forwardChunk(
  chunk: PipelineRequest,
  trace: ForwardTrace,
  startedAtMs: number,
  /** Inputs answered (and paid) before this chunk. */
  answeredCount: number,
): Promise<ForwardOutcome> {
  const { runtime, context, snapshot } = chunk;
  let round = 0;
  for (;;) {
    round += 1;
    try {
      const planned = await planRequest(chunk);
      const forwarded = forwardRequestOf(chunk, planned, trace, startedAtMs);
      return await runtime.forward(planned.plan, forwarded, planned.snapshot);
    } catch (error) {
      // Every candidate overloaded (a 529, a 503 with retry-after: final-error.ts) cools down as a 429 does: waited too.
      const isWaitable = error instanceof RateLimitedError || error instanceof UpstreamOverloadedError;
      if (answeredCount === 0 || !isWaitable || error.retryAfterMs === undefined) throw error;
      const retryAtMs = runtime.clock.now() + Math.max(MIN_CHUNK_WAIT_MS, error.retryAfterMs);
      const { totalTimeoutMs } = snapshot.config.routing;
      // A wait past the request's time is not begun: the client would be held to the deadline for nothing.
      if (retryAtMs >= startedAtMs + totalTimeoutMs) throw pastDeadline(error, retryAtMs, totalTimeoutMs);
      // A batch line refused while live requests queue (plan-request.ts batchLinePlan) planned nothing: that wait ends
      // with the queue or the request's time, not after MAX_CHUNK_WAITS rounds of 50 ms. Before 2026-12-07 the line gave
      // up after 1 s and was written as that 429, its earlier chunks paid for and lost.
      if (context.batchId !== undefined && error.retryAfterMs === 0 && runtime.queuedRequests > 0) round -= 1;
      const isWaited = round < MAX_CHUNK_WAITS && !runtime.isShuttingDown && !context.signal.aborted;
      if (!isWaited) throw error;
      await sleepUntil(retryAtMs, runtime.clock, context.signal);
    }
  }
}

/**
 * A later chunk's 429 whose time comes after `routing.total_timeout_ms`: said as such (failedChunk adds the inputs that
 * were answered and charged), so that a client knows why a batch the gateway split got no answer.
 */
function pastDeadline(
  error: RateLimitedError | UpstreamOverloadedError,
  retryAtMs: number,
  totalTimeoutMs: number,
): RateLimitedError | UpstreamOverloadedError {
  const what =
    error instanceof UpstreamOverloadedError
      ? "its candidates are overloaded until"
      : "its candidates' budgets admit it only at";
  const message = `${what} ${isoTime(retryAtMs)}, after routing.total_timeout_ms (${totalTimeoutMs} ms from the request's arrival) ends: ${error.message}`;
  const ErrorClass = error instanceof UpstreamOverloadedError ? UpstreamOverloadedError : RateLimitedError;
  return new ErrorClass(message, {
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    attempts: error.attempts,
  });
}

/** The shortest wait before a later chunk is planned again (a 429 that names 0 ms). */
const MIN_CHUNK_WAIT_MS = 50;

/** The inputs of the chunk that failed (`from` to `to`, exclusive) among `count`, and why the batch was split. */
interface FailedChunk {
  readonly from: number;
  readonly to: number;
  readonly count: number;
  readonly why: string;
  /** The answered chunks are returned (a partial answer): the message does not say they are lost. */
  readonly isPartial: boolean;
}

/**
 * The error a chunk failed with, its message saying which inputs got no answer (that chunk's and every one after it,
 * not sent), why the batch was split, and which were answered and charged before it (their vectors are not returned:
 * the client gets one error). Until 2026-12-07 it named the failed chunk's inputs alone, as if the later ones had been
 * answered, and not what the earlier ones cost. Remembers that cost (chargedBeforeFailure).
 */
function failedChunk(error: unknown, chunk: FailedChunk, answers: readonly ChunkAnswer[]): unknown {
  if (!(error instanceof Error)) return error;
  const { from, to, count, why, isPartial } = chunk;
  const unsent =
    to < count ? `: the chunk of inputs ${from} to ${to - 1} failed and the ones after it were not sent` : "";
  let answered = "";
  if (answers.length > 0) {
    const tokens = { promptTokens: 0, completionTokens: 0 };
    for (const answer of answers) {
      tokens.promptTokens += answer.tokens.promptTokens;
      tokens.completionTokens += answer.tokens.completionTokens;
    }
    chargedBeforeFailure.set(error, tokens);
    const total = tokens.promptTokens + tokens.completionTokens;
    const returned = isPartial ? ", returned in this partial answer" : " but are not returned";
    answered = `; inputs 0 to ${from - 1} were answered and charged (${total} tokens)${returned}`;
  }
  error.message = `Inputs ${from} to ${count - 1} of ${count} (${why}) got no answer${unsent}${answered}: ${error.message}`;
  return error;
}
