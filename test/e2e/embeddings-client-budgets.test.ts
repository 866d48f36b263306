// A named client's own token budget below an embeddings batch's tokens (pipeline/client-chunk-charges.ts): the batch
// is served in chunks that each fit the client's budget, its tokens charged chunk by chunk as the client's window
// slides (its request once), through the openai SDK's `embeddings.create` with an input array; with the embedded
// ledger and with Redis (a real redis-server). Before 2026-12-07 such a batch was a 413 at once.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import type { Clock } from "../../src/clock.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { openAiClient, send } from "../helpers/e2e.ts";
import { answerEachInput, embeddingsCalls, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CLIENT_KEY = "sk-client-greedy";
const MINUTE_MS = 60_000;
/**
 * The gateway counts a chunk from its send, the upstream from its arrival: a millisecond's difference in transit
 * between two calls (seen) puts the next one at 59,999 ms. A chunk sent without a wait comes 59 s after the last.
 */
const TRANSIT_SLACK_MS = 100;

/** A clock that runs with real time, and jumps when told (an upstream's answer "takes" most of a minute). */
function jumpingClock(): Clock & { jump(ms: number): void } {
  let offsetMs = 0;
  return { now: () => Date.now() + offsetMs, jump: (ms) => (offsetMs += ms) };
}

/** The scene: `m` an embedding model of alpha (no budgets of its own), the client `greedy` with `limits`. */
async function clientScene(
  t: TestContext,
  limits: Record<string, number>,
  options: { clock?: Clock; totalTimeoutMs?: number; redisUrl?: string } = {},
) {
  const state =
    options.redisUrl === undefined
      ? {}
      : { state: { redis_url: options.redisUrl, redis_key_prefix: `client-chunks-${Date.now()}:` } };
  return startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding" },
    config: {
      server: { port: 0, host: "127.0.0.1", api_keys: [{ key: CLIENT_KEY, name: "greedy", limits }, "sk-ops"] },
      routing: { total_timeout_ms: options.totalTimeoutMs ?? 1_000_000 },
      ...state,
    },
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}

/** Each call's time (on the gateway's clock) and tokens, as the upstream counted them (the gateway's estimate). */
interface Call {
  readonly atMs: number;
  readonly tokens: number;
}

/**
 * A batch of ~3,000 tokens under a client tpm of 1,000 is answered whole, and no minute of the upstream's calls holds
 * more than 1,000 of its tokens: each answer takes 59 s of the clock, so a chunk sent without waiting for the client's
 * window would land within a minute of the one before it.
 */
async function servedOverTheWindows(t: TestContext, redisUrl?: string): Promise<void> {
  const clock = jumpingClock();
  const limits = { tpm: 1_000, tpd: 100_000, rpd: 100 };
  const scene = await clientScene(t, limits, { clock, ...(redisUrl === undefined ? {} : { redisUrl }) });
  const calls: Call[] = [];
  answerEachInput(scene.alpha, undefined, (input) => {
    const tokens = estimateTextInputs(input).total;
    calls.push({ atMs: clock.now(), tokens });
    clock.jump(59_000);
    return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
  });
  const input = texts(30, 99);
  const total = estimateTextInputs(input).total;
  assert.ok(total > 2_900 && total <= 3_100, `~3,000 tokens: ${total}`);
  const answer = await openAiClient(scene.gateway, CLIENT_KEY).embeddings.create({ model: MODEL, input });
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    input.map((text, index) => [index, vectorOf(text)]),
  );
  assert.equal(answer.usage.prompt_tokens, total);
  assert.ok(calls.length >= 3, `in chunks: ${calls.length}`);
  assert.equal(
    calls.reduce((sum, call) => sum + call.tokens, 0),
    total,
  );
  // The client paid each token once (its day), and one request: the chunks' charges are tokens alone.
  assert.deepEqual(await clientDayUsed(scene.gateway, total), { requests: 1, tokens: total });
  for (const call of calls) {
    const inWindow = calls.filter(
      (other) => other.atMs > call.atMs - MINUTE_MS + TRANSIT_SLACK_MS && other.atMs <= call.atMs,
    );
    const tokens = inWindow.reduce((sum, other) => sum + other.tokens, 0);
    assert.ok(tokens <= 1_000, `the minute up to ${call.atMs} holds ${tokens} tokens: ${JSON.stringify(calls)}`);
  }
}

