// A named client's embeddings batches under way (pipeline/client-chunk-charges.ts), each larger than the client's
// whole tpm, counted across two gateway replicas sharing the client's budgets through one real Redis (and a real
// 3-master Redis Cluster): the arrival check and the admission are one script (state/redis-chunked-batches-lua.ts).
// Before 2026-12-08 each replica counted its own batches only: one batch sent to each replica at once was admitted
// twice, and one of them met its deadline with chunks left.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import OpenAI from "openai";
import type { Clock } from "../../src/clock.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { CHUNKED_BATCH_ADMIT_LUA } from "../../src/state/redis-chunked-batches-lua.ts";
import { openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingsCalls, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { MODEL, sceneYaml } from "../helpers/limits-scene.ts";
import type { RecordedRequest } from "../helpers/mock-upstream.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { callsScript, useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CLIENT_KEY = "sk-client-greedy";
/** ~1,520 tokens: two minutes of the client's tpm of 1,000; one such batch fits its 90 s, two do not. */
const INPUT = texts(15, 99);
/** The routing.total_timeout_ms of the scene: every batch's deadline is its arrival plus this. */
const TOTAL_TIMEOUT_MS = 90_000;

/** A clock that runs with real time, and jumps when told (both replicas read the same one). */
function jumpingClock(): Clock & { jump(ms: number): void } {
  let offsetMs = 0;
  return { now: () => Date.now() + offsetMs, jump: (ms) => (offsetMs += ms) };
}

/** A request's outcome, read while it is still running. */
function tracked<T>(promise: Promise<T>): { readonly outcome: "running" | { value: T } | { error: unknown } } {
  const state: { outcome: "running" | { value: T } | { error: unknown } } = { outcome: "running" };
  promise.then(
    (value) => (state.outcome = { value }),
    (error: unknown) => (state.outcome = { error }),
  );
  return state;
}

/**
 * Two replicas of the gateway (state settings `stateA`, `stateB`: one Redis and prefix, maybe reached through
 * different addresses) in front of one embeddings provider; the client `greedy` has a tpm of 1,000. The provider holds
 * its first call until `answerFirst`; every later call is answered at once, the clock jumping `laterJumpMs` first.
 */
async function replicas(t: TestContext, stateA: object, stateB: object, laterJumpMs = 0) {
  const clock = jumpingClock();
  const alpha = await useMock(t);
  const yamlOf = (state: object) =>
    sceneYaml(alpha, undefined, {
      beta: false,
      alpha: { timeout_ms: 60_000 },
      alphaModel: { kind: "embedding" },
      config: {
        server: { port: 0, host: "127.0.0.1", api_keys: [{ key: CLIENT_KEY, name: "greedy", limits: { tpm: 1_000 } }] },
        routing: { total_timeout_ms: TOTAL_TIMEOUT_MS },
        // 2 s, not 200 ms: on a loaded machine a script past its timeout falls back to this replica's own count.
        state: { redis_command_timeout_ms: 2_000, ...state },
      },
    });
  const first = await useGateway(t, yamlOf(stateA), { clock });
  const second = await useGateway(t, yamlOf(stateB), { clock });
  let answerFirst = (): void => {};
  const firstAnswered = new Promise<void>((resolve) => {
    answerFirst = resolve;
  });
  t.after(() => answerFirst());
  let calls = 0;
  alpha.setDefault(EMBEDDINGS_ROUTE, {
    kind: "handler",
    handle: async (request: RecordedRequest, response) => {
      calls += 1;
      if (calls === 1) await firstAnswered;
      else clock.jump(laterJumpMs);
      const input = (request.body as { input: string[] }).input;
      const tokens = estimateTextInputs(input).total;
      const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ object: "list", data, model: "m-up", usage: { prompt_tokens: tokens, total_tokens: tokens } }),
      );
    },
  });
  assert.ok(estimateTextInputs(INPUT).total > 1_000, "above the client's whole tpm: chunked");
  const embed = (gateway: TestGateway, signal?: AbortSignal, input = INPUT) =>
    openAiClient(gateway, CLIENT_KEY).embeddings.create({ model: MODEL, input }, signal ? { signal } : {});
  return { alpha, clock, first, second, answerFirst, embed };
}

