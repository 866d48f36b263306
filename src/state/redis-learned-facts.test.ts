// Learned facts in Redis (redis-learned-facts.ts) against a real redis-server: what a process learns while Redis is
// down is written when it is back; what is stored is loaded by a process started later, without what is corrupt
// or claims to be a process's own inference; an admin reset of the budgets deletes a stated concurrency with them.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetScope, isReservation } from "../limits/budgets.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { learnedConcurrencyKey, sharedWindowKey } from "./redis-keys.ts";
import { LEARNED_CONCURRENCY_KEEP_MS } from "./redis-learned-facts.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const skip = isRedisInstalled() ? false : REDIS_MISSING;
const PREFIX = "facts:";

async function startBackend(t: TestContext, url: string, calibration = new PromptCalibration()) {
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: url,
      redisKeyPrefix: PREFIX,
      redisCluster: false,
      flushIntervalMs: 60_000,
      redisCommandTimeoutMs: 2_000,
    },
    new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS),
    systemClock,
    undefined,
    { calibration },
  );
  t.after(() => state.close());
  return { state, calibration };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

const OPEN: BudgetScope = { id: "deployment:gh/gpt", rules: [], concurrency: undefined, dayReset: UTC_MIDNIGHT };
const STATED = { sentAtMs: 0, kind: "concurrency", hintDelayMs: 0, stated: [], statedConcurrency: 2 } as const;

describe("learned facts in Redis", { skip }, () => {
  test("learned while Redis is down: written when it is back, and loaded by a process started later", async (t) => {
    const server = await useRedisServer(t);
    const first = await startBackend(t, server.url);
    await server.kill();
    await waitFor(() => first.state.status().isDegraded, "degraded status");
    // Listed 1,000 in, 100 out; ~950 + 100 refused: one shared window.
    first.calibration.learnTooLong("separate/m", 950, { contextTokens: 1_000, maxOutputTokens: 100 }, 100);
    const held = await first.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(isReservation(held));
    first.state.ledger.learnLimits(OPEN, { ...STATED, sentAtMs: Date.now() }, Date.now());
    first.state.ledger.release(held);
    await server.restart();
    await waitFor(() => !first.state.status().isDegraded, "Redis back");
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    await waitFor(
      async () =>
        (await admin.exists(sharedWindowKey(PREFIX, "separate/m"), learnedConcurrencyKey(PREFIX, OPEN.id))) === 2,
      "both facts written",
    );
    const ttlMs = await admin.pttl(learnedConcurrencyKey(PREFIX, OPEN.id));
    assert.ok(ttlMs > 0 && ttlMs <= LEARNED_CONCURRENCY_KEEP_MS, `expires: ${ttlMs}`);

    const late = await startBackend(t, server.url);
    assert.equal(late.calibration.sharesWindow("separate/m"), true);
    assert.equal(late.state.ledger.learnedConcurrency(OPEN.id, Date.now())?.limit, 2);
    // The fleet holds to it: two reserves of the late process take Redis's two slots, a third (from either) waits.
    const one = await late.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    const two = await first.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(isReservation(one) && isReservation(two));
    const three = await late.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(!isReservation(three), "a third request in flight beyond the stated 2");
    first.state.ledger.release(two);
    const four = await late.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now() + 200);
    assert.ok(isReservation(four), "a slot another process freed is free for all");
  });

  test("corrupt and inferred facts are skipped; an admin reset deletes a stated concurrency with the budgets", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    await admin.set(learnedConcurrencyKey(PREFIX, "deployment:a/broken"), "{not json");
    const inferred = { limit: 1, evidence: "x", isOwnEvidence: true, learnedAtMs: Date.now() };
    await admin.set(
      learnedConcurrencyKey(PREFIX, "deployment:a/inferred"),
      JSON.stringify({ kind: "concurrency", scopeId: "deployment:a/inferred", learned: inferred }),
    );
    await admin.set(sharedWindowKey(PREFIX, "a/empty"), JSON.stringify({ kind: "shared-window", deploymentKey: "" }));
    const first = await startBackend(t, server.url);
    assert.equal(first.state.ledger.learnedConcurrency("deployment:a/broken", Date.now()), undefined);
    assert.equal(first.state.ledger.learnedConcurrency("deployment:a/inferred", Date.now()), undefined);
    assert.deepEqual(first.calibration.exportSharedWindows(), []);

    const held = await first.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(isReservation(held));
    first.state.ledger.learnLimits(OPEN, { ...STATED, sentAtMs: Date.now() }, Date.now());
    await waitFor(async () => (await admin.exists(learnedConcurrencyKey(PREFIX, OPEN.id))) === 1, "the fact written");
    await first.state.ledger.reset();
    assert.equal(await admin.exists(learnedConcurrencyKey(PREFIX, OPEN.id)), 0);
    assert.equal(first.state.ledger.learnedConcurrency(OPEN.id, Date.now()), undefined);
  });
});
