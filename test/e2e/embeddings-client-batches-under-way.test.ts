// Two embeddings batches of one named client, each larger than the client's whole tpm (charged chunk by chunk,
// pipeline/client-chunk-charges.ts): the second arrives while the first is under way. Its arrival check counts the
// tokens the first has still to charge to the client's windows. Before 2026-12-07 it counted only what the windows
// held, so both were admitted, the second took the window room the first's check had counted on, and the first,
// promised at its arrival, failed late with a 429 after its first chunk was sent and paid.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import type { Clock } from "../../src/clock.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { openAiClient } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingsCalls, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";
import type { RecordedRequest } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CLIENT_KEY = "sk-client-greedy";
/** Another client, with budgets of its own as large as `greedy`'s. */
const OTHER_KEY = "sk-client-calm";

/** A clock that runs with real time, and jumps when told. */
function jumpingClock(): Clock & { jump(ms: number): void } {
  let offsetMs = 0;
  return { now: () => Date.now() + offsetMs, jump: (ms) => (offsetMs += ms) };
}

/** How the scene's provider answers: the clock's jumps, and the usage it reports against the gateway's estimate. */
interface Answering {
  /** Every call after the first jumps the clock this far (an answer that "takes" most of a minute). */
  readonly laterJumpMs?: number;
  /** The first call jumps the clock this far and is answered at once; absent: held until `answerFirst`. */
  readonly firstJumpMs?: number;
  /** The usage reported, as a multiple of the gateway's estimate of the call's inputs (a provider's own tokenizer). */
  readonly usageFactor?: number;
}

/**
 * The client `greedy` (tpm 1,000) of `m` on alpha, its first embeddings call held until `answerFirst` (or answered at
 * once after `firstJumpMs`); every later call answered at once, after `laterJumpMs`.
 */
async function underWayScene(t: TestContext, redisUrl?: string, answering: Answering = {}) {
  const { laterJumpMs = 0, firstJumpMs, usageFactor = 1 } = answering;
  const clock = jumpingClock();
  const state =
    redisUrl === undefined ? {} : { state: { redis_url: redisUrl, redis_key_prefix: `under-way-${Date.now()}:` } };
  const scene = await startScene(t, {
    beta: false,
    // The first chunk's answer is held while the second batch arrives.
    alpha: { timeout_ms: 60_000 },
    alphaModel: { kind: "embedding" },
    config: {
      server: {
        port: 0,
        host: "127.0.0.1",
        api_keys: [
          { key: CLIENT_KEY, name: "greedy", limits: { tpm: 1_000 } },
          { key: OTHER_KEY, name: "calm", limits: { tpm: 1_000 } },
        ],
      },
      // 90 s: a batch of ~1,500 tokens alone fits (1,000 now, 1,000 more a minute after its first chunk's send).
      routing: { total_timeout_ms: 90_000 },
      ...state,
    },
    clock,
  });
  // The first call (the first batch's first chunk) is answered when the test says; every other at once.
  let answerFirst = (): void => {};
  const firstAnswered = new Promise<void>((resolve) => {
    answerFirst = resolve;
  });
  t.after(() => answerFirst());
  let calls = 0;
  scene.alpha.setDefault(EMBEDDINGS_ROUTE, {
    kind: "handler",
    handle: async (request: RecordedRequest, response) => {
      calls += 1;
      if (calls > 1) clock.jump(laterJumpMs);
      else if (firstJumpMs === undefined) await firstAnswered;
      else clock.jump(firstJumpMs);
      const input = (request.body as { input: string[] }).input;
      const tokens = Math.round(estimateTextInputs(input).total * usageFactor);
      const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ object: "list", data, model: "m-up", usage: { prompt_tokens: tokens, total_tokens: tokens } }),
      );
    },
  });
  const openai = openAiClient(scene.gateway, CLIENT_KEY);
  assert.ok(estimateTextInputs(INPUT).total > 1_000, "above the client's whole tpm: chunked");
  return { scene, clock, openai, answerFirst };
}

/** ~1,520 tokens: two minutes of the client's tpm. */
const INPUT = texts(15, 99);

