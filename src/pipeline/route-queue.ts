// The queues of requests waiting for a route (`routing.queue_timeout_ms`, `routing.max_queued`): one wait queue
// per requested model, served in arrival order, and the count across all of them (for /stats and the
// dashboard). Kept apart from the runtime so that planning without a queue, the common case, stays one
// synchronous call there.
import { WaitQueue } from "../limits/wait-queue.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/** A plan and the config snapshot it was made on. */
export interface PlannedRoute {
  readonly plan: RoutePlan;
  readonly snapshot: GatewaySnapshot;
  /**
   * Why the queue handed the request back without a candidate: it was full (`routing.max_queued`), or the wait's
   * time ran out (`routing.queue_timeout_ms`); the 429 says which, and the planner how long it waited.
   */
  readonly queueRefusal?: QueueRefusal | undefined;
}

/** A request the queue gave back without a candidate; `waitedMs` is filled by its planner (plan-request.ts). */
export interface QueueRefusal {
  readonly isFull: boolean;
  readonly waitedMs: number;
  /** The wait was bounded by what `routing.total_timeout_ms` left of the request's time, not `queue_timeout_ms`. */
  readonly isTotalBound?: boolean | undefined;
}

export interface RouteQueueServices {
  /** Plans again on the serving config (a waiter is served by the config current when its turn comes). */
  readonly replan: () => PlannedRoute;
  /** ms until the plan's first cooling candidate is free again, if any. */
  readonly soonestAvailableMs: (plan: RoutePlan) => number | undefined;
  /** What is left of the request's `routing.total_timeout_ms` (counted from its arrival): the wait's cap too. */
  readonly timeLeftMs: number;
}

/**
 * The longest a queue's head sleeps before it plans again, whatever time its plan named. That time is when the charges
 * in the way leave their window (an `ash` hour after an upload), but charges given back sooner free the budget before
 * then: a failed attempt's tokens or audio seconds, an answer's usage or `verbose_json` duration under its estimate.
 * Nothing else wakes the head, and every request behind it (a newcomer too) waits for it, so slept to the named
 * time, a file waited its whole queue_timeout_ms beside a free budget. The cost is one plan a second per waiting model.
 */
const MAX_QUEUE_SLEEP_MS = 1_000;

export class RouteQueues {
  readonly #queues = new Map<string, WaitQueue>();
  #queuedTotal = 0;
  /** Aborted at shutdown: every waiter leaves (and is answered 503) instead of holding the exit until its time. */
  readonly #closing = new AbortController();

  get isClosed(): boolean {
    return this.#closing.signal.aborted;
  }

  close(): void {
    this.#closing.abort();
  }

  /** Requests waiting, across all models. */
  get size(): number {
    return this.#queuedTotal;
  }

  /** Whether requests already wait for this model (a newcomer then queues behind them). */
  hasWaiting(model: string): boolean {
    return (this.#queues.get(model)?.size ?? 0) > 0;
  }

  /**
   * Waits in the model's queue until `replan` finds a candidate, finds that none can ever free up, the wait's time
   * (`routing.queue_timeout_ms`, at most what is left of the request's total time) runs out, the queue is full or
   * the signal aborts. Returns the last plan either way (without candidates when none came).
   *
   * A request that nothing can ever serve (every candidate left out for good: larger than a whole token budget,
   * too small a context) does not queue at all: no wait helps it, and it would hold up every request behind it.
   */
  async wait(
    model: string,
    signal: AbortSignal,
    first: PlannedRoute,
    services: RouteQueueServices,
  ): Promise<PlannedRoute> {
    const { queueTimeoutMs, maxQueued } = first.snapshot.config.routing;
    const timeoutMs = Math.min(queueTimeoutMs, services.timeLeftMs);
    if (timeoutMs <= 0 || this.isClosed) return first;
    if (first.plan.candidates.length === 0 && services.soonestAvailableMs(first.plan) === undefined) return first;
    const queue = this.#queues.get(model) ?? new WaitQueue();
    this.#queues.set(model, queue);
    let latest = first;
    this.#queuedTotal++;
    try {
      // Only a request that queues pays for the combined signal.
      const waitSignal = AbortSignal.any([signal, this.#closing.signal]);
      const room = maxQueued - (this.#queuedTotal - 1 - queue.size);
      // Read before the wait, as WaitQueue.wait reads it: a full queue gives the request back at once.
      const isFull = queue.size >= room;
      const isTotalBound = timeoutMs < queueTimeoutMs;
      const queued = await queue.wait(room, timeoutMs, waitSignal, () => {
        latest = services.replan();
        if (latest.plan.candidates.length > 0) return { value: latest };
        const retryInMs = services.soonestAvailableMs(latest.plan);
        // Nothing left can ever free up (larger than every budget left, say, after a reload or a learned limit):
        // leave the queue now with this plan, rather than hold every waiter behind until the time runs out.
        if (retryInMs === undefined) return { value: latest };
        return { retryInMs: Math.min(retryInMs, MAX_QUEUE_SLEEP_MS) };
      });
      // Refused (the queue is full) or out of time: the answer is the 429, at once. The plan's candidate worth
      // waiting for (`waitFor`) is dropped: sleeping for it would take the slot ahead of the queue's head.
      return (
        queued ?? {
          ...latest,
          plan: { ...latest.plan, waitFor: undefined },
          queueRefusal: { isFull, waitedMs: 0, isTotalBound },
        }
      );
    } finally {
      this.#queuedTotal--;
      if (queue.size === 0 && this.#queues.get(model) === queue) this.#queues.delete(model);
    }
  }
}