/** Waits (10 s at most) for a condition read from Redis. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The 429 of a batch refused for the client's batches under way, with its retry-after in seconds. */
function underWayRefusal(error: unknown): number {
  assert.ok(error instanceof OpenAI.RateLimitError, `refused at its arrival: ${String(error)}`);
  assert.match(error.message, /client `greedy`'s token budgets after the ~\d+ tokens of its batches under way/);
  return Number(error.headers.get("retry-after"));
}

function assertWhole(answer: OpenAI.CreateEmbeddingResponse): void {
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    INPUT.map((text, index) => [index, vectorOf(text)]),
    "the admitted batch is answered whole",
  );
}

/** One batch sent to each replica at once: exactly one is admitted and served whole, the other refused. */
async function oneOfTwo(t: TestContext, state: object): Promise<void> {
  const { alpha, clock, first, second, answerFirst, embed } = await replicas(t, state, state);
  const batches = [tracked(embed(first)), tracked(embed(second))];
  await waitUntil(
    () => batches.some((batch) => batch.outcome !== "running") && embeddingsCalls(alpha) === 1,
    "one batch refused and the other's first chunk sent",
    10_000,
  );
  const refused = batches.find((batch) => batch.outcome !== "running");
  const admitted = batches.find((batch) => batch.outcome === "running");
  assert.ok(refused !== undefined && admitted !== undefined && typeof refused.outcome === "object");
  assert.ok("error" in refused.outcome, "the refused batch failed");
  const retryAfter = underWayRefusal(refused.outcome.error);
  // The admitted batch's deadline (it arrived with this one): each batch under way is over by then.
  assert.ok(retryAfter > 80 && retryAfter <= TOTAL_TIMEOUT_MS / 1000, `retry-after: ${retryAfter}`);
  // Its first chunk answered as the minute turns, its second has room once the first leaves the client's minute.
  clock.jump(59_000);
  answerFirst();
  await waitUntil(() => admitted.outcome !== "running", "the admitted batch to end", 10_000);
  assert.ok(typeof admitted.outcome === "object" && "value" in admitted.outcome, "the admitted batch is answered");
  assertWhole(admitted.outcome.value);
  assert.equal(embeddingsCalls(alpha), 2, "two chunks of the admitted batch, nothing of the refused one");
}