async function batchesUnderWay(t: TestContext, redisUrl?: string): Promise<void> {
  const { scene, clock, openai, answerFirst } = await underWayScene(t, redisUrl);
  const input = INPUT;
  const first = openai.embeddings.create({ model: MODEL, input });
  await waitUntil(() => embeddingsCalls(scene.alpha) === 1, "the first batch's first chunk to be sent", 10_000);
  // 58 s later (its first chunk still in the client's minute), the second batch of the same size arrives: the
  // client's windows can take ~2,090 tokens within its time, less than both batches' rest.
  clock.jump(58_000);
  let second: unknown = "not settled";
  const secondSettled = openai.embeddings.create({ model: MODEL, input }).then(
    () => {
      second = undefined;
    },
    (caught: unknown) => {
      second = caught;
    },
  );
  // Refused at once, or (admitted) its first chunk sent when the first batch's leaves the minute, 2 s on.
  await waitUntil(
    () => second !== "not settled" || embeddingsCalls(scene.alpha) > 1,
    "the second batch to be refused or sent",
    10_000,
  );
  answerFirst();
  const answer = await first;
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    input.map((text, index) => [index, vectorOf(text)]),
    "the first batch, admitted, is answered whole",
  );
  await secondSettled;
  assert.ok(second instanceof OpenAI.RateLimitError, `the second batch is refused at its arrival: ${String(second)}`);
  assert.match(second.message, /client `greedy`'s token budgets/);
  assert.match(second.message, /of its batches under way/);
  const retryAfter = Number(second.headers.get("retry-after"));
  assert.ok(retryAfter > 0 && retryAfter <= 90, `retry-after: ${retryAfter}`);
  assert.equal(embeddingsCalls(scene.alpha), 2, "nothing of the second batch was sent (two chunks of the first)");
}

