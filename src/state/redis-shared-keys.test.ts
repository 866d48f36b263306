// One walk of the key space per load of what replicas share (redis-shared-keys.ts), against a real redis-server: it
// sorts the same keys by kind as the walks per kind before it did, near misses left out; and a replica's load, at
// start and after its subscription was away, issues one SCAN walk (one SCAN with cursor 0, seen through MONITOR on a
// raw connection) and loads every kind of lesson.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  cutSubscribers,
  isRedisInstalled,
  REDIS_MISSING,
  redisStateSettings,
  useRedisServer,
} from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetScope, isReservation } from "../limits/budgets.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import {
  cooldownKey,
  deploymentForgetKey,
  forgottenLimitsKey,
  keysStartingWith,
  learnedConcurrencyKey,
  learnedKey,
  learnedRateKey,
  leasesKey,
  refusedFeaturesKey,
  sharedWindowKey,
} from "./redis-keys.ts";
import { walkSharedKeys } from "./redis-shared-keys.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const skip = isRedisInstalled() ? false : REDIS_MISSING;
const HOUR_MS = 3_600_000;

async function startBackend(t: TestContext, url: string, prefix: string) {
  const availability = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
  const refused = new RefusedFeatures(HOUR_MS);
  const calibration = new PromptCalibration();
  const state = await createRedisStateBackend(
    { ...redisStateSettings(url, prefix), flushIntervalMs: 60_000, redisCommandTimeoutMs: 2_000 },
    availability,
    systemClock,
    undefined,
    // Start-up's load waits for the subscription (a late one loads again: a second walk this test would count).
    { calibration, refusedFeatures: refused, subscribeWaitMs: 10_000 },
  );
  t.after(() => state.close());
  return { state, availability, refused, calibration };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Every key matching `pattern`, as one SCAN walk per kind found them before. */
async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found.sort();
}

/**
 * Redis's MONITOR on a raw connection (ioredis's monitor() fails when another client's SUBSCRIBE goes by): the
 * commands seen so far, one line each, and a way to know every command sent before a point was seen.
 */
async function useMonitor(t: TestContext, url: string) {
  const { port, hostname } = new URL(url);
  const socket = connect(Number(port), hostname);
  t.after(() => socket.destroy());
  const lines: string[] = [];
  let buffered = "";
  socket.setEncoding("utf8").on("data", (text: string) => {
    buffered += text;
    const complete = buffered.split("\r\n");
    buffered = complete.pop() ?? "";
    lines.push(...complete);
  });
  socket.write("MONITOR\r\n");
  await waitFor(() => lines.includes("+OK"), "MONITOR to start");
  const admin = new Redis(url);
  t.after(() => admin.disconnect());
  let marks = 0;
  return {
    /** Resolves once MONITOR showed every command Redis ran before this call (it feeds them in order). */
    async caughtUp(): Promise<void> {
      const mark = `caught-up-${++marks}`;
      await admin.echo(mark);
      await waitFor(() => lines.some((line) => line.includes(`"${mark}"`)), "MONITOR to catch up");
    },
    /** How many SCAN walks began so far (a walk's first SCAN has cursor 0; the others carry Redis's cursor). */
    walks(): number {
      return lines.filter((line) => /^\+\d+\.\d+ \[[^\]]*\] "scan" "0" /i.test(line)).length;
    },
  };
}

const SCOPE: BudgetScope = { id: "deployment:gh/gpt", rules: [], concurrency: undefined, dayReset: UTC_MIDNIGHT };
const STATED = { sentAtMs: 0, kind: "concurrency", hintDelayMs: 0, stated: [], statedConcurrency: 2 } as const;