describe("a named client's embeddings batches under way, across replicas sharing Redis", () => {
  test("one batch to each replica at once: one admitted and served whole, the other a 429 at its arrival", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    await oneOfTwo(t, { redis_url: redis.url, redis_key_prefix: `replicas-${Date.now()}:` });
  });

  test("the same on a 3-master Redis Cluster", {
    skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  }, async (t) => {
    const cluster = await useRedisCluster(t);
    await oneOfTwo(t, { redis_url: cluster.url, redis_cluster: true, redis_key_prefix: "replicas-cluster:" });
  });

  test("a replica gone mid-batch: its batch counts at the other's arrival until its deadline, then lapses", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    // The first replica reaches Redis through a proxy that, once it is "gone", passes nothing more: its batch's end
    // never reaches Redis, as a replica killed mid-batch leaves it.
    let isGone = false;
    const proxy = await useRedisProxy(t, redis.port, () => (isGone ? new Promise<void>(() => {}) : undefined));
    const prefix = `replicas-gone-${Date.now()}:`;
    const { alpha, clock, first, second, embed } = await replicas(
      t,
      { redis_url: proxy.url, redis_key_prefix: prefix },
      { redis_url: redis.url, redis_key_prefix: prefix },
      59_000,
    );
    const records: string[] = [];
    first.runtime.recorder.onRecord((record) => records.push(record.outcome));
    const leaving = new AbortController();
    const gone = embed(first, leaving.signal);
    gone.catch(() => {});
    await waitUntil(() => embeddingsCalls(alpha) === 1, "the first replica's batch to send its first chunk", 10_000);
    const arrivedAtMs = clock.now();
    isGone = true;
    leaving.abort();
    await waitUntil(() => records.length === 1, "the first replica's batch to end there", 10_000);
    // Its entry is still in Redis: the other replica counts it (what it has still to charge, until its deadline).
    const dueAtMs = arrivedAtMs + TOTAL_TIMEOUT_MS;
    const askedAtMs = clock.now();
    const refused = await embed(second).then(
      () => undefined,
      (error: unknown) => error,
    );
    const retryAfter = underWayRefusal(refused);
    // The gone batch's deadline, as the second replica read it from Redis (it has no batch of its own).
    const [soonestS, latestS] = [(dueAtMs - clock.now()) / 1000, Math.ceil((dueAtMs - askedAtMs) / 1000)];
    assert.ok(retryAfter >= soonestS && retryAfter <= latestS, `retry-after ${retryAfter} s, due in ${soonestS} s`);
    assert.equal(embeddingsCalls(alpha), 1, "nothing sent of the refused batch");
    // Past its deadline the entry lapses: the next batch is admitted and served whole.
    clock.jump(arrivedAtMs + TOTAL_TIMEOUT_MS - clock.now());
    assertWhole(await embed(second));
    assert.equal(embeddingsCalls(alpha), 3);
  });

  test("Redis lost its data mid-batch (flushed, or restarted empty): the replica running the batch still counts it", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const state = { redis_url: redis.url, redis_key_prefix: `replicas-lost-${Date.now()}:` };
    const { alpha, clock, first, second: other, answerFirst, embed } = await replicas(t, state, state);
    const running = tracked(embed(first));
    await waitUntil(() => embeddingsCalls(alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    const admin = new Redis(redis.url, { retryStrategy: () => null });
    // Closed before the server stops, and silent if it stops first (a failed assertion).
    admin.on("error", () => {});
    t.after(() => admin.disconnect());
    await admin.flushall();
    // 58 s on, its first chunk still in the client's minute: the windows take ~2,090 tokens within the second batch's
    // time, more than it alone (~1,520), less than it and the first's ~611 left. The shared entry of the first is gone;
    // the replica running it still knows it (counted alone before 2026-12-08, and while Redis is down).
    clock.jump(58_000);
    const second = tracked(embed(first));
    await waitUntil(
      () => second.outcome !== "running" || embeddingsCalls(alpha) > 1,
      "the second batch to be refused or sent",
      10_000,
    );
    const outcome = second.outcome;
    assert.ok(typeof outcome === "object" && "error" in outcome, "the second batch is refused at its arrival");
    underWayRefusal(outcome.error);
    // That arrival listed the first batch's entry again, kept until its deadline: the other replica counts it too.
    const [key] = await admin.keys(`${state.redis_key_prefix}chunked-batches:*`);
    assert.ok(key !== undefined, "the first batch's entry is listed again");
    const ttlMs = await admin.pttl(key);
    assert.ok(ttlMs > 0 && ttlMs <= TOTAL_TIMEOUT_MS - 58_000 + 1_000, `kept until its deadline: ${ttlMs} ms`);
    underWayRefusal(
      await embed(other).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    assert.equal(embeddingsCalls(alpha), 1, "nothing sent of the refused batches");
    answerFirst();
    await waitUntil(() => running.outcome !== "running", "the first batch to end", 10_000);
    assert.ok(typeof running.outcome === "object" && "value" in running.outcome, "the first batch is answered");
    assertWhole(running.outcome.value);
  });

  test("Redis restarted empty mid-batch: the replica running it lists it again once back, the other counts it", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const state = { redis_url: redis.url, redis_key_prefix: `replicas-restart-${Date.now()}:` };
    const { alpha, clock, first, second, answerFirst, embed } = await replicas(t, state, state);
    const running = tracked(embed(first));
    await waitUntil(() => embeddingsCalls(alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    await redis.restart();
    const admin = new Redis(redis.url, { retryStrategy: () => null });
    admin.on("error", () => {});
    t.after(() => admin.disconnect());
    await eventually(
      async () => (await admin.keys(`${state.redis_key_prefix}chunked-batches:*`)).length === 2,
      "the first batch listed again by its replica",
    );
    await waitUntil(() => !second.runtime.state.status().isDegraded, "the other replica back on Redis", 10_000);
    // 58 s on, as above: the other replica's batch fits alone, not with the first's ~611 tokens left.
    clock.jump(58_000);
    underWayRefusal(
      await embed(second).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    assert.equal(embeddingsCalls(alpha), 1, "nothing sent of the refused batch");
    answerFirst();
    await waitUntil(() => running.outcome !== "running", "the first batch to end", 10_000);
    assert.ok(typeof running.outcome === "object" && "value" in running.outcome, "the first batch is answered");
    assertWhole(running.outcome.value);
  });

  test("an admission past the command timeout that ran in Redis after all: its batch's end still removes its entry", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    // The first admission script reaches Redis only once its sender has timed out (2 s) and counted the batch alone:
    // it is let through with the next script the replica sends (its first chunk's charge, after the fallback), so that
    // one failure alone is counted against the link.
    let releaseAdmit = (): void => {};
    const admitHeld = new Promise<void>((resolve) => {
      releaseAdmit = resolve;
    });
    t.after(() => releaseAdmit());
    let admits = 0;
    const proxy = await useRedisProxy(t, redis.port, (text) => {
      if (!callsScript(text, CHUNKED_BATCH_ADMIT_LUA)) {
        if (admits === 1 && /\bevalsha\b|\beval\b/.test(text)) releaseAdmit();
        return undefined;
      }
      admits += 1;
      return admits === 1 ? admitHeld : undefined;
    });
    const state = { redis_url: proxy.url, redis_key_prefix: `replicas-late-${Date.now()}:` };
    const { alpha, clock, first, answerFirst, embed } = await replicas(t, state, state);
    const admin = new Redis(redis.url, { retryStrategy: () => null });
    admin.on("error", () => {});
    t.after(() => admin.disconnect());
    const entries = async () => {
      const keys = await admin.keys(`${state.redis_key_prefix}chunked-batches:*`);
      const key = keys.find((name) => !name.endsWith(":rests"));
      return key === undefined ? [] : await admin.zrange(key, "0", "-1");
    };
    const running = tracked(embed(first));
    await waitUntil(() => embeddingsCalls(alpha) === 1, "the batch admitted by its replica's count alone", 10_000);
    await eventually(async () => (await entries()).length === 1, "the late script to list it in Redis");
    const [lateId] = await entries();
    // Served whole: its second chunk fits once its first leaves the client's minute.
    clock.jump(59_000);
    answerFirst();
    await waitUntil(() => running.outcome !== "running", "the first batch to end", 10_000);
    assert.ok(typeof running.outcome === "object" && "value" in running.outcome, "the first batch is answered");
    // ~1,115 tokens, more than the tpm (chunked): alone it fits the ~1,390 the windows take within its time. The first
    // batch's entry, its end never sent, counted its 1,520 tokens until its deadline 30 s on, and refused it.
    const input = texts(11, 99);
    const { total } = estimateTextInputs(input);
    assert.ok(total > 1_000 && total < 1_389, `a second batch of ${total} tokens`);
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    const second = tracked(embed(first, leaving.signal, input));
    await eventually(
      async () => second.outcome !== "running" || (await entries()).some((id) => id !== lateId),
      "the second batch to be refused or listed",
    );
    assert.equal(second.outcome, "running", "the second batch is admitted");
    assert.ok(!(await entries()).includes(lateId ?? ""), "the first batch's entry is gone with it");
    leaving.abort();
  });

  test("a batch whose client left on one replica: its entry goes at once, the other replica admits the next", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    // Coverage written in review (no bug found): the end of a batch cut by its client reaches the shared record.
    const redis = await useRedisServer(t);
    const state = { redis_url: redis.url, redis_key_prefix: `replicas-left-${Date.now()}:` };
    const { alpha, clock, first, second, embed } = await replicas(t, state, state, 59_000);
    const records: string[] = [];
    first.runtime.recorder.onRecord((record) => records.push(record.outcome));
    const leaving = new AbortController();
    const cut = embed(first, leaving.signal);
    cut.catch(() => {});
    await waitUntil(() => embeddingsCalls(alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    leaving.abort();
    await waitUntil(() => records.length === 1, "the first batch's record", 10_000);
    assert.deepEqual(records, ["client_aborted"]);
    // 58 s on, with the first's ~611 tokens still counted the second would not fit before the first's deadline.
    clock.jump(58_000);
    assertWhole(await embed(second));
    assert.equal(embeddingsCalls(alpha), 3, "one chunk of the cut batch, two of the next");
  });

  test("Redis down: each replica counts its own batches under way (as each enforces the budgets alone)", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const state = { redis_url: redis.url, redis_key_prefix: `replicas-down-${Date.now()}:` };
    const { alpha, first, second, embed } = await replicas(t, state, state);
    await redis.kill();
    await waitUntil(
      () => first.runtime.state.status().isDegraded && second.runtime.state.status().isDegraded,
      "both replicas to see Redis down",
      10_000,
    );
    const leaving = new AbortController();
    const batches = [tracked(embed(first, leaving.signal)), tracked(embed(second, leaving.signal))];
    await waitUntil(() => embeddingsCalls(alpha) === 2, "each replica's batch to send its first chunk", 10_000);
    assert.deepEqual(
      batches.map((batch) => batch.outcome),
      ["running", "running"],
      "both admitted: neither replica sees the other's",
    );
    // The first replica still counts its own: a second batch there is refused at once.
    underWayRefusal(
      await embed(first).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    assert.equal(embeddingsCalls(alpha), 2, "nothing sent of the refused batch");
    leaving.abort();
    await waitUntil(() => batches.every((batch) => batch.outcome !== "running"), "both batches to end", 10_000);
  });
});
