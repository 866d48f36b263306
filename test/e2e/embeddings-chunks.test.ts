// An embeddings batch larger than every candidate takes in one request (`max_inputs`, or the limit a refusal stated)
// is sent in chunks (pipeline/embeddings-chunks.ts): the client, OpenAI's SDK here, gets one answer in its order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { LEARNED_INPUTS_TRUST_MS } from "../../src/pipeline/embeddings-chunks.ts";
import { errorOf, openAiClient, recordsOf, send } from "../helpers/e2e.ts";
import {
  answerEachInput,
  chargedScene,
  chargedTokens,
  EMBEDDINGS_ROUTE,
  embeddingsCalls,
  GREEDY,
  reportedUsage,
  sentInputs,
  texts,
  vectorOf,
} from "../helpers/embeddings-scene.ts";
import { MODEL, startScene, windowOf } from "../helpers/limits-scene.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const REQUEST_LOG = { request_log: { enabled: true } };

/** Google's OpenAI-compatible endpoint takes 100 inputs at most, and says so. */
const GOOGLE_BATCH_LIMIT = {
  code: 400,
  message: "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
  status: "INVALID_ARGUMENT",
};

test("a batch above every candidate's max_inputs is sent in chunks, joined in the client's order", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { rpm: 100, tpm: 10_000 } },
    config: REQUEST_LOG,
  });
  answerEachInput(scene.alpha);
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    texts(5).map((text, index) => [index, vectorOf(text)]),
  );
  assert.deepEqual(answer.usage, { prompt_tokens: 15, total_tokens: 15 });
  assert.deepEqual(sentInputs(scene.alpha), [["t0", "t1"], ["t2", "t3"], ["t4"]]);
  // Each chunk is a request of the deployment's budgets, and its tokens are charged.
  const row = await scene.stats("alpha");
  assert.equal(windowOf(row, "deployment:alpha/m", "requests", "minute").used, 3);
  assert.equal(windowOf(row, "deployment:alpha/m", "tokens", "minute").used, 15);
  // One record, an attempt per chunk.
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.equal(records.length, 1);
  assert.deepEqual(
    records[0]?.attempts.map((attempt) => attempt.outcome),
    ["success", "success", "success"],
  );
  // A batch within the limit is sent whole.
  await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(2) });
  assert.deepEqual(sentInputs(scene.alpha).at(-1), ["t0", "t1"]);
});

test("a batch limit a refusal states is learned: the batch is served in chunks, the next one split at once", async (t) => {
  const scene = await startScene(t, { beta: false, alphaModel: { kind: "embedding" } });
  answerEachInput(scene.alpha);
  scene.alpha.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: GOOGLE_BATCH_LIMIT } });
  const client = openAiClient(scene.gateway);
  const answer = await client.embeddings.create({ model: MODEL, input: texts(150) });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    texts(150).map(vectorOf),
  );
  assert.deepEqual(
    sentInputs(scene.alpha).map((input) => (input as unknown[]).length),
    [150, 100, 50],
  );
  const row = (await scene.stats("alpha")) as unknown as {
    refused_features: { feature: string; min_entries?: number }[];
  };
  assert.deepEqual(
    row.refused_features.map(({ feature, min_entries }) => [feature, min_entries]),
    [["input", 101]],
  );
  const again = await client.embeddings.create({ model: MODEL, input: texts(120) });
  assert.equal(again.data.at(-1)?.index, 119);
  assert.deepEqual(
    sentInputs(scene.alpha)
      .slice(3)
      .map((input) => (input as unknown[]).length),
    [100, 20],
  );
});

