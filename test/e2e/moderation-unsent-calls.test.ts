// A Llama Guard moderation of N inputs reserves N requests up front; when it ends early (a call fails, or the client
// goes away), the calls it never sent give their requests back, in the embedded ledger and in Redis's shared windows.
// Without that, a failure at input 2 of 10 spent 10 of the minute's requests for 2 calls the provider saw.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { request } from "undici";
import { scopeKeys } from "../../src/state/redis-keys.ts";
import { recordsOf, send } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { chatCalls, GUARD, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";
const PREFIX = "unsent:";
const SAFE = { kind: "json" as const, body: chatCompletion("safe", GUARD) };
const BOOM = { kind: "json" as const, status: 500, body: { error: { message: "boom", type: "server_error" } } };

/**
 * `guard` on p0 (Llama Guard, `rpm: 5`, one call at a time so that which call fails is known), a native moderation
 * model on p1; `state` is more top-level YAML (a Redis state store).
 */
function scene(
  t: TestContext,
  state = "",
  /** The guard model's limits, and more YAML for p0's entry (`max_in_flight: 1` makes the calls go one at a time). */
  { limits = "{ rpm: 5, concurrency: 1 }", providerExtra = "" } = {},
) {
  return guardScene(t, { guardExtra: `, limits: ${limits}`, providerExtra, state });
}

/** The requests p0/guard's minute window counts, as /stats shows them. */
async function requestsThisMinute(gateway: TestGateway): Promise<number | undefined> {
  const stats = (await send(gateway, "GET", "/stats")).json as {
    deployments: {
      provider: string;
      budgets: { windows: { unit: string; window: string; used: number }[] }[];
    }[];
  };
  const windows = stats.deployments.find((row) => row.provider === "p0")?.budgets.flatMap((scope) => scope.windows);
  return windows?.find((window) => window.unit === "requests" && window.window === "minute")?.used;
}

async function moderate(gateway: TestGateway, input: readonly string[]): Promise<string> {
  const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input } });
  assert.equal(answer.status, 200, answer.text);
  return (answer.json as { model: string }).model;
}

/** A failure at input 2 of 5: three calls sent, two never; the next moderation of two inputs fits the rpm: 5. */
async function failAtThirdInput(gateway: TestGateway, guardMock: MockUpstream, nativeMock: MockUpstream) {
  guardMock.enqueue(CHAT, SAFE, SAFE, BOOM);
  nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(5) });
  assert.equal(await moderate(gateway, ["a", "b", "c", "d", "e"]), "omni-moderation-latest");
  assert.equal(chatCalls(guardMock), 3);
  const { records } = await recordsOf(gateway, "moderations");
  assert.deepEqual(
    records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
    [
      ["p0", "server_error"],
      ["p1", "success"],
    ],
  );
}

function redisState(url: string): string {
  return `state:\n  redis_url: ${url}\n  redis_key_prefix: "${PREFIX}"\n  redis_command_timeout_ms: 2000\n`;
}

/** p0/guard's minute in Redis: its `r` (the requests counted), and a wait until it reads `expected` (5 s at most). */
async function sharedMinute(t: TestContext, url: string) {
  const [, minuteRuns = ""] =
    scopeKeys(PREFIX, "deployment:p0/guard", { dayStartMs: 0, monthStartMs: 0 }).sliding[1] ?? [];
  const admin = new Redis(url, { lazyConnect: true });
  await admin.connect();
  t.after(() => admin.disconnect());
  const requests = () => admin.hget(minuteRuns, "r");
  const once = async (expected: string): Promise<string | null> => {
    const deadline = Date.now() + 5_000;
    let counted = await requests();
    while (counted !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      counted = await requests();
    }
    return counted;
  };
  return { requests, once };
}

/** p0/guard's request bucket as /stats shows it (the gateway's own ledger). */
async function bucketRemaining(gateway: TestGateway): Promise<number | undefined> {
  const stats = (await send(gateway, "GET", "/stats")).json as {
    deployments: {
      provider: string;
      budgets: { windows: { unit: string; window: string; algorithm: string; remaining: number }[] }[];
    }[];
  };
  const windows = stats.deployments.find((row) => row.provider === "p0")?.budgets.flatMap((scope) => scope.windows);
  return windows?.find((window) => window.unit === "requests" && window.algorithm === "bucket")?.remaining;
}

/** A request bucket of 4 a minute, one call at a time. */
const BUCKET_LIMITS = "{ rpm: 4, window: bucket, concurrency: 1 }";

/** A failure at input 1 of 4: two calls sent, two never. */
async function failAtSecondInput(gateway: TestGateway, guardMock: MockUpstream, nativeMock: MockUpstream) {
  guardMock.enqueue(CHAT, SAFE, BOOM);
  nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(4) });
  assert.equal(await moderate(gateway, ["a", "b", "c", "d"]), "omni-moderation-latest");
  assert.equal(chatCalls(guardMock), 2);
}

/**
 * What p0/guard's request bucket of 4 a minute has left in Redis: the limit less its debt after the refill since
 * (window-counters.ts bucketUsed; compared in whole requests, as the ledgers do); a wait until it reads `expected`.
 */