describe("one walk of the keys per load", { skip }, () => {
  test("sorts by kind the same keys the walks per kind found, and leaves out the near misses", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    // Glob characters in the prefix are matched literally; another prefix's keys are not this gateway's.
    const prefix = "t[1]*?:";
    const other = "t[1]x?:";
    const scope = "deployment:groq/llama";
    const stored = [
      cooldownKey(prefix, "deployment", "groq/llama"),
      cooldownKey(prefix, "provider", "groq:key:0123456789ab"),
      learnedConcurrencyKey(prefix, scope),
      learnedRateKey(prefix, scope, "requests", "minute"),
      forgottenLimitsKey(prefix, scope),
      sharedWindowKey(prefix, "groq/llama"),
      refusedFeaturesKey(prefix, "groq/llama"),
      deploymentForgetKey(prefix, "refusals", "groq/llama"),
      deploymentForgetKey(prefix, "calibration", "mistral/small"),
      // Near misses: a scope's own budget keys, a scope id with a `learned` segment, the single keys, the rows.
      learnedKey(prefix, scope),
      leasesKey(prefix, scope),
      `${prefix}budget:{groq}:deployment:groq/learned-x:counters`,
      `${prefix}data-epoch`,
      `${prefix}reset-id`,
      `${prefix}prompt-calibration`,
      `${prefix}{requests}:rows`,
      cooldownKey(other, "deployment", "groq/llama"),
      refusedFeaturesKey(other, "groq/llama"),
    ];
    // Enough keys besides that a walk takes several SCANs (COUNT 500).
    for (let index = 0; index < 1_200; index++) stored.push(`${prefix}budget:{p${index}}:provider:p${index}:day:0`);
    for (const key of stored) await admin.set(key, "1");

    const keys = await walkSharedKeys(admin, prefix);
    assert.equal(keys.failure, undefined);
    const statedLimits = await scanAll(admin, `${keysStartingWith(`${prefix}budget:`)}:[lf][eo][ar][rg]*`);
    assert.deepEqual([...keys.cooldowns].sort(), await scanAll(admin, keysStartingWith(`${prefix}cooldown:`)));
    assert.deepEqual(
      [...keys.statedLimits].sort(),
      statedLimits.filter((key) => /:(?:learned-concurrency|learned-rate:[^:]+:[^:]+)$/.test(key)),
    );
    assert.deepEqual(
      [...keys.scopeForgets].sort(),
      statedLimits.filter((key) => key.endsWith(":forgotten-limits")),
    );
    assert.deepEqual([...keys.sharedWindows].sort(), await scanAll(admin, keysStartingWith(`${prefix}shared-window:`)));
    assert.deepEqual(
      [...keys.refusedFeatures].sort(),
      await scanAll(admin, keysStartingWith(`${prefix}refused-features:`)),
    );
    assert.deepEqual(
      [...keys.deploymentForgets].sort(),
      await scanAll(admin, keysStartingWith(`${prefix}forgotten-deployment:`)),
    );
    // And exactly the kinds' keys: the near misses are in none of them.
    const found = Object.values(keys).flatMap((value) => (Array.isArray(value) ? value : []));
    assert.deepEqual(found.sort(), stored.slice(0, 9).sort());
  });

  test("a replica's load walks the key space once, at start and after its subscription was away, and loads every kind of lesson", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const prefix = "walk:";
    // Other keys under the prefix, so that a walk takes several SCANs: only its first has cursor 0.
    for (let index = 0; index < 1_200; index++)
      await admin.set(`${prefix}budget:{p${index}}:provider:p${index}:day:0`, "1");
    const first = await startBackend(t, server.url, prefix);
    // Every kind, learned by the first replica: a cooldown, a stated concurrency, a shared window, a refused feature.
    const untilMs = Date.now() + HOUR_MS;
    first.availability.park("groq/llama", untilMs, "daily_quota", "TPD used up", "provider");
    const held = await first.state.ledger.reserve([SCOPE], { tokens: 0 }, Date.now());
    assert.ok(isReservation(held));
    first.state.ledger.learnLimits(SCOPE, { ...STATED, sentAtMs: Date.now() }, Date.now());
    first.state.ledger.release(held);
    first.calibration.learnTooLong("separate/m", 950, { contextTokens: 1_000, maxOutputTokens: 100 }, 100);
    first.refused.learn("groq/llama", "tools", "HTTP 400", Date.now());
    await waitFor(
      async () =>
        (await admin.exists(
          cooldownKey(prefix, "deployment", "groq/llama"),
          learnedConcurrencyKey(prefix, SCOPE.id),
          sharedWindowKey(prefix, "separate/m"),
          refusedFeaturesKey(prefix, "groq/llama"),
        )) === 4,
      "every lesson stored",
    );

    const monitor = await useMonitor(t, server.url);
    const late = await startBackend(t, server.url, prefix);
    await monitor.caughtUp();
    assert.equal(monitor.walks(), 1, "SCAN walks of the start's load (one per kind before: 5)");
    assert.equal(late.availability.cooldownOf("groq/llama", "groq")?.untilMs, untilMs);
    assert.equal(late.state.ledger.learnedConcurrency(SCOPE.id, Date.now())?.limit, 2);
    assert.equal(late.calibration.sharesWindow("separate/m"), true);
    assert.ok(late.refused.lessons().some(([key, refusal]) => key === "groq/llama" && refusal.feature === "tools"));

    // Learned while the late replica does not hear it: its next load (after it subscribes again) finds it.
    await first.state.close();
    const letSubscribersBack = await cutSubscribers(admin);
    await admin.hset(
      refusedFeaturesKey(prefix, "mistral/small"),
      "seed",
      JSON.stringify({ feature: "seed", reason: "HTTP 400", atMs: Date.now(), untilMs }),
    );
    await letSubscribersBack();
    await waitFor(
      () => late.refused.lessons().some(([key]) => key === "mistral/small"),
      "the reload after the subscription was back",
    );
    await monitor.caughtUp();
    assert.equal(monitor.walks(), 2, "SCAN walks of the reload");
    assert.equal(late.calibration.sharesWindow("separate/m"), true, "a stored shared window dropped by the reload");
    assert.ok(
      late.refused.lessons().some(([key]) => key === "groq/llama"),
      "a stored lesson dropped by the reload",
    );
    assert.equal(late.state.ledger.learnedConcurrency(SCOPE.id, Date.now())?.limit, 2);
  });
});
