// Before the first chunk of an embeddings batch is sent (embeddings-token-chunks.ts embeddingsChunks): can the
// candidates' request and token windows (second to month, configured, learned or a provider's report) take every chunk
// before `routing.total_timeout_ms` ends? A batch they cannot take is refused before anything is paid: a 429 naming the
// wait when a later start would fit, else a 413. Until 2026-12-07 only day and month token budgets were checked here,
// so a batch of 4 chunks under an rpm of 2 (or a tpm it needed two minutes of) sent and paid its first chunks, then
// failed past the deadline, and was paid again at each retry.
//
// What each window can take is counted generously (its room now, then its whole limit at each reset within the time
// left; a bucket refills continuously; the candidates' capacities summed, a shared provider pool counted once):
// a batch is refused only when it cannot fit, never one that would have. A later chunk that still finds its window
// spent (the provider counted more than the estimate) waits or fails as before (embeddings-chunks.ts forwardChunk).

import { isoTime } from "../clock.ts";
import { RateLimitedError, RequestTooLargeError } from "../errors/gateway-error.ts";
import { type BudgetScope, POOL_SCOPE_PREFIX, type WindowUsage } from "../limits/budget-types.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { startsOf, windowCapacity } from "./window-capacity.ts";

/** What a batch in chunks asks of its candidates' budgets: one request a chunk, its tokens as the gateway estimates. */
export interface ChunkedBatch {
  readonly chunks: number;
  readonly tokens: number;
  /** Why it is split (ChunkPlan.why), for the refusal's message. */
  readonly why: string;
}

/** Every deployment that might serve a chunk: the plan's candidates and those its budgets or a cooldown left out now. */
export function chunkDeploymentsOf(plan: RoutePlan): Deployment[] {
  const deployments = plan.candidates.map((candidate) => candidate.deployment);
  if (plan.waitFor !== undefined) deployments.push(plan.waitFor.deployment);
  for (const skip of plan.skipped) {
    if (skip.cause === "budget" || skip.cause === "cooldown") deployments.push(skip.deployment);
  }
  return deployments;
}