async function sharedBucketRemaining(t: TestContext, url: string, expected: number): Promise<number | undefined> {
  const { counters } = scopeKeys(PREFIX, "deployment:p0/guard", { dayStartMs: 0, monthStartMs: 0 });
  const admin = new Redis(url, { lazyConnect: true });
  await admin.connect();
  t.after(() => admin.disconnect());
  const read = async (): Promise<number | undefined> => {
    const value = await admin.hget(counters, "b:r:60000:4");
    if (value === null) return undefined;
    const [used = 0, atMs = 0] = value.split(",").map(Number);
    const debt = Math.max(0, used - ((Date.now() - atMs) * 4) / 60_000);
    return 4 - Math.ceil(debt - 1e-9);
  };
  const deadline = Date.now() + 5_000;
  let remaining = await read();
  while (remaining !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    remaining = await read();
  }
  return remaining;
}

describe("moderation calls never sent", () => {
  test("a failure at input 2 of 5 leaves the 3 calls sent counted, not 5: two more inputs still fit rpm: 5", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t);
    await failAtThirdInput(gateway, guardMock, nativeMock);
    assert.equal(await requestsThisMinute(gateway), 3);
    guardMock.enqueue(CHAT, SAFE, SAFE);
    assert.equal(await moderate(gateway, ["f", "g"]), GUARD);
    assert.equal(chatCalls(guardMock), 5);
    assert.equal(await requestsThisMinute(gateway), 5);
  });

  test("a client gone during input 0 of 5: only the call in flight stays counted", async (t) => {
    const { gateway, guardMock } = await scene(t);
    guardMock.enqueue(CHAT, { ...SAFE, delayMs: 2_000 });
    const leaving = new AbortController();
    const gone = request(`${gateway.url}/v1/moderations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "guard", input: ["a", "b", "c", "d", "e"] }),
      signal: leaving.signal,
    }).catch(() => "aborted");
    while (chatCalls(guardMock) < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    leaving.abort();
    assert.equal(await gone, "aborted");
    const deadline = Date.now() + 5_000;
    while ((await recordsOf(gateway, "moderations")).records.length === 0) {
      assert.ok(Date.now() < deadline, "the abandoned moderation left no record");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(chatCalls(guardMock), 1);
    assert.equal(await requestsThisMinute(gateway), 1);
    // Four more calls fit the minute.
    guardMock.enqueue(CHAT, SAFE, SAFE, SAFE, SAFE);
    assert.equal(await moderate(gateway, ["f", "g", "h", "i"]), GUARD);
  });

  test("with Redis: the shared minute gives back the calls never sent (3 counted of 5 reserved)", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const { gateway, guardMock, nativeMock } = await scene(t, redisState(redis.url));
    await failAtThirdInput(gateway, guardMock, nativeMock);
    const minute = await sharedMinute(t, redis.url);
    // The give-back is a write sent after the attempt: it lands within a few ms.
    assert.equal(await minute.once("3"), "3", "Redis's minute counts the three calls sent");
    guardMock.enqueue(CHAT, SAFE, SAFE);
    assert.equal(await moderate(gateway, ["f", "g"]), GUARD);
    assert.equal(await minute.requests(), "5");
  });

  test("with Redis and a request bucket (rpm: 4, window: bucket): the shared bucket gets the calls never sent back, as the embedded one does", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const embedded = await scene(t, "", { limits: BUCKET_LIMITS });
    await failAtSecondInput(embedded.gateway, embedded.guardMock, embedded.nativeMock);
    const embeddedRemaining = await bucketRemaining(embedded.gateway);
    assert.equal(embeddedRemaining, 2, "the embedded bucket owes the two calls sent");

    const redis = await useRedisServer(t);
    const { gateway, guardMock, nativeMock } = await scene(t, redisState(redis.url), { limits: BUCKET_LIMITS });
    await failAtSecondInput(gateway, guardMock, nativeMock);
    // The give-back is a write sent after the attempt: it lands within a few ms (before it, the bucket owes 4).
    assert.equal(
      await sharedBucketRemaining(t, redis.url, embeddedRemaining),
      embeddedRemaining,
      "Redis's bucket has what the embedded one has left",
    );
    // The reserve script reads the shared bucket: two more calls fit it (without the give-back, a 4 of 4 debt sent
    // them to p1).
    guardMock.enqueue(CHAT, SAFE, SAFE);
    assert.equal(await moderate(gateway, ["e", "f"]), GUARD);
    assert.equal(chatCalls(guardMock), 4);
  });

  test("with Redis and a budget lease (rpm: 10000): the calls never sent go back to the lease, which gives them back to Redis", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    // No concurrency limit (a scope with one never leases): max_in_flight: 1 makes the calls go one at a time.
    const { gateway, guardMock, nativeMock } = await scene(t, redisState(redis.url), {
      limits: "{ rpm: 10000 }",
      providerExtra: "    max_in_flight: 1\n",
    });
    await failAtThirdInput(gateway, guardMock, nativeMock);
    // The reserve charged the five calls and a lease beside them; the lease ends within a second and gives back what
    // it did not spend, the two calls never sent included.
    const minute = await sharedMinute(t, redis.url);
    assert.equal(await minute.once("3"), "3", "Redis's minute counts the three calls sent once the lease is over");
  });
});
