// A reload's forget of a scope's stated limits (redis-learned-facts.ts `forget`) and the loads that read the forget
// markers, against a real redis-server: a forget whose send timed out after Redis ran it is not run again (its
// retry would drop a limit of the new key stored in between), and each load walks the key space once for the
// scopes' markers and limits together; a replica away when Redis lost its data and a scope was forgotten after
// applies the forget's marker once back; an admin reset a replica did not hear is applied from its marker (P reset-id)
// once its subscription is back, once. (The known forgets' pruning: known-forgets.test.ts.)
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { useRedisProxy } from "../../test/helpers/redis-proxy.ts";
import { cutSubscribers, isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import type { BudgetScope } from "../limits/budgets.ts";
import type { RefusalFacts } from "../limits/limit-learning.ts";
import { cooldownChannel, forgottenLimitsKey, learnedRateKey } from "./redis-keys.ts";
import type { RedisLedger } from "./redis-ledger.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const skip = isRedisInstalled() ? false : REDIS_MISSING;
const PREFIX = "forgets:";
const SCOPE: BudgetScope = { id: "deployment:gh/gpt", rules: [], concurrency: undefined, dayReset: UTC_MIDNIGHT };
const RATE_KEY = learnedRateKey(PREFIX, SCOPE.id, "requests", "minute");

async function startBackend(
  t: TestContext,
  url: string,
  redisCommandTimeoutMs = 2_000,
  availability = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS),
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
    availability,
    systemClock,
    undefined,
  );
  t.after(() => state.close());
  return state;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A 429 stating `limit` requests per minute. */
function statedRpm(limit: number, sentAtMs: number): RefusalFacts {
  const stated = [{ unit: "requests", window: "minute", limit, evidence: `body: "RPM: Limit ${limit}"` }] as const;
  return { sentAtMs, kind: "short", hintDelayMs: undefined, stated };
}

function learnedRpm(ledger: RedisLedger): number | undefined {
  const usage = ledger.usage(SCOPE, Date.now());
  return usage.find((window) => window.source === "learned" && window.window === "minute")?.limit;
}

/** A chunk a client sends that deletes the scope's stored limits (the forget's UNLINK, or its script). */
function isForgetDelete(text: string): boolean {
  return text.includes(":learned-rate:") && (text.includes("\r\nunlink\r\n") || text.includes("\r\neval"));
}

