// A learned context window's re-trial (limits/learned-context.ts) with Redis: the window a re-trial's refusal states
// replaces the old lesson in Redis and on every replica, as it does in the book that learned it.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { useRedisState } from "../../test/helpers/redis-state.ts";
import { systemClock } from "../clock.ts";
import {
  CONTEXT_WINDOW_FEATURE,
  LEARNED_CONTEXT_TRUST_MS,
  learnedWindowOf,
  learnStatedWindow,
} from "../limits/learned-context.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { refusedFeaturesKey } from "./redis-keys.ts";

const PREFIX = "ctx:";
const KEY = "alpha/m";
const HOUR_MS = 3_600_000;

async function startBackend(t: TestContext, url: string) {
  const refused = new RefusedFeatures(6 * HOUR_MS);
  await useRedisState(t, url, systemClock, PREFIX, undefined, {
    calibration: new PromptCalibration(),
    refusedFeatures: refused,
  });
  return refused;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("a learned context window in Redis", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("a re-trial's refusal stating a larger window replaces the stored lesson and the other replica's", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    const stored = async () => {
      const text = await admin.hget(refusedFeaturesKey(PREFIX, KEY), CONTEXT_WINDOW_FEATURE);
      return text === null ? undefined : (JSON.parse(text) as { minEntries?: number }).minEntries;
    };
    const learnedAtMs = Date.now() - LEARNED_CONTEXT_TRUST_MS - 60_000;
    learnStatedWindow(first, KEY, 8_000, { limitTokens: 500 }, "too long", learnedAtMs);
    await waitFor(async () => (await stored()) === 501, "the first lesson stored");
    await waitFor(() => learnedWindowOf(second, KEY, Date.now())?.limitTokens === 500, "the first lesson adopted");
    // Past its hour: the re-trial's refusal says 1,000 (the provider raised it).
    learnStatedWindow(first, KEY, 8_000, { limitTokens: 1_000 }, "raised", Date.now());
    assert.equal(learnedWindowOf(first, KEY, Date.now())?.limitTokens, 1_000);
    await waitFor(async () => (await stored()) === 1_001, "the raised window stored (the script kept the smaller)");
    await waitFor(() => learnedWindowOf(second, KEY, Date.now())?.limitTokens === 1_000, "the raised window adopted");
  });
});