describe("a named client's embeddings batches under way", () => {
  test("a second batch that would take the room the first was promised: a 429 at its arrival, the first served whole", async (t) => {
    await batchesUnderWay(t);
  });

  test("through Redis too (one replica)", { skip: isRedisInstalled() ? false : REDIS_MISSING }, async (t) => {
    const redis = await useRedisServer(t);
    await batchesUnderWay(t, redis.url);
  });

  test("a batch under way whose client left no longer counts: the next is admitted and served", async (t) => {
    const { scene, clock, openai } = await underWayScene(t, undefined, { laterJumpMs: 59_000 });
    const records: string[] = [];
    scene.gateway.runtime.recorder.onRecord((record) => records.push(record.outcome));
    const leaving = new AbortController();
    const first = openai.embeddings.create({ model: MODEL, input: INPUT }, { signal: leaving.signal });
    first.catch(() => {});
    await waitUntil(() => embeddingsCalls(scene.alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    leaving.abort();
    await waitUntil(() => records.length === 1, "the first batch's record", 10_000);
    assert.deepEqual(records, ["client_aborted"]);
    // As above, but the first batch is over: its ~611 tokens left are no one's, and the second fits alone.
    clock.jump(58_000);
    const answer = await openai.embeddings.create({ model: MODEL, input: INPUT });
    assert.deepEqual(
      answer.data.map((item) => [item.index, item.embedding]),
      INPUT.map((text, index) => [index, vectorOf(text)]),
    );
  });
  test("a batch under way whose provider counts more than the estimate: its rest still counts, in estimates", async (t) => {
    // The provider counts 1.09x the gateway's estimate: the first chunk (~909 tokens estimated) is charged 991 once
    // answered. What the first batch has still to charge is still its second chunk's estimate (~611), not 1,520 - 991.
    const { scene, clock, openai } = await underWayScene(t, undefined, { firstJumpMs: 58_000, usageFactor: 1.09 });
    const { runtime } = scene.gateway;
    const scope = runtime.snapshot.clientScopes.get("greedy");
    assert.ok(scope !== undefined);
    const held = () => runtime.budgets.usage(scope, clock.now()).find((usage) => usage.unit === "tokens");
    let first: unknown = "not settled";
    const firstSettled = openai.embeddings.create({ model: MODEL, input: INPUT }).then(
      (answer) => {
        first = answer;
      },
      (caught: unknown) => {
        first = caught;
      },
    );
    // Its first chunk answered 58 s after its send, charged what the provider counted; its second waits 2 s more.
    await waitUntil(
      () => held()?.remaining === 1_000 - 991,
      "the first chunk charged what its provider counted",
      10_000,
    );
    // ~1,445 tokens: the windows can take ~2,009 within its time (9 now, 1,000 at each of two minutes' turns), less
    // than it and the first's ~611 left (2,056); with the first's rest read as 1,520 - 991 = 529 it seemed to fit.
    const input = texts(15, 94);
    let second: unknown = "not settled";
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    const secondSettled = openai.embeddings.create({ model: MODEL, input }, { signal: leaving.signal }).then(
      () => {
        second = undefined;
      },
      (caught: unknown) => {
        second = caught;
      },
    );
    await waitUntil(() => second !== "not settled" || first !== "not settled", "either batch to settle", 10_000);
    leaving.abort();
    await Promise.all([firstSettled, secondSettled]);
    assert.ok(second instanceof OpenAI.RateLimitError, `the second batch is refused at its arrival: ${String(second)}`);
    assert.match(second.message, /after the ~611 tokens of its batches under way/);
    assert.ok(!(first instanceof Error), `the first batch is answered: ${String(first)}`);
    assert.deepEqual(
      (first as OpenAI.CreateEmbeddingResponse).data.map((item) => [item.index, item.embedding]),
      INPUT.map((text, index) => [index, vectorOf(text)]),
      "the first batch is answered whole",
    );
    assert.equal(embeddingsCalls(scene.alpha), 2, "nothing of the second batch was sent (two chunks of the first)");
  });
  test("a small batch of the client (within its tpm, not chunked) that fits the window is served while one is under way", async (t) => {
    // Coverage: only a batch larger than a whole token budget of its client is checked against its batches under way.
    const { scene, clock, openai, answerFirst } = await underWayScene(t);
    const first = openai.embeddings.create({ model: MODEL, input: INPUT });
    await waitUntil(() => embeddingsCalls(scene.alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    clock.jump(58_000);
    // ~84 tokens: the minute holds the first chunk's ~909 of 1,000; the first batch's ~611 left go in the next one.
    const small = texts(2, 40);
    assert.ok(estimateTextInputs(small).total <= 1_000 - 909, "fits the window now");
    const answer = await openai.embeddings.create({ model: MODEL, input: small });
    assert.deepEqual(
      answer.data.map((item) => [item.index, item.embedding]),
      small.map((text, index) => [index, vectorOf(text)]),
    );
    answerFirst();
    const whole = await first;
    assert.deepEqual(
      whole.data.map((item) => [item.index, item.embedding]),
      INPUT.map((text, index) => [index, vectorOf(text)]),
      "the first batch is served whole",
    );
    assert.equal(embeddingsCalls(scene.alpha), 3);
  });
  test("another client's batch is not counted: admitted while the first client's is under way", async (t) => {
    // Coverage: the batches under way are counted per client. As in the first test, but the second batch is `calm`'s.
    const { scene, clock, openai, answerFirst } = await underWayScene(t);
    const first = openai.embeddings.create({ model: MODEL, input: INPUT });
    await waitUntil(() => embeddingsCalls(scene.alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    clock.jump(58_000);
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    let other: unknown = "not settled";
    const otherSettled = openAiClient(scene.gateway, OTHER_KEY)
      .embeddings.create({ model: MODEL, input: INPUT }, { signal: leaving.signal })
      .then(
        () => {
          other = undefined;
        },
        (caught: unknown) => {
          other = caught;
        },
      );
    // Admitted: its first chunk is sent at once (its own minute is empty); its second would wait a minute for it.
    await waitUntil(() => other !== "not settled" || embeddingsCalls(scene.alpha) === 2, "calm's first chunk", 10_000);
    assert.equal(other, "not settled", `calm's batch is admitted: ${String(other)}`);
    leaving.abort();
    await otherSettled;
    answerFirst();
    const whole = await first;
    assert.deepEqual(
      whole.data.map((item) => [item.index, item.embedding]),
      INPUT.map((text, index) => [index, vectorOf(text)]),
      "greedy's batch is served whole",
    );
  });
  test("a smaller second batch whose room comes only after the first's deadline: refused, the first served whole", async (t) => {
    // ~1,114 tokens: over the second's own 90 s the windows take ~2,091 (91 now, 1,000 at each of two minutes'
    // turns), enough for it and the first's ~611 left; but before the first's deadline (32 s on) they take ~1,091,
    // and the second's first chunk (~913), sent when the minute turns, would leave the first's last chunk no room.
    const { scene, clock, openai, answerFirst } = await underWayScene(t);
    let first: unknown = "not settled";
    const firstSettled = openai.embeddings.create({ model: MODEL, input: INPUT }).then(
      (answer) => {
        first = answer;
      },
      (caught: unknown) => {
        first = caught;
      },
    );
    await waitUntil(() => embeddingsCalls(scene.alpha) === 1, "the first batch's first chunk to be sent", 10_000);
    clock.jump(58_000);
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    let second: unknown = "not settled";
    const secondSettled = openai.embeddings
      .create({ model: MODEL, input: texts(11, 99) }, { signal: leaving.signal })
      .then(
        () => {
          second = undefined;
        },
        (caught: unknown) => {
          second = caught;
        },
      );
    // Refused at once, or (admitted) its first chunk sent when the first batch's leaves the minute, 2 s on.
    await waitUntil(
      () => second !== "not settled" || embeddingsCalls(scene.alpha) > 1,
      "the second batch to be refused or sent",
      10_000,
    );
    answerFirst();
    await waitUntil(() => first !== "not settled", "the first batch to end", 10_000);
    leaving.abort();
    await Promise.all([firstSettled, secondSettled]);
    assert.ok(second instanceof OpenAI.RateLimitError, `the second batch is refused at its arrival: ${String(second)}`);
    assert.match(second.message, /after the ~611 tokens of its batches under way/);
    assert.ok(!(first instanceof Error), `the first batch, admitted, is answered: ${String(first)}`);
    assert.deepEqual(
      (first as OpenAI.CreateEmbeddingResponse).data.map((item) => [item.index, item.embedding]),
      INPUT.map((text, index) => [index, vectorOf(text)]),
      "the first batch is answered whole",
    );
  });
});