describe("a reload's forget in Redis", { skip }, () => {
  test("a forget whose send timed out after Redis ran it is not run again: a limit stored in between stays", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    // The first send of the forget's delete is held by the proxy past the command timeout (the gateway takes it for
    // failed), then reaches Redis and runs; its retry is held until the new key's limit is stored.
    const firstSend = Promise.withResolvers<void>();
    const retry = Promise.withResolvers<void>();
    let sends = 0;
    const proxy = await useRedisProxy(t, server.port, (text) => {
      if (!isForgetDelete(text)) return undefined;
      sends++;
      return sends === 1 ? firstSend.promise : retry.promise;
    });
    const state = await startBackend(t, proxy.url, 300);
    state.ledger.learnLimits(SCOPE, statedRpm(2, Date.now()), Date.now());
    await waitFor(async () => (await admin.exists(RATE_KEY)) === 1, "the old key's limit stored");
    const stored = (await admin.get(RATE_KEY)) ?? "";
    assert.ok(stored.includes('"limit":2'), stored);

    state.ledger.forget(SCOPE.id);
    assert.equal(learnedRpm(state.ledger), undefined);
    await sleep(500); // past the 300 ms command timeout: the send failed, as far as the gateway knows
    firstSend.resolve();
    await waitFor(async () => (await admin.exists(RATE_KEY)) === 0, "the first send to run");
    // Another replica, already reloaded, stores the new key's limit.
    await admin.set(RATE_KEY, stored.replace('"limit":2', '"limit":5'), "PX", 60_000);
    retry.resolve();
    await waitFor(() => sends >= 2, "the forget to be sent again");
    await waitFor(async () => (await admin.exists(forgottenLimitsKey(PREFIX, SCOPE.id))) === 1, "the marker set");
    await sleep(300);
    assert.ok(
      (await admin.get(RATE_KEY))?.includes('"limit":5'),
      "the retry deleted the new key's limit, stored after the forget ran",
    );
  });

  test("Redis lost its data and a reload forgot a scope before a replica was back: that replica drops the stated limit", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    first.ledger.learnLimits(SCOPE, statedRpm(2, Date.now()), Date.now());
    await waitFor(() => learnedRpm(second.ledger) === 2, "the second to adopt the stated limit");

    // Redis loses its data (FLUSHALL, the subscriptions kept away) and the first's reload forgets the scope before
    // the second is back: its marker is the only trace of the forget in the new data set.
    const letSubscribersBack = await cutSubscribers(admin);
    await admin.flushall();
    first.ledger.forget(SCOPE.id);
    await waitFor(async () => (await admin.exists(forgottenLimitsKey(PREFIX, SCOPE.id))) === 1, "the marker set");
    await sleep(300);
    assert.equal(learnedRpm(second.ledger), 2, "the second heard the forget: the test proves nothing");
    await letSubscribersBack();
    await waitFor(() => learnedRpm(second.ledger) === undefined, "the second to drop the forgotten limit", 5_000);
  });

  test("an admin reset published while a replica's subscription was away reaches it once back: stated limits and cooldowns go", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const firstBook = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
    const secondBook = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
    const first = await startBackend(t, server.url, 2_000, firstBook);
    const second = await startBackend(t, server.url, 2_000, secondBook);
    first.ledger.learnLimits(SCOPE, statedRpm(2, Date.now()), Date.now());
    firstBook.recordRateLimited("gh/gpt", { delayMs: 600_000 }, "rate_limited", "HTTP 429");
    await waitFor(
      () => learnedRpm(second.ledger) === 2 && secondBook.cooldownOf("gh/gpt", "gh") !== undefined,
      "the second to adopt the stated limit and the cooldown",
    );

    // The first's admin reset while nobody hears the channel: it deletes what is stored and publishes to no one.
    const letSubscribersBack = await cutSubscribers(admin);
    await first.ledger.reset();
    await sleep(300);
    assert.equal(learnedRpm(second.ledger), 2, "the second heard the reset: the test proves nothing");
    await letSubscribersBack();
    await waitFor(
      () => learnedRpm(second.ledger) === undefined && secondBook.cooldownOf("gh/gpt", "gh") === undefined,
      "the second to apply the reset it missed",
      5_000,
    );
    // Applied once: a limit stated after the reset is adopted and kept through the next loads.
    first.ledger.learnLimits(SCOPE, statedRpm(3, Date.now()), Date.now());
    await waitFor(() => learnedRpm(second.ledger) === 3, "the second to adopt the limit stated since");
    const again = await cutSubscribers(admin);
    await again();
    const subscribers = async () => Number((await admin.pubsub("NUMSUB", cooldownChannel(PREFIX)))[1]);
    await waitFor(async () => (await subscribers()) === 2, "both subscribed again");
    await sleep(300); // the loads that follow a resubscription
    assert.equal(learnedRpm(second.ledger), 3, "a reset applied again at the next load");
  });

  test("a load walks the key space once for the scopes' forget markers, stated limits and every other kind", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const first = await startBackend(t, server.url);
    first.ledger.learnLimits(SCOPE, statedRpm(2, Date.now()), Date.now());
    const other = { ...SCOPE, id: "deployment:gh/other" };
    first.ledger.learnLimits(other, statedRpm(3, Date.now()), Date.now());
    first.ledger.forget(other.id);
    await waitFor(
      async () => (await admin.exists(RATE_KEY, forgottenLimitsKey(PREFIX, other.id))) === 2,
      "a limit and a marker stored",
    );
    const monitor = await admin.monitor();
    t.after(() => monitor.disconnect());
    const scans: string[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "scan") scans.push(args[3] ?? "");
    });
    const late = await startBackend(t, server.url);
    await waitFor(() => learnedRpm(late.ledger) === 2, "the stored limit loaded");
    await sleep(200); // MONITOR's lines come on their own connection
    // One SCAN here is one pass (a few keys): one for every kind (redis-shared-keys.ts; before, one for the markers
    // and the limits, one for the windows, and one for each other kind). redis-shared-keys.test.ts counts the walks
    // of a key space that takes several SCANs.
    assert.deepEqual(scans, [`${PREFIX}[bcfrs]*`]);
  });
});
