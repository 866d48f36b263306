// Learned facts in Redis (redis-learned-facts.ts) against a real redis-server: what a process learns while Redis is
// down is written when it is back; what is stored is loaded by a process started later, without what is corrupt
// or claims to be a process's own inference; a stated rate limit binds the other processes at once; an admin reset
// of the budgets deletes a stated concurrency with them; a reload's forget deletes a scope's stated limits.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { cutSubscribers, isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetScope, isReservation } from "../limits/budgets.ts";
import type { RefusalFacts } from "../limits/limit-learning.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { cooldownChannel, learnedConcurrencyKey, learnedRateKey, leasesKey, sharedWindowKey } from "./redis-keys.ts";
import { LEARNED_LIMIT_KEEP_MS } from "./redis-learned-facts.ts";
import type { RedisLedger } from "./redis-ledger.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const skip = isRedisInstalled() ? false : REDIS_MISSING;
const PREFIX = "facts:";

async function startBackend(
  t: TestContext,
  url: string,
  calibration = new PromptCalibration(),
  redisCommandTimeoutMs = 2_000,
) {
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: url,
      redisKeyPrefix: PREFIX,
      redisCluster: false,
      flushIntervalMs: 60_000,
      redisCommandTimeoutMs,
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
    assert.ok(ttlMs > 0 && ttlMs <= LEARNED_LIMIT_KEEP_MS, `expires: ${ttlMs}`);

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
    // The release's ZREM is not awaited: the slot is free once Redis has it.
    await waitFor(async () => (await admin.zcard(leasesKey(PREFIX, OPEN.id))) === 1, "the freed slot in Redis");
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

  test("a stated rate limit binds every process at once and one started later; an older statement does not win", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    first.state.ledger.learnLimits(OPEN, statedRpm(2, Date.now()), Date.now());
    await waitFor(() => learnedRpm(second.state.ledger) === 2, "second to adopt the stated limit");
    const key = learnedRateKey(PREFIX, OPEN.id, "requests", "minute");
    const ttlMs = await admin.pttl(key);
    assert.ok(ttlMs > 0 && ttlMs <= LEARNED_LIMIT_KEEP_MS, `expires: ${ttlMs}`);

    // One request from each; a third from either is refused by Redis, which counts both (second's own window
    // holds one: it is not its local book that refuses).
    assert.ok(isReservation(await second.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now())));
    assert.ok(isReservation(await first.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now())));
    assert.equal(second.state.ledger.check([OPEN], { tokens: 0 }, Date.now()).isAllowed, true);
    const third = await second.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(!isReservation(third), "a third request this minute beyond the stated 2");

    const late = await startBackend(t, server.url);
    assert.equal(learnedRpm(late.state.ledger), 2, "a process started later did not load the stated limit");
    assert.ok(!isReservation(await late.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now())));

    // A later statement replaces it; one older than the one in force (crossing it on the channel) does not.
    const publish = (limit: number, learnedAtMs: number, scopeId = OPEN.id) =>
      admin.publish(
        cooldownChannel(PREFIX),
        JSON.stringify({
          origin: "elsewhere",
          type: "learned",
          fact: { kind: "rate", scopeId, learnedAtMs, rule: { ...RPM_RULE, limit } },
        }),
      );
    await publish(5, Date.now() + 1_000);
    await waitFor(() => learnedRpm(second.state.ledger) === 5, "the later statement");
    await publish(50, Date.now());
    await publish(4, Date.now(), OTHER.id);
    await waitFor(() => learnedRpm(second.state.ledger, OTHER) === 4, "the message after the older statement");
    assert.equal(learnedRpm(second.state.ledger), 5);
  });

  test("stored rate limits that are corrupt, inferred or malformed are skipped; the others are loaded", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const store = (scope: BudgetScope, value: unknown) =>
      admin.set(
        learnedRateKey(PREFIX, scope.id, "requests", "minute"),
        typeof value === "string" ? value : JSON.stringify(value),
      );
    const fact = (scope: BudgetScope, rule: object, learnedAtMs: unknown = Date.now()) => ({
      kind: "rate",
      scopeId: scope.id,
      learnedAtMs,
      rule: { ...RPM_RULE, ...rule },
    });
    const broken = [
      "{not json",
      fact(scopeNamed("inferred"), { isOwnEvidence: true }),
      fact(scopeNamed("unit"), { unit: "bananas" }),
      fact(scopeNamed("limit"), { limit: -1 }),
      fact(scopeNamed("evidence"), { learnedFrom: 7 }),
      fact(scopeNamed("algorithm"), { algorithm: "lottery" }),
      fact(scopeNamed("time"), {}, "yesterday"),
      { ...fact(scopeNamed("scope"), {}), scopeId: "" },
    ];
    for (const [index, value] of broken.entries()) await store(scopeNamed(`broken-${index}`), value);
    await store(OPEN, fact(OPEN, { limit: 7, algorithm: "fixed", offsetMs: 0 }));
    const state = (await startBackend(t, server.url)).state;
    assert.equal(learnedRpm(state.ledger), 7);
    assert.equal(state.ledger.usage(OPEN, Date.now())[0]?.algorithm, "fixed");
    for (const name of ["inferred", "unit", "limit", "evidence", "algorithm", "time", "scope"]) {
      assert.deepEqual(state.ledger.usage(scopeNamed(name), Date.now()), [], name);
    }
  });

  test("a reload's forget deletes the scope's stored limits and reaches every process, also when Redis answers again only later", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url, undefined, 300);
    const second = await startBackend(t, server.url);
    const held = await first.state.ledger.reserve([OPEN], { tokens: 0 }, Date.now());
    assert.ok(isReservation(held));
    first.state.ledger.learnLimits(OPEN, { ...STATED, sentAtMs: Date.now() }, Date.now());
    first.state.ledger.release(held);
    first.state.ledger.learnLimits(OPEN, statedRpm(2, Date.now()), Date.now());
    const keys = [learnedConcurrencyKey(PREFIX, OPEN.id), learnedRateKey(PREFIX, OPEN.id, "requests", "minute")];
    await waitFor(async () => (await admin.exists(...keys)) === 2, "both limits stored");
    await waitFor(
      () =>
        learnedRpm(second.state.ledger) === 2 &&
        second.state.ledger.learnedConcurrency(OPEN.id, Date.now()) !== undefined,
      "second to adopt them",
    );

    first.state.ledger.forget(OPEN.id);
    await waitFor(async () => (await admin.exists(...keys)) === 0, "the stored limits deleted");
    assert.equal(learnedRpm(first.state.ledger), undefined);
    assert.equal(first.state.ledger.learnedConcurrency(OPEN.id, Date.now()), undefined);
    // The forget is published: the second drops the stated limits too (one that reloaded before the first and heard
    // the old key's limit from it would otherwise hold the new key to it for good: a stated limit does not lapse).
    await waitFor(
      () =>
        learnedRpm(second.state.ledger) === undefined &&
        second.state.ledger.learnedConcurrency(OPEN.id, Date.now()) === undefined,
      "the second to drop the forgotten limits",
    );
    const late = await startBackend(t, server.url);
    assert.equal(learnedRpm(late.state.ledger), undefined, "a process started later loaded a forgotten limit");
    assert.equal(late.state.ledger.learnedConcurrency(OPEN.id, Date.now()), undefined);

    // Forgotten while Redis does not answer: deleted once it does.
    first.state.ledger.learnLimits(OTHER, statedRpm(3, Date.now()), Date.now());
    const other = learnedRateKey(PREFIX, OTHER.id, "requests", "minute");
    await waitFor(async () => (await admin.exists(other)) === 1, "the other scope's limit stored");
    server.pause();
    first.state.ledger.forget(OTHER.id);
    await sleep(700);
    server.resume();
    await waitFor(async () => (await admin.exists(other)) === 0, "the forgotten limit deleted after the pause");

    // Learned while Redis is down, forgotten before it is back: never written.
    await server.kill();
    await waitFor(() => first.state.status().isDegraded, "degraded status");
    first.state.ledger.learnLimits(OPEN, statedRpm(4, Date.now()), Date.now());
    first.state.ledger.forget(OPEN.id);
    first.state.ledger.learnLimits(OTHER, statedRpm(6, Date.now()), Date.now());
    await server.restart();
    await waitFor(async () => (await admin.exists(other)) === 1, "what was not forgotten written");
    assert.equal(await admin.exists(...keys), 0);
  });

  test("a forget whose PUBLISH failed after its delete is published again: the listening replicas drop the limits", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    // The replicas connect as a user whose PUBLISH the test can refuse (an error reply, as from a Redis that went
    // away between the delete and the PUBLISH): the delete succeeds, the forget's message does not go out.
    await admin.call("ACL", "SETUSER", "gateway", "on", ">secret", "~*", "&*", "+@all");
    const url = server.url.replace("redis://", "redis://gateway:secret@");
    const first = await startBackend(t, url);
    const second = await startBackend(t, url);
    first.state.ledger.learnLimits(OPEN, statedRpm(2, Date.now()), Date.now());
    await waitFor(() => learnedRpm(second.state.ledger) === 2, "second to adopt the stated limit");

    await admin.call("ACL", "SETUSER", "gateway", "-publish");
    first.state.ledger.forget(OPEN.id);
    // A lesson whose PUBLISH fails is written again whole (already so before the forgets were): it reaches second too.
    first.state.ledger.learnLimits(OTHER, statedRpm(3, Date.now()), Date.now());
    const key = learnedRateKey(PREFIX, OPEN.id, "requests", "minute");
    await waitFor(async () => (await admin.exists(key)) === 0, "the stored limit deleted");
    await sleep(600); // two retries, refused too
    assert.equal(learnedRpm(second.state.ledger), 2, "the forget's PUBLISH was not refused: the test proves nothing");
    assert.equal(learnedRpm(second.state.ledger, OTHER), undefined);
    await admin.call("ACL", "SETUSER", "gateway", "+publish");
    await waitFor(
      () => learnedRpm(second.state.ledger) === undefined,
      "second to hear the forget once it goes out",
      5_000,
    );
    await waitFor(
      () => learnedRpm(second.state.ledger, OTHER) === 3,
      "second to hear the lesson once it goes out",
      5_000,
    );
  });

  test("a replica whose subscription was away drops, once it is back, the limits forgotten meanwhile, and keeps one stated since", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    first.state.ledger.learnLimits(OPEN, statedRpm(2, Date.now()), Date.now());
    first.state.ledger.learnLimits(OTHER, statedRpm(3, Date.now()), Date.now());
    await waitFor(() => learnedRpm(second.state.ledger, OTHER) === 3 && learnedRpm(second.state.ledger) === 2, "both");

    const letSubscribersBack = await cutSubscribers(admin);
    first.state.ledger.forget(OTHER.id);
    first.state.ledger.forget(OPEN.id);
    // The new key's own limit, stated after the forget: stored, and to be kept by the replica that comes back.
    first.state.ledger.learnLimits(OPEN, statedRpm(5, Date.now() + 1), Date.now() + 1);
    await waitFor(
      async () =>
        (await admin.exists(learnedRateKey(PREFIX, OTHER.id, "requests", "minute"))) === 0 &&
        (await admin.get(learnedRateKey(PREFIX, OPEN.id, "requests", "minute")))?.includes('"limit":5') === true,
      "the forgets and the new limit stored",
    );
    assert.equal(learnedRpm(second.state.ledger, OTHER), 3, "second heard the forget: the test proves nothing");
    await letSubscribersBack();
    await waitFor(() => learnedRpm(second.state.ledger, OTHER) === undefined, "second to drop the forgotten limit");
    await waitFor(() => learnedRpm(second.state.ledger) === 5, "second to hold the limit stated since");
    // A process started later finds the forgets' markers and nothing to drop; the new limit binds it.
    const late = await startBackend(t, server.url);
    assert.equal(learnedRpm(late.state.ledger), 5);
    assert.equal(learnedRpm(late.state.ledger, OTHER), undefined);
  });
});

const RPM_RULE = { unit: "requests", window: "minute", limit: 2, learnedFrom: 'body: "RPM: Limit 2"' } as const;
const OTHER: BudgetScope = { ...OPEN, id: "deployment:gh/other" };

function scopeNamed(name: string): BudgetScope {
  return { ...OPEN, id: `deployment:a/${name}` };
}

/** A 429 stating `limit` requests per minute. */
function statedRpm(limit: number, sentAtMs: number): RefusalFacts {
  const stated = [{ unit: "requests", window: "minute", limit, evidence: `body: "RPM: Limit ${limit}"` }] as const;
  return { sentAtMs, kind: "short", hintDelayMs: undefined, stated };
}

/** The learned requests-per-minute limit the process paces the scope by. */
function learnedRpm(ledger: RedisLedger, scope = OPEN): number | undefined {
  const usage = ledger.usage(scope, Date.now());
  return usage.find((window) => window.source === "learned" && window.window === "minute")?.limit;
}
