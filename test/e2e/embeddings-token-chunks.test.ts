// An embeddings batch of more tokens than a whole token budget of every candidate admits in one request is sent in
// chunks that each fit it (pipeline/embeddings-token-chunks.ts), served one after another as the window allows while
// routing.total_timeout_ms lasts; the client, OpenAI's SDK here, gets one answer, or one error saying why not.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { errorOf, openAiClient, recordsOf, send } from "../helpers/e2e.ts";
import { answerEachInput, embeddingsCalls, sentInputs, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene, windowOf } from "../helpers/limits-scene.ts";

const REQUEST_LOG = { request_log: { enabled: true } };

/** The provider counts each input as the gateway estimates it: no calibration moves the chunks' sizes. */
const estimatedUsage = (input: readonly string[]) => {
  const tokens = estimateTextInputs(input).total;
  return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
};

test("a batch larger than every candidate's tpm is sent in chunks that each fit it, answered as one", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", limits: { tpm: 100 } },
    config: REQUEST_LOG,
  });
  // The provider counts a tenth of the estimate: the window has room for the next chunk at once.
  answerEachInput(scene.alpha, undefined, (input) => {
    const tokens = Math.ceil(estimateTextInputs(input).total / 10);
    return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
  });
  // 12 inputs of ~10 tokens: 122 in all, more than the tpm of 100 ever admits in one request.
  const input = texts(12, 8);
  assert.equal(estimateTextInputs(input).total, 122);
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input });
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    input.map((text, index) => [index, vectorOf(text)]),
  );
  const sent = sentInputs(scene.alpha) as string[][];
  assert.deepEqual(
    sent.map((chunk) => chunk.length),
    [10, 2],
  );
  for (const chunk of sent) assert.ok(estimateTextInputs(chunk).total <= 100, `a chunk within the tpm: ${chunk}`);
  assert.equal(answer.usage.prompt_tokens, 10 + 3);
  // Each chunk reserved and charged on the deployment's budgets.
  const row = await scene.stats("alpha");
  assert.equal(windowOf(row, "deployment:alpha/m", "tokens", "minute").used, 13);
  const { records } = await recordsOf(scene.gateway, "embeddings");
  assert.deepEqual(
    records[0]?.attempts.map((attempt) => attempt.outcome),
    ["success", "success"],
  );
});

test("a batch whose chunks the tpm admits only after routing.total_timeout_ms is refused before any chunk", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", limits: { tpm: 20 } },
    config: { routing: { total_timeout_ms: 3_000 } },
  });
  answerEachInput(scene.alpha, undefined, estimatedUsage);
  const startedAtMs = Date.now();
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(3, 8) } });
  // 30 tokens in chunks of 20: the second could go only a minute after the first. Until 2026-12-07 the first chunk was
  // sent and paid, then the second got a 429 past the deadline (embeddings-window-fit.ts).
  assert.equal(failed.status, 413, failed.text);
  const error = errorOf(failed);
  assert.match(error.message, /\(~30 tokens\), sent in chunks of at most 20 tokens/);
  assert.match(error.message, /alpha\/m: 20 tokens left this minute of 20/);
  assert.match(error.message, /routing\.total_timeout_ms \(3000 ms\)/);
  assert.equal(embeddingsCalls(scene.alpha), 0, "nothing paid for a batch that cannot finish");
  assert.ok(Date.now() - startedAtMs < 2_500, "answered at once");
});

test("a batch whose tokens the day's budget cannot hold before routing.total_timeout_ms is refused before any chunk", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", limits: { tpm: 20, tpd: 25 } },
  });
  answerEachInput(scene.alpha, undefined, estimatedUsage);
  // 30 tokens: chunks of 20 fit the tpm, but the day holds 25: the second chunk could only go tomorrow.
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(3, 8) } });
  assert.equal(failed.status, 413, failed.text);
  const error = errorOf(failed);
  assert.match(error.message, /in chunks of at most 20 tokens/);
  assert.match(error.message, /alpha\/m: 25 tokens left this day/);
  assert.equal(embeddingsCalls(scene.alpha), 0, "nothing paid for a batch that cannot finish");
});

test("a later chunk that finds the token window spent waits for it to refill, and the batch is answered whole", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    // A bucket of 600 tokens a minute: 10 tokens come back each second.
    alphaModel: { kind: "embedding", limits: { tpm: 600, window: "bucket" } },
  });
  // The first chunk (55 inputs, 595 tokens by the estimate) is reported as 540: the bucket has 60 tokens of room left,
  // the second chunk (6 inputs, 66 tokens) needs 6 more, about 0.6 s of refill.
  answerEachInput(scene.alpha, undefined, (input) => {
    const tokens = estimateTextInputs(input).total - (input.length > 10 ? 55 : 0);
    return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
  });
  const input = texts(61, 8);
  assert.equal(estimateTextInputs(input).total, 661);
  const answer = await openAiClient(scene.gateway).embeddings.create({ model: MODEL, input });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    input.map(vectorOf),
  );
  const calls = scene.alpha.requests.filter((request) => request.path === "/v1/embeddings");
  assert.deepEqual(
    calls.map((call) => (call.body as { input: unknown[] }).input.length),
    [55, 6],
  );
  const waitedMs = (calls[1]?.receivedAtMs ?? 0) - (calls[0]?.receivedAtMs ?? 0);
  assert.ok(waitedMs >= 400, `the second chunk waited for the bucket: ${waitedMs} ms`);
});

test("a later chunk is sized again when the first chunk's usage raised the deployment's calibration", async (t) => {
  const clock = new ManualClock(Date.now());
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", limits: { tpm: 1_200 } },
    config: { routing: { total_timeout_ms: 1_000_000 } },
    clock,
  });
  // The provider counts what the gateway estimates, and each answer takes a minute (the window is free for the next
  // chunk): the first chunk (1,186 tokens, past MIN_EVIDENCE_TOKENS) teaches a factor of 1.2 (SAFETY_MARGIN), under
  // which the second chunk as first planned (1,196 tokens, 1,436 calibrated) is larger than the whole tpm.
  answerEachInput(scene.alpha, undefined, (input) => {
    clock.advance(61_000);
    return estimatedUsage(input);
  });
  const input = texts(46, 49);
  assert.equal(estimateTextInputs(input).total, 2_382);
  const answered = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input } });
  // Before, the second chunk was refused for good (a 413 naming the 23 inputs answered and charged), the first one
  // paid for; sized again at the new factor, the rest is sent in chunks that fit.
  assert.equal(answered.status, 200, answered.text.slice(0, 800));
  const sent = sentInputs(scene.alpha) as string[][];
  assert.equal(sent[0]?.length, 23);
  for (const chunk of sent.slice(1)) assert.ok(estimateTextInputs(chunk).total * 1.2 <= 1_200, `${chunk.length}`);
  assert.deepEqual(
    (answered.json as { data: { embedding: number[] }[] }).data.map((item) => item.embedding),
    input.map(vectorOf),
  );
});
