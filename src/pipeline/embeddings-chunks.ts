// An embeddings batch larger than every candidate takes in one request (`max_inputs`, or a limit a refusal stated:
// Google's endpoint takes 100 inputs, Cohere's 96), sent in chunks: each chunk planned (and queued while nothing is
// free) and forwarded as a request of its own, reserved and charged on its deployment's budgets, failing over like any
// request; the vectors joined in the client's order with their `index` counted from the batch's start, the usage
// summed. One record for the client's request, with every chunk's attempts in it. Sent whole, such a batch was only
// refused by every candidate (the first refusal came back) although each would have served it in parts.
import { RateLimitedError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RouteCandidate, RoutePlan } from "../router/plan-route.ts";
import { INPUTS_FEATURE } from "../router/request-features.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { ForwardOutcome, ForwardTrace, JsonResult } from "../upstream/forward-types.ts";
import { sleepUntil } from "../upstream/sleep-until.ts";
import { forwardRequestOf } from "./forward-request.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { planRequest, requestFactsOf } from "./plan-request.ts";

/** A chunked batch's outcome: its last chunk's answer replaced by the joined one, and the chunks' usage summed. */
export interface ChunkedOutcome extends ForwardOutcome {
  readonly result: JsonResult;
  readonly usage: TokenUsage | undefined;
}

/** Where a chunk's size comes from, as the error of a chunk no candidate answered says. */
const INPUTS_LIMIT_SOURCES = "`max_inputs`, or a limit a provider's refusal stated";

/** How the skip of a candidate known to take fewer inputs than a batch sent whole begins (wholeBatchPlan). */
const INPUTS_SKIP_PREFIX = "takes at most ";

/**
 * The most inputs the deployment takes in one request, when known: its `max_inputs`, and below it the limit a refusal
 * stated (lessons.ts inputsLesson: a sized lesson of INPUTS_FEATURE, one less than the fewest refused).
 */
export function knownMaxInputs(deployment: Deployment, books: RefusedFeatures, nowMs: number): number | undefined {
  const configured = deployment.model.maxInputs;
  const lesson = books.refusalOf(deployment.key, [INPUTS_FEATURE], nowMs)?.minEntries;
  const learned = lesson === undefined ? undefined : lesson - 1;
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
 * Sends the batch in chunks of `size` inputs, one after the other (each waits in the route queue like a request
 * while its candidates' budgets are spent), every attempt into `trace`. Throws the first chunk's error that no
 * candidate could answer, its message naming the chunk: the client gets that one error, nothing of the chunks before.
 */
export async function forwardInChunks(
  request: PipelineRequest,
  size: number,
  trace: ForwardTrace,
  startedAtMs: number,
): Promise<ChunkedOutcome> {
  const inputs = request.body.input as readonly unknown[];
  const answers: JsonResult[] = [];
  let usage: TokenUsage | undefined;
  for (let start = 0; start < inputs.length; start += size) {
    const body = { ...request.body, input: inputs.slice(start, start + size) };
    const chunk: PipelineRequest = { ...request, body, ...requestFactsOf(request.endpoint, body, false) };
    let result: JsonResult;
    // A trace of its own: `routing.max_attempts` bounds each chunk's attempts (a batch of more chunks than it was
    // refused at the chunk past it), and a chunk's error lists its attempts, not the chunks' before it.
    const chunkTrace: ForwardTrace = { attempts: [], skips: [] };
    try {
      const outcome = await forwardChunk(chunk, chunkTrace, startedAtMs, start > 0);
      if (outcome.result.kind !== "json") throw new Error(`an embeddings chunk answered as ${outcome.result.kind}`);
      result = outcome.result;
      usage = sumUsage(usage, outcome.attempts.at(-1)?.usage);
    } catch (error) {
      throw namedChunk(error, start, Math.min(start + size, inputs.length), inputs.length, size);
    } finally {
      trace.attempts.push(...chunkTrace.attempts);
      trace.skips.push(...chunkTrace.skips);
    }
    answers.push(result);
  }
  const last = answers.at(-1) as JsonResult;
  return {
    result: { ...last, bodyText: JSON.stringify(joinedAnswer(answers, size)) },
    attempts: [...trace.attempts],
    skips: [...trace.skips],
    usage,
  };
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
  hasPaidChunks: boolean,
): Promise<ForwardOutcome> {
  const { runtime, context, snapshot } = chunk;
  for (let round = 1; ; round++) {
    try {
      const planned = await planRequest(chunk);
      const forwarded = forwardRequestOf(chunk, planned, trace, startedAtMs);
      return await runtime.forward(planned.plan, forwarded, planned.snapshot);
    } catch (error) {
      if (!hasPaidChunks || !(error instanceof RateLimitedError) || error.retryAfterMs === undefined) throw error;
      const retryAtMs = runtime.clock.now() + Math.max(MIN_CHUNK_WAIT_MS, error.retryAfterMs);
      const isWaited =
        round < MAX_CHUNK_WAITS &&
        retryAtMs < startedAtMs + snapshot.config.routing.totalTimeoutMs &&
        !runtime.isShuttingDown &&
        !context.signal.aborted;
      if (!isWaited) throw error;
      await sleepUntil(retryAtMs, runtime.clock, context.signal);
    }
  }
}

/** The shortest wait before a later chunk is planned again (a 429 that names 0 ms). */
const MIN_CHUNK_WAIT_MS = 50;

/** The chunks' answers as one: the first's fields, every vector with its index from the batch's start, usage summed. */
function joinedAnswer(answers: readonly JsonResult[], size: number): Record<string, unknown> {
  const data: unknown[] = [];
  const usage: Record<string, number> = {};
  let head: Record<string, unknown> = {};
  for (const [chunkIndex, answer] of answers.entries()) {
    const json = JSON.parse(answer.bodyText) as Record<string, unknown>;
    if (chunkIndex === 0) head = json;
    // Each answer was checked by its attempt (missingEmbeddings): one entry per input, indexes right or all absent,
    // and put in index order (embeddingsForClient).
    for (const [position, entry] of (json.data as Record<string, unknown>[]).entries()) {
      data.push({ ...entry, index: chunkIndex * size + position });
    }
    if (isRecord(json.usage)) {
      for (const [key, value] of Object.entries(json.usage)) {
        if (typeof value === "number") usage[key] = (usage[key] ?? 0) + value;
      }
    }
  }
  return { ...head, data, ...(Object.keys(usage).length === 0 ? {} : { usage }) };
}

function sumUsage(total: TokenUsage | undefined, more: TokenUsage | undefined): TokenUsage | undefined {
  if (more === undefined) return total;
  if (total === undefined) return more;
  return {
    promptTokens: total.promptTokens + more.promptTokens,
    completionTokens: total.completionTokens + more.completionTokens,
  };
}

/** The error a chunk failed with, its message saying which inputs it held and why the batch was split. */
function namedChunk(error: unknown, from: number, to: number, count: number, size: number): unknown {
  if (!(error instanceof Error)) return error;
  error.message = `Inputs ${from} to ${to - 1} of ${count} (sent in chunks of ${size}, the most every candidate takes: ${INPUTS_LIMIT_SOURCES}) got no answer: ${error.message}`;
  return error;
}
