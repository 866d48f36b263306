// Prompt calibrations kept in Redis: a process started later scales its estimates with what the others learned,
// whether they wrote it on their flush interval or when they closed.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { calibrationKey } from "./redis-keys.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const skip = isRedisInstalled() ? false : REDIS_MISSING;

async function startBackend(t: TestContext, url: string, calibration: PromptCalibration, flushIntervalMs = 60_000) {
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: url,
      redisKeyPrefix: "cal:",
      redisCluster: false,
      flushIntervalMs,
      redisCommandTimeoutMs: 2_000,
    },
    new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS),
    systemClock,
    undefined,
    { calibration },
  );
  t.after(() => state.close());
  return state;
}

function taught(): PromptCalibration {
  const calibration = new PromptCalibration();
  for (let index = 0; index < 4; index++) calibration.learn("groq/llama", 3_000, 1_500);
  return calibration;
}

describe("prompt calibrations in Redis", { skip }, () => {
  test("written when a process closes, loaded by the next one", async (t) => {
    const redis = await useRedisServer(t);
    const first = taught();
    const state = await startBackend(t, redis.url, first);
    // Learned after start, as a serving process does.
    first.learn("mistral/small", 2_000, 3_000);
    await state.close();
    const next = new PromptCalibration();
    await startBackend(t, redis.url, next);
    assert.equal(next.factorOf("groq/llama"), first.factorOf("groq/llama"));
    assert.ok(next.factorOf("groq/llama") < 1);
    assert.equal(next.factorOf("mistral/small"), first.factorOf("mistral/small"));
  });

  test("written every flush interval while serving; a corrupt field is skipped", async (t) => {
    const redis = await useRedisServer(t);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    await admin.hset(calibrationKey("cal:"), "broken/m", "{not json");
    const first = new PromptCalibration();
    await startBackend(t, redis.url, first, 50);
    for (let index = 0; index < 4; index++) first.learn("groq/llama", 3_000, 1_500);
    const deadline = Date.now() + 3_000;
    while ((await admin.hget(calibrationKey("cal:"), "groq/llama")) === null) {
      assert.ok(Date.now() < deadline, "the calibration was never written");
      await sleep(20);
    }
    const next = new PromptCalibration();
    await startBackend(t, redis.url, next);
    assert.equal(next.factorOf("groq/llama"), first.factorOf("groq/llama"));
    assert.equal(next.factorOf("broken/m"), 1);
  });

  test("a second signal's last write sends what was learned since the last flush (the process exits right after)", async (t) => {
    const redis = await useRedisServer(t);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const calibration = new PromptCalibration();
    // No timed flush during the test: only the write before the exit can put it in Redis.
    const state = await startBackend(t, redis.url, calibration, 3_600_000);
    for (let index = 0; index < 4; index++) calibration.learn("groq/llama", 3_000, 1_500);
    await state.writeBeforeExit(1_000);
    const written = await admin.hget(calibrationKey("cal:"), "groq/llama");
    assert.ok(written !== null, "the calibration learned since the last flush was not written before the exit");
  });
});