test("a chunk that fails fails over like any attempt; when none can answer it, the client gets one error", async (t) => {
  const scene = await startScene(t, {
    alphaModel: { kind: "embedding", max_inputs: 2 },
    betaModel: { kind: "embedding", max_inputs: 3 },
    config: REQUEST_LOG,
  });
  const alphaFailing = { text: "t2", times: 1 };
  const betaFailing = { text: "t2", times: 0 };
  answerEachInput(scene.alpha, alphaFailing);
  answerEachInput(scene.beta, betaFailing);
  // Chunks of 2 (the smaller limit): the second fails on alpha and is served by beta.
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    texts(5).map(vectorOf),
  );
  assert.deepEqual(sentInputs(scene.beta), [["t2", "t3"]]);
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.deepEqual(
    records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
    [
      ["alpha", "success"],
      ["alpha", "server_error"],
      ["beta", "success"],
      ["alpha", "success"],
    ],
  );

  // Both fail the second chunk: one error for the whole batch, naming the inputs it could not get.
  const calls = embeddingsCalls(scene.alpha) + embeddingsCalls(scene.beta);
  alphaFailing.times = 1;
  betaFailing.times = 1;
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(5) } });
  assert.equal(failed.status, 502, failed.text);
  assert.match(
    errorOf(failed).message,
    /^Inputs 2 to 4 of 5 \(sent in chunks of 2, .*\) got no answer: the chunk of inputs 2 to 3 failed/,
  );
  assert.equal(embeddingsCalls(scene.alpha) + embeddingsCalls(scene.beta), calls + 3, "no chunk after the failed one");
});

test("chunks wait in the route queue for their deployment's budget instead of outrunning it", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { rps: 1 } },
    config: { routing: { queue_timeout_ms: 5_000 } },
  });
  answerEachInput(scene.alpha);
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    texts(5).map(vectorOf),
  );
  const sentAtMs = scene.alpha.requests
    .filter((request) => request.path === "/v1/embeddings")
    .map((request) => request.receivedAtMs);
  assert.equal(sentAtMs.length, 3);
  // One request a second: each chunk waited for the one before it to leave the window.
  for (const [index, atMs] of sentAtMs.entries()) {
    if (index > 0) assert.ok(atMs - (sentAtMs[index - 1] ?? 0) >= 800, `chunk ${index} sent after ${sentAtMs}`);
  }
});

test("a batch of more chunks than routing.max_attempts is answered: each chunk has its own attempts", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alpha: { retries: 1 },
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { ...REQUEST_LOG, routing: { max_attempts: 2 } },
  });
  // The second chunk fails once and is retried: still within its own attempts (4 chunks, 5 attempts in all).
  answerEachInput(scene.alpha, { text: "t2", times: 1 });
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(7) });
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    texts(7).map((text, index) => [index, vectorOf(text)]),
  );
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.deepEqual(
    records[0]?.attempts.map((attempt) => attempt.outcome),
    ["success", "server_error", "success", "success", "success"],
  );
});

test("a candidate known to take fewer inputs than a batch sent whole is skipped, not sent it to refuse", async (t) => {
  const scene = await startScene(t, {
    alphaModel: { kind: "embedding", max_inputs: 2 },
    betaModel: { kind: "embedding" },
    config: REQUEST_LOG,
  });
  answerEachInput(scene.alpha);
  answerEachInput(scene.beta);
  // beta's limit is unknown: the batch goes whole, to beta alone (alpha, preferred, would refuse 3 inputs).
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(3) });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    texts(3).map(vectorOf),
  );
  assert.deepEqual(sentInputs(scene.alpha), []);
  assert.deepEqual(sentInputs(scene.beta), [texts(3)]);
  const { text } = await recordsOf(scene.gateway, "embeddings");
  const record = (JSON.parse(text) as { data: { skips: { provider: string; reason: string }[] }[] }).data[0];
  assert.match(record?.skips.find((skip) => skip.provider === "alpha")?.reason ?? "", /takes at most 2 inputs.*3/);
  // A batch alpha takes goes to alpha first.
  await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(2) });
  assert.deepEqual(sentInputs(scene.alpha), [texts(2)]);
});