/** Throws, before any chunk is sent, when the deployments' windows cannot take `batch` in time (see the header). */
export function windowsRefusal(
  request: PipelineRequest,
  deployments: readonly Deployment[],
  batch: ChunkedBatch,
): void {
  const { runtime, snapshot, record } = request;
  const nowMs = runtime.clock.now();
  const { totalTimeoutMs } = snapshot.config.routing;
  // Each deployment once (a plan's waitFor is among its skips too), its provider's pool apart from its own scope.
  const unique = [...new Map(deployments.map((deployment) => [deployment.key, deployment])).values()];
  const windows = unique.map((deployment) => {
    const scopes = snapshot.budgetScopes[deployment.index] ?? [];
    const pool = scopes.find((scope) => scope.id.startsWith(POOL_SCOPE_PREFIX));
    const usagesOf = (of: readonly BudgetScope[]) => of.flatMap((scope) => runtime.budgets.usage(scope, nowMs));
    return {
      deployment,
      factor: runtime.promptCalibration.factorOf(deployment.key),
      poolId: pool?.id,
      poolUsages: pool === undefined ? [] : usagesOf([pool]),
      ownUsages: usagesOf(scopes.filter((scope) => scope !== pool)),
      usages: usagesOf(scopes),
    };
  });
  const fits = (startMs: number, spanMs: number): boolean => {
    let requests = 0;
    let tokens = 0;
    // A pool's deployments together take no more than it does: counted once (before 2026-12-07, once for each of
    // them, and a batch two deployments of a provider with an rpm of 2 could not finish was sent, paid in part).
    const pools = new Map<string, { requests: number; tokens: number; ownRequests: number; ownTokens: number }>();
    for (const { factor, poolId, poolUsages, ownUsages } of windows) {
      const ownRequests = capacityOf(ownUsages, "requests", startMs, nowMs, spanMs);
      const ownTokens = capacityOf(ownUsages, "tokens", startMs, nowMs, spanMs) / factor;
      if (poolId === undefined) {
        requests += ownRequests;
        tokens += ownTokens;
        continue;
      }
      const known = pools.get(poolId);
      pools.set(poolId, {
        requests: capacityOf(poolUsages, "requests", startMs, nowMs, spanMs),
        // Its deployments' calibrations differ: the one that counts the most tokens in it (generous).
        tokens: Math.max(known?.tokens ?? 0, capacityOf(poolUsages, "tokens", startMs, nowMs, spanMs) / factor),
        ownRequests: (known?.ownRequests ?? 0) + ownRequests,
        ownTokens: (known?.ownTokens ?? 0) + ownTokens,
      });
    }
    for (const pool of pools.values()) {
      requests += Math.min(pool.requests, pool.ownRequests);
      tokens += Math.min(pool.tokens, pool.ownTokens);
    }
    return requests >= batch.chunks && tokens >= batch.tokens;
  };
  if (deployments.length === 0 || fits(nowMs, record.startedAtMs + totalTimeoutMs - nowMs)) return;
  const reasons = windows.map(({ deployment, usages }) =>
    bindingWindow(deployment, usages, batch, nowMs, totalTimeoutMs),
  );
  const inputs = (request.body.input as readonly unknown[]).length;
  const head = `The embeddings batch of ${inputs} inputs (~${batch.tokens} tokens), ${batch.why} (${batch.chunks} chunks), cannot be finished under its candidates' budgets before routing.total_timeout_ms (${totalTimeoutMs} ms) ends: ${reasons.join("; ")}. Nothing was sent`;
  // A later start: when a window frees room, or an inferred limit lapses. A request sent again then has the whole
  // total_timeout_ms.
  const starts = [...new Set(windows.flatMap(({ usages }) => usages.flatMap(startsOf)))]
    .filter((startMs) => startMs > nowMs)
    .sort((a, b) => a - b);
  const startMs = starts.find((start) => fits(start, totalTimeoutMs));
  if (startMs === undefined) {
    throw new RequestTooLargeError(`${head}; send fewer inputs in a request, or raise routing.total_timeout_ms.`);
  }
  const retryAfterMs = startMs - nowMs;
  throw new RateLimitedError(
    `${head}; its candidates' budgets may take it from ${isoTime(startMs)} (retry in ${Math.ceil(retryAfterMs / 1000)} s).`,
    { retryAfterMs },
  );
}

/**
 * What the deployment's windows of `unit` can take from `startMs` for `spanMs`: the tightest one's capacity (every
 * window must admit each chunk); unbounded when none counts that unit.
 */
function capacityOf(
  usages: readonly WindowUsage[],
  unit: WindowUsage["unit"],
  startMs: number,
  nowMs: number,
  spanMs: number,
): number {
  let capacity = Number.POSITIVE_INFINITY;
  for (const usage of usages) {
    if (usage.unit === unit) capacity = Math.min(capacity, windowCapacity(usage, startMs, nowMs, spanMs));
  }
  return capacity;
}

/** The deployment's window that holds the batch back most (its capacity against the batch's need), in words. */
function bindingWindow(
  deployment: Deployment,
  usages: readonly WindowUsage[],
  batch: ChunkedBatch,
  nowMs: number,
  totalTimeoutMs: number,
): string {
  let tightest: { readonly usage: WindowUsage; readonly share: number } | undefined;
  for (const usage of usages) {
    const need = usage.unit === "requests" ? batch.chunks : batch.tokens;
    const share = windowCapacity(usage, nowMs, nowMs, totalTimeoutMs) / need;
    if (tightest === undefined || share < tightest.share) tightest = { usage, share };
  }
  if (tightest === undefined) return `${deployment.key}: no budget`;
  const { remaining, unit, window, limit } = tightest.usage;
  return `${deployment.key}: ${remaining} ${unit} left this ${window} of ${limit}`;
}
