// An embeddings batch of more tokens than one request may hold under every candidate's token budgets (tpm, tph, tpd,
// tokens_per_month, or a limit learned for it), sent in chunks that each fit the largest of those: the plan of the
// whole batch left every candidate out for good (budgets.ts: a request larger than a whole window never fits), so
// it was refused whole with a 413, or queued for nothing, although chunks that each fit are served one after another
// as the window slides (embeddings-chunks.ts forwardInChunks: each planned, reserved and charged as a request).
import { isNeverFit } from "../limits/budget-types.ts";
import { estimateTextInputs } from "../limits/token-estimate.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { ForwardTrace } from "../upstream/forward-types.ts";
import {
  type ChunkedOutcome,
  type ChunkPlan,
  countChunks,
  embeddingsChunkSize,
  forwardInChunks,
  knownMaxInputs,
} from "./embeddings-chunks.ts";
import { chunkDeploymentsOf, windowsRefusal } from "./embeddings-window-fit.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { budgetCheckOf } from "./plan-checks.ts";

/**
 * The batch sent in chunks (forwardInChunks) when it must be split (embeddingsChunks), else undefined: sent whole.
 * Throws (before any chunk is sent) what embeddingsChunks throws.
 */
export function forwardIfChunked(
  request: PipelineRequest,
  plan: RoutePlan,
  trace: ForwardTrace,
  startedAtMs: number,
): Promise<ChunkedOutcome> | undefined {
  let chunks: ChunkPlan | undefined;
  try {
    chunks = embeddingsChunks(request, plan);
  } catch (error) {
    // Rejected, not thrown: the pipeline reads a throw before any chunk promise as the whole batch's refusal by size
    // and plans the request again to split it (handle-request.ts), which the refusal of the chunks would only repeat.
    return Promise.reject(error);
  }
  return chunks === undefined ? undefined : forwardInChunks(request, chunks, trace, startedAtMs);
}

/**
 * How an embeddings batch is split, else undefined (sent whole): by inputs when every candidate takes fewer than it
 * holds (embeddingsChunkSize), else by tokens when every candidate's token budgets are too small for it (tokenChunks).
 * Throws when the candidates' budget windows cannot take every chunk before `routing.total_timeout_ms` ends
 * (embeddings-window-fit.ts windowsRefusal), before any chunk is sent.
 */
export function embeddingsChunks(request: PipelineRequest, plan: RoutePlan): ChunkPlan | undefined {
  // A batch larger than a whole token budget of its client goes in chunks that each fit the client's budgets too.
  if (request.clientCharge.chunks !== undefined) return tokenChunks(request, plan);
  const size = embeddingsChunkSize(request, plan);
  if (size === undefined) return tokenChunks(request, plan);
  const chunks = countChunks((request.body.input as readonly unknown[]).length, size);
  const batch = { chunks: chunks.ends.length, tokens: request.prompt.promptTokens, why: chunks.why };
  windowsRefusal(request, chunkDeploymentsOf(plan), batch);
  return chunks;
}

/**
 * Chunks by tokens of a batch whose plan has no candidate because each is left out for good by a token budget: each
 * chunk within the most tokens one request may hold on the candidate whose budgets take the most (the others are left
 * out of a chunk's plan again when it does not fit them), and within the fewest inputs any of them is known to take.
 * Undefined when the batch is not such a batch, or one input alone is larger than that (no split serves it: the 413
 * stands, nothing paid).
 */
function tokenChunks(request: PipelineRequest, plan: RoutePlan): ChunkPlan | undefined {
  const isClientChunked = request.clientCharge.chunks !== undefined;
  const isPlanned = plan.candidates.length > 0 || plan.waitFor !== undefined;
  if (request.endpoint.upstreamPath !== "/embeddings" || (isPlanned && !isClientChunked)) return undefined;
  const inputs = request.body.input;
  if (!Array.isArray(inputs) || inputs.length < 2) return undefined;
  const tooSmall = plan.skipped
    .filter((skip) => skip.cause === "budget" && isNeverFit(skip.untilMs))
    .map((skip) => skip.deployment);
  // One list of token ids is one input.
  if ((tooSmall.length === 0 && !isClientChunked) || inputs.every((item) => typeof item === "number")) return undefined;
  const tokens = inputs.map((item) => estimateTextInputs([item]).total);
  const total = tokens.reduce((sum, count) => sum + count, 0);
  // A plan with candidates takes the batch whole: only the client's budgets bound its chunks.
  const chunks = tokensPacked(
    request,
    { tooSmall: isPlanned ? [] : tooSmall, all: chunkDeploymentsOf(plan) },
    tokens,
    0,
  );
  if (chunks === undefined) return undefined;
  windowsRefusal(request, chunkDeploymentsOf(plan), { chunks: chunks.ends.length, tokens: total, why: chunks.why });
  return chunks;
}