test("a batch waiting for a candidate that takes it lists a candidate too small for it once, however often it queued", async (t) => {
  const scene = await startScene(t, {
    alphaModel: { kind: "embedding", max_inputs: 2, priority: 1 },
    // beta, far better, one request a second: the batches behind the first wait for it, and all but one of those
    // that waited for the same second go back to the queue (a round each), alpha skipped again every round.
    betaModel: { kind: "embedding", priority: 100, limits: { rps: 1 } },
    config: { ...REQUEST_LOG, routing: { queue_timeout_ms: 10_000, max_wait_for_better_ms: 2_000 } },
  });
  answerEachInput(scene.alpha);
  answerEachInput(scene.beta);
  const client = openAiClient(scene.gateway);
  await Promise.all(Array.from({ length: 3 }, () => client.embeddings.create({ model: MODEL, input: texts(3) })));
  assert.deepEqual(sentInputs(scene.alpha), [], "alpha is never sent a batch it is known to refuse");
  const { text } = await recordsOf(scene.gateway, "embeddings");
  const records = (JSON.parse(text) as { data: { skips: { provider: string; reason: string }[] }[] }).data;
  assert.equal(records.length, 3);
  for (const record of records) {
    const reasons = record.skips.filter((skip) => skip.provider === "alpha").map((skip) => skip.reason);
    assert.equal(reasons.length, 1, JSON.stringify(record.skips));
    assert.match(reasons[0] ?? "", /takes at most 2 inputs.*3/);
  }
});

test("a batch whose later chunk fails charges its client the chunks answered, as their deployment was", async (t) => {
  const scene = await chargedScene(t);
  answerEachInput(scene.alpha, { text: "t4", times: 1 });
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: texts(5) },
    headers: GREEDY,
  });
  assert.equal(failed.status, 502, failed.text);
  // Chunks [t0, t1] and [t2, t3] were answered: 12 tokens (3 an input) on alpha's budget, and on the client's.
  assert.deepEqual(await chargedTokens(scene.gateway, 12), { client: 12, deployment: 12 });
});

test("without a route queue, a chunk after the first waits for its budget instead of failing the paid batch", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { rps: 1 } },
    config: REQUEST_LOG,
  });
  answerEachInput(scene.alpha);
  // Before, the second chunk found rps 1 spent and the client got a 429 for the whole batch, the first chunk paid:
  // sent again, it went the same way every time.
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    texts(5).map(vectorOf),
  );
  assert.equal(embeddingsCalls(scene.alpha), 3);
});

test("a batch's usage sums every chunk's, nested fields too; an estimate in any chunk marks the answer and record", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: REQUEST_LOG,
  });
  // Every chunk reports a cached token; the middle one's usage is an upstream gateway's estimate (another LLM
  // Gateway as the provider). Before, the joined usage dropped `prompt_tokens_details`, and the mark and the record's
  // flag were the first and the last chunk's: neither said estimated.
  answerEachInput(scene.alpha, undefined, (input) => ({
    usage: { ...reportedUsage(input).usage, prompt_tokens_details: { cached_tokens: 1 } },
    ...(input.includes("t2") ? { x_gateway: { usage_estimated: true } } : {}),
  }));
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(answer.usage, { prompt_tokens: 15, total_tokens: 15, prompt_tokens_details: { cached_tokens: 3 } });
  assert.deepEqual((answer as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.equal(records[0]?.tokensIn, 15);
  assert.equal(records[0]?.isUsageEstimated, true);
});

interface ChunkedRecord {
  tokensIn: number;
  isUsageEstimated?: boolean;
  attempts: { tokensIn?: number; isUsageEstimated?: boolean }[];
}

test("a chunk answered without usage is counted by its estimate, and the answer and record say estimated", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: REQUEST_LOG,
  });
  // The middle chunk's provider reports no usage: before, the joined usage and the record counted 9 tokens, the
  // first and last chunks' alone, as reported.
  answerEachInput(scene.alpha, undefined, (input) => (input.includes("t2") ? {} : reportedUsage(input)));
  const client = openAiClient(scene.gateway);
  const answer = await client.embeddings.create({ model: MODEL, input: texts(5) });
  const { prompt_tokens: promptTokens, total_tokens: totalTokens } = answer.usage;
  assert.ok(promptTokens > 9, `the middle chunk's estimate is counted: ${JSON.stringify(answer.usage)}`);
  assert.equal(totalTokens, promptTokens);
  assert.deepEqual((answer as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
  const { text } = await recordsOf(scene.gateway, "embeddings");
  const record = (JSON.parse(text) as { data: ChunkedRecord[] }).data[0];
  assert.equal(record?.tokensIn, promptTokens);
  assert.equal(record?.isUsageEstimated, true);
  // Its attempts say which chunk's tokens are the estimate, and add up to the record's.
  assert.deepEqual(
    record?.attempts.map((attempt) => [attempt.tokensIn, attempt.isUsageEstimated]),
    [
      [6, undefined],
      [promptTokens - 9, true],
      [3, undefined],
    ],
  );

  // No chunk reports usage: no usage, as a batch sent whole without one gets.
  answerEachInput(scene.alpha, undefined, () => ({}));
  const unreported = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(5) } });
  assert.equal(unreported.status, 200, unreported.text);
  const body = unreported.json as { usage?: unknown; x_gateway?: unknown; data: unknown[] };
  assert.equal(body.data.length, 5);
  assert.equal(body.usage, undefined);
  assert.equal(body.x_gateway, undefined);
});

