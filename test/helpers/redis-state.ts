// A Redis state backend (budgets, cooldowns) for tests against a real redis-server: the settings every such test
// uses (no local file, a 2 s command timeout so a loaded machine does not fall back to local state), closed when
// the test ends, and checked to be up so that reserves really go to the script.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { Redis } from "ioredis";
import type { Clock } from "../../src/clock.ts";
import { buildConfig } from "../../src/config/load.ts";
import { AvailabilityBook } from "../../src/limits/availability.ts";
import { type BudgetScope, type Denied, isReservation } from "../../src/limits/budgets.ts";
import type { RedisLedger } from "../../src/state/redis-ledger.ts";
import { createRedisStateBackend } from "../../src/state/redis-state.ts";
import { closeWhenTestEnds } from "./late-start.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

export async function useRedisState(
  t: TestContext,
  url: string,
  clock: Clock,
  prefix: string,
  leaseTtlMs?: number,
  learned: Omit<NonNullable<Parameters<typeof createRedisStateBackend>[4]>, "leaseTtlMs"> = {},
): ReturnType<typeof createRedisStateBackend> {
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: url,
      redisKeyPrefix: prefix,
      redisCluster: false,
      flushIntervalMs: 1_000,
      redisCommandTimeoutMs: 2_000,
    },
    new AvailabilityBook(clock, COOLDOWN_DEFAULTS),
    clock,
    { info: () => {}, warn: () => {} },
    leaseTtlMs === undefined ? learned : { ...learned, leaseTtlMs },
  );
  await closeWhenTestEnds(t, () => state.close());
  assert.equal(state.status().isDegraded, false, "Redis is up: reserve goes to the script");
  return state;
}

/** Script calls Redis has run so far (EVALSHA, and EVAL after a script-cache miss), from INFO commandstats. */
export async function scriptCalls(t: TestContext, url: string): Promise<() => Promise<number>> {
  const calls = await scriptCallsByCommand(t, url);
  return async () => {
    const { eval: evals, evalsha } = await calls();
    return evals + evalsha;
  };
}

/** Script calls Redis has run so far, EVAL (the whole script sent) and EVALSHA (its digest) apart. */
export async function scriptCallsByCommand(
  t: TestContext,
  url: string,
): Promise<() => Promise<{ eval: number; evalsha: number }>> {
  const admin = new Redis(url, { lazyConnect: true });
  t.after(() => admin.disconnect());
  await admin.connect();
  return async () => {
    const info = await admin.info("commandstats");
    const callsOf = (command: string): number =>
      Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
    return { eval: callsOf("eval"), evalsha: callsOf("evalsha") };
  };
}

/** Reserves one at a time until the first refusal; returns how many were admitted and the refusal. */
export async function fill(
  ledger: RedisLedger,
  scopes: readonly BudgetScope[],
  tokens: number,
  nowMs: number,
): Promise<{ admitted: number; denied: Denied }> {
  for (let admitted = 0; admitted < 100_000; admitted++) {
    const result = await ledger.reserve(scopes, { tokens }, nowMs);
    if (!isReservation(result)) return { admitted, denied: result };
  }
  assert.fail("never refused");
}
