// The cost and the exits of RouteQueues' wait now that its head plans again at least once a second
// (MAX_QUEUE_SLEEP_MS): many requests waiting for a window an hour away must not each plan once a second, and
// closing (shutdown) must answer every waiter at once rather than leave a sleeping timer behind.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { RoutePlan } from "../router/plan-route.ts";
import { type PlannedRoute, RouteQueues } from "./route-queue.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

const HOUR_MS = 3_600_000;

/** A plan with no candidate, the first one free again in an hour, on a config queueing for `queueTimeoutMs`. */
function blockedRoute(queueTimeoutMs: number, maxQueued: number): PlannedRoute {
  // Only the fields RouteQueues reads: the routing settings and the plan's candidates.
  const snapshot = { config: { routing: { queueTimeoutMs, maxQueued } } } as unknown as GatewaySnapshot;
  return { plan: { candidates: [] } as unknown as RoutePlan, snapshot };
}

describe("RouteQueues: a queue waiting an hour", () => {
  test("2,000 waiters for one model: only the head plans again, once a second, not every waiter", async () => {
    const queues = new RouteQueues();
    const route = blockedRoute(2_500, 5_000);
    let replans = 0;
    const services = {
      replan: (): PlannedRoute => {
        replans += 1;
        return route;
      },
      soonestAvailableMs: (): number => HOUR_MS,
      timeLeftMs: 60_000,
    };
    const client = new AbortController();
    const startedMs = performance.now();
    const waiters = Array.from({ length: 2_000 }, () => queues.wait("whisper", client.signal, route, services));
    assert.equal(queues.size, 2_000);
    // Queueing 2,000 takes a few hundred ms on a loaded machine; the waits' 2.5 s count from each one's call.
    await sleep(Math.max(0, 2_200 - (performance.now() - startedMs)));
    // Only the head has planned: at once, then once a second. 2,000 waiters planning each second would be 4,000 by now.
    // (At most a few: a loaded machine's late timers make it 2 or 3, never thousands.)
    assert.ok(replans >= 1 && replans <= 10, `${replans} plans in 2.2 s`);
    const results = await Promise.all(waiters);
    // When the time is up, each waiter whose turn comes before its own deadline fires looks once (a few dozen);
    // none sleeps and looks again.
    assert.ok(replans < 200, `${replans} plans in all`);
    assert.equal(queues.size, 0);
    assert.ok(results.every((result) => result.plan.candidates.length === 0));
  });

  test("close (shutdown) answers every waiter at once, the head's sleep included", async () => {
    const queues = new RouteQueues();
    const route = blockedRoute(HOUR_MS, 100);
    const services = { replan: () => route, soonestAvailableMs: () => HOUR_MS, timeLeftMs: HOUR_MS };
    const client = new AbortController();
    const waiters = Array.from({ length: 50 }, () => queues.wait("whisper", client.signal, route, services));
    await sleep(50);
    const closedAtMs = performance.now();
    queues.close();
    await Promise.all(waiters);
    // At once, not at the hour the head sleeps to: a bound far below that, not one a loaded machine reaches.
    assert.ok(performance.now() - closedAtMs < 5_000, `${(performance.now() - closedAtMs).toFixed(0)} ms`);
    assert.equal(queues.size, 0);
  });

  // (Before MAX_QUEUE_SLEEP_MS the next head slept to the hour its plan named: this timed out.)
  test("a client that leaves while at the head is answered at once; the next head sees a budget freed within a second", {
    timeout: 60_000,
  }, async () => {
    const queues = new RouteQueues();
    const blocked = blockedRoute(HOUR_MS, 100);
    let isFree = false;
    const ready = { ...blocked, plan: { candidates: [{}] } as unknown as RoutePlan };
    const services = {
      replan: () => (isFree ? ready : blocked),
      soonestAvailableMs: () => HOUR_MS,
      timeLeftMs: HOUR_MS,
    };
    const leaving = new AbortController();
    const head = queues.wait("whisper", leaving.signal, blocked, services);
    const behind = queues.wait("whisper", new AbortController().signal, blocked, services);
    await sleep(50);
    leaving.abort();
    assert.equal((await head).plan.candidates.length, 0);
    // The next head has planned and sleeps. Freed meanwhile without anything waking the queue (seconds given back):
    // it sees that when it plans again, within a second, not at the hour its plan named.
    await sleep(100);
    isFree = true;
    const startedMs = performance.now();
    assert.equal((await behind).plan.candidates.length, 1);
    // Within a second of replanning (seconds on a loaded machine), not at the hour the plan named.
    assert.ok(performance.now() - startedMs < 10_000, `${(performance.now() - startedMs).toFixed(0)} ms`);
  });
});