/**
 * The inputs from `start` on (`tokens` each) packed into chunks by the deployments' budgets and calibration as they
 * are now, with `rest` to pack them again before a later chunk; undefined when one input alone is larger than a chunk
 * may hold.
 */
function tokensPacked(
  request: PipelineRequest,
  deployments: { readonly tooSmall: readonly Deployment[]; readonly all: readonly Deployment[] },
  tokens: readonly number[],
  start: number,
): ChunkPlan | undefined {
  const { tooSmall, all } = deployments;
  const nowMs = request.runtime.clock.now();
  const left = tokens.slice(start);
  // Searched up to the whole batch's tokens, as at first: the rest's alone would cap what a chunk is said to hold.
  const total = tokens.reduce((sum, count) => sum + count, 0);
  let best: { readonly tokens: number; readonly why: string } | undefined;
  for (const deployment of tooSmall) {
    const most = mostTokens(request, deployment, total, nowMs);
    const why = `the most one request may hold under the token budgets of ${deployment.key}, the largest of every candidate's`;
    if (best === undefined || most > best.tokens) best = { tokens: most, why };
  }
  // The client's own budgets bound every chunk, whichever candidate serves it (client-chunk-charges.ts).
  const client = request.clientCharge.chunks;
  if (client !== undefined && (best === undefined || client.mostTokens < best.tokens)) {
    best = {
      tokens: client.mostTokens,
      why: `the most one request may hold under client \`${client.client}\`'s token budgets`,
    };
  }
  if (best === undefined || left.some((count) => count > (best as { tokens: number }).tokens)) return undefined;
  // Within the fewest inputs any deployment that may serve a chunk is known to take.
  const limits = [...tooSmall, ...all].map((deployment) =>
    knownMaxInputs(deployment, request.runtime.refusedFeatures, nowMs),
  );
  const mostInputs = Math.min(...limits.map((limit) => limit ?? Number.POSITIVE_INFINITY));
  const ends = packed(left, best.tokens, mostInputs).map((end) => start + end);
  const why = `sent in chunks of at most ${best.tokens} tokens, ${best.why}`;
  return { ends, why, rest: (from) => tokensPacked(request, deployments, tokens, from) };
}

/**
 * The most prompt tokens (as the gateway estimates them) one request may hold under the deployment's budgets, by
 * the check a plan makes (plan-checks.ts budgetCheckOf: the deployment's calibration, every scope's rules and those
 * learned for it): the largest count it does not refuse for good, found by halving (a count refused for good stays
 * refused for any larger one).
 */
function mostTokens(request: PipelineRequest, deployment: Deployment, total: number, nowMs: number): number {
  const { runtime, snapshot, maxOutputTokens } = request;
  const fits = (promptTokens: number): boolean => {
    const check = budgetCheckOf(
      runtime.budgets,
      runtime.promptCalibration,
      snapshot,
      { promptTokens, maxOutputTokens },
      nowMs,
    );
    const denied = check(deployment);
    return denied === undefined || !isNeverFit(denied.untilMs);
  };
  let low = 0;
  let high = total;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Each chunk's end: inputs taken in order while the chunk holds at most `mostTokens` tokens and `mostInputs` inputs. */
function packed(tokens: readonly number[], mostTokens: number, mostInputs: number): number[] {
  const ends: number[] = [];
  let held = 0;
  let count = 0;
  for (const [index, size] of tokens.entries()) {
    if (count > 0 && (held + size > mostTokens || count + 1 > mostInputs)) {
      ends.push(index);
      held = 0;
      count = 0;
    }
    held += size;
    count += 1;
  }
  ends.push(tokens.length);
  return ends;
}