test("a chunked answer says it was chunked and by whom; the token metrics count each chunk on its deployment", async (t) => {
  const scene = await startScene(t, {
    alphaModel: { kind: "embedding", max_inputs: 2, cost: "free" },
    betaModel: { kind: "embedding", max_inputs: 2, cost: "paid" },
    config: { ...REQUEST_LOG, routing: { paid: "allowed" } },
  });
  // The middle chunk fails on alpha and is served by beta: 6 tokens there, 9 on alpha (3 an input).
  answerEachInput(scene.alpha, { text: "t2", times: 1 });
  answerEachInput(scene.beta);
  const answered = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(5) } });
  assert.equal(answered.status, 200, answered.text);
  assert.equal(answered.headers["x-gateway-chunks"], "3");
  assert.equal(answered.headers["x-gateway-chunk-providers"], "alpha, beta, alpha");
  assert.equal(answered.headers["x-gateway-chunk-models"], "alpha-model, beta-model, alpha-model");
  // A paid candidate served a chunk: the answer cost money, though the last chunk's was free.
  assert.equal(answered.headers["x-gateway-cost"], "paid");
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.equal((records[0] as { chunks?: number } | undefined)?.chunks, 3);
  const tokensOf = async (provider: string) =>
    sumOf(parsePrometheusText((await send(scene.gateway, "GET", "/metrics")).text), "llm_gateway_tokens_total", {
      provider,
      direction: "in",
    });
  // The record is published as the answer goes out: its metrics may come a turn later.
  for (let tries = 0; tries < 50 && (await tokensOf("alpha")) + (await tokensOf("beta")) < 15; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual([await tokensOf("alpha"), await tokensOf("beta")], [9, 6]);
});

test("a learned input limit is checked again after an hour: still refused it is learned afresh, answered it is cleared", async (t) => {
  const clock = new ManualClock(Date.now());
  const scene = await startScene(t, { beta: false, alphaModel: { kind: "embedding" }, clock });
  answerEachInput(scene.alpha);
  const client = openAiClient(scene.gateway);
  const sizes = (from: number) =>
    sentInputs(scene.alpha)
      .slice(from)
      .map((input) => (input as unknown[]).length);
  scene.alpha.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: GOOGLE_BATCH_LIMIT } });
  await client.embeddings.create({ model: MODEL, input: texts(150) });
  assert.deepEqual(sizes(0), [150, 100, 50]);

  // An hour on, the provider still takes 100: one batch is sent whole again, refused, learned afresh and split; the
  // next is split at once.
  clock.advance(LEARNED_INPUTS_TRUST_MS + 1_000);
  scene.alpha.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: GOOGLE_BATCH_LIMIT } });
  await client.embeddings.create({ model: MODEL, input: texts(150) });
  await client.embeddings.create({ model: MODEL, input: texts(120) });
  assert.deepEqual(sizes(3), [150, 100, 50, 100, 20]);

  // Another hour on, it takes 150 (its limit was raised): the batch sent whole is answered, which clears the lesson.
  clock.advance(LEARNED_INPUTS_TRUST_MS + 1_000);
  const answer = await client.embeddings.create({ model: MODEL, input: texts(150) });
  assert.equal(answer.data.length, 150);
  await client.embeddings.create({ model: MODEL, input: texts(150) });
  assert.deepEqual(sizes(8), [150, 150]);
  const row = (await scene.stats("alpha")) as unknown as { refused_features: unknown[] };
  assert.deepEqual(row.refused_features, []);
});
