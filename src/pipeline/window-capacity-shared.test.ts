// The shared arrival check of a client's embeddings batches (state/redis-chunked-batches-lua.ts) counts a window's room
// as windowCapacity does here, on a real Redis: for each kind of window (sliding, reset already past, fixed day,
// bucket, a provider's report without its limit, an inferred limit lapsing), a batch of exactly the room windowCapacity
// counts is admitted and one token more is refused. A Lua copy that drifted from the TypeScript refused batches the
// embedded check admits, or admitted more than the windows take.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { useRedisState } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import type { WindowUsage } from "../limits/budget-types.ts";
import { windowCapacity, windowTermsOf } from "./window-capacity.ts";

const NOW_MS = Date.UTC(2026, 11, 8, 12, 0, 30);
/** A batch's span: `routing.total_timeout_ms`. */
const SPAN_MS = 90_000;

function usage(overrides: Partial<WindowUsage>): WindowUsage {
  const base: WindowUsage = {
    unit: "tokens",
    window: "minute",
    limit: 1_000,
    used: 700,
    remaining: 300,
    resetsAtMs: NOW_MS + 20_000,
    source: "config",
    algorithm: "sliding",
  };
  return { ...base, ...overrides };
}

const CASES: Readonly<Record<string, WindowUsage>> = {
  "sliding, a charge leaving in 20 s": usage({}),
  "sliding, holding nothing": usage({ used: 0, remaining: 1_000, resetsAtMs: undefined }),
  "fixed, its reset 10 s past": usage({ algorithm: "fixed", resetsAtMs: NOW_MS - 10_000 }),
  "fixed day, its reset hours away": usage({ window: "day", algorithm: "fixed", resetsAtMs: NOW_MS + 3_600_000 }),
  "bucket, partly drained": usage({ algorithm: "bucket", limit: 600, remaining: 100, resetsAtMs: undefined }),
  "a report without its limit, resetting after the span": usage({ isLimitUnknown: true, resetsAtMs: NOW_MS + 100_000 }),
  "a report without its limit, resetting within it": usage({ isLimitUnknown: true, resetsAtMs: NOW_MS + 30_000 }),
  "an inferred limit lapsing within the span": usage({ source: "learned", lapsesAtMs: NOW_MS + 50_000 }),
};

test("the shared check's room per window is windowCapacity's", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  const state = await useRedisState(t, redis.url, new ManualClock(NOW_MS), "capacity-parity:");
  const shared = state.chunkedBatches;
  assert.ok(shared !== undefined);
  const none = { tokens: 0, earliestMs: NOW_MS + SPAN_MS, latestMs: 0 };
  let batches = 0;
  const admits = async (window: WindowUsage, tokens: number) => {
    batches += 1;
    const batch = { id: `b${batches}`, tokens, deadlineMs: NOW_MS + SPAN_MS };
    return (await shared.admit(`client:c${batches}`, batch, [windowTermsOf(window)], none, [], NOW_MS)) === true;
  };
  for (const [name, window] of Object.entries(CASES)) {
    const room = windowCapacity(window, NOW_MS, NOW_MS, SPAN_MS);
    if (room === Number.POSITIVE_INFINITY) {
      assert.equal(await admits(window, 1_000_000), true, `${name}: no bound within the span`);
      continue;
    }
    assert.equal(await admits(window, Math.floor(room)), true, `${name}: ${Math.floor(room)} tokens fit`);
    assert.equal(await admits(window, Math.floor(room) + 1), false, `${name}: ${Math.floor(room) + 1} do not`);
  }
});