/** The client's day, from /stats (read with a key without a name), polled until its tokens are `expected`. */
async function clientDayUsed(
  gateway: TestGateway,
  expected: number,
): Promise<{ requests: number | undefined; tokens: number | undefined }> {
  let used: { requests: number | undefined; tokens: number | undefined } = { requests: undefined, tokens: undefined };
  for (let tries = 0; tries < 100 && used.tokens !== expected; tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const stats = (await send(gateway, "GET", "/stats", { headers: { authorization: "Bearer sk-ops" } })).json as {
      clients?: Record<string, { budgets: { unit: string; window: string; used: number }[] }>;
    };
    const windows = stats.clients?.greedy?.budgets ?? [];
    const dayOf = (unit: string) => windows.find((window) => window.unit === unit && window.window === "day")?.used;
    used = { requests: dayOf("requests"), tokens: dayOf("tokens") };
  }
  return used;
}

describe("embeddings batches under a named client's own token budget", () => {
  test("a batch of ~3,000 tokens under a client tpm of 1,000 is served in full, chunk by chunk over the windows", async (t) => {
    await servedOverTheWindows(t);
  });

  test("through Redis too: the client's windows in the shared ledger are never exceeded", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    await servedOverTheWindows(t, redis.url);
  });

  test("one input alone above the client's tpm: a 413 naming the client's limit, nothing sent", async (t) => {
    const scene = await clientScene(t, { tpm: 1_000 });
    answerEachInput(scene.alpha);
    const input = [`t0 ${"word ".repeat(1_200)}`, "t1 word"];
    const error = await openAiClient(scene.gateway, CLIENT_KEY)
      .embeddings.create({ model: MODEL, input })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError && error.status === 413, String(error));
    assert.match(
      error.message,
      /One input of this embeddings batch \(~\d+ tokens\) is larger than a whole token budget of client `greedy` \(over its tpm budget \(0\/1000 tokens, needs \d+\)\)/,
    );
    assert.equal(embeddingsCalls(scene.alpha), 0);
  });

  test("a batch the client's window takes only from a start whose wait is past routing.total_timeout_ms: a 429 with retry-after, no upstream call", async (t) => {
    // 90 s: from now the window has 91 tokens, then 1,000 when the first request leaves it (60 s), not the batch's
    // 1,515; from then on it has 2,000 within the time.
    const scene = await clientScene(t, { tpm: 1_000 }, { totalTimeoutMs: 90_000 });
    answerEachInput(scene.alpha, undefined, (input) => {
      const tokens = estimateTextInputs(input).total;
      return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
    });
    const openai = openAiClient(scene.gateway, CLIENT_KEY);
    // 900 of the client's 1,000 tokens this minute.
    await openai.embeddings.create({ model: MODEL, input: texts(9, 99) });
    assert.equal(embeddingsCalls(scene.alpha), 1);
    const startedAtMs = Date.now();
    const error = await openai.embeddings.create({ model: MODEL, input: texts(15, 99) }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.RateLimitError, String(error));
    const retryAfter = Number(error.headers.get("retry-after"));
    assert.ok(retryAfter > 50 && retryAfter <= 60, `retry when the minute frees: ${retryAfter}`);
    assert.ok(Number(error.headers.get("retry-after-ms")) > 50_000);
    assert.match(
      error.message,
      /cannot be charged to client `greedy`'s token budgets before routing\.total_timeout_ms \(90000 ms\) ends: 91 tokens left this minute of 1000\. Nothing was sent/,
    );
    assert.equal(embeddingsCalls(scene.alpha), 1, "no upstream call for the batch");
    assert.ok(Date.now() - startedAtMs < 4_000, "answered without waiting for the window");
  });

  test("a batch needing more of the client's windows than routing.total_timeout_ms spans: a 413 before any chunk", async (t) => {
    const scene = await clientScene(t, { tpm: 1_000 }, { totalTimeoutMs: 120_000 });
    answerEachInput(scene.alpha);
    // ~3,000 tokens: three minutes of the tpm, from a start at the earliest; the default time is two.
    const error = await openAiClient(scene.gateway, CLIENT_KEY)
      .embeddings.create({ model: MODEL, input: texts(30, 99) })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError && error.status === 413, String(error));
    assert.match(
      error.message,
      /client `greedy`'s token budgets .* send fewer inputs in a request, or raise routing\.total_timeout_ms/,
    );
    assert.equal(embeddingsCalls(scene.alpha), 0, "nothing paid for a batch that cannot finish");
  });
});
