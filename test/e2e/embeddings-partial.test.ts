// An embeddings batch sent in chunks whose later chunk no candidate answers: by default one error naming the inputs
// answered and charged; with `x-gateway-partial: allow`, the answered chunks' vectors (pipeline/embeddings-chunks.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send } from "../helpers/e2e.ts";
import { answerEachInput, clientMinuteUsed, sentInputs, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";
import { rateLimited } from "../helpers/mock-upstream.ts";

const SERVER = {
  port: 0,
  host: "127.0.0.1",
  api_keys: [{ key: "sk-client", name: "greedy", limits: { tpm: 1_000_000 } }, "sk-ops"],
};

test("`x-gateway-partial: allow`: a later chunk no candidate answers leaves the answered chunks' vectors, said to be partial", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { server: SERVER, cache: { enabled: true } },
  });
  // The chunk holding t4 fails every time: [t0, t1] and [t2, t3] are answered (3 tokens an input).
  answerEachInput(scene.alpha, { text: "t4", times: 100 });
  const body = { model: MODEL, input: texts(7) };
  const headers = { authorization: "Bearer sk-client", "x-gateway-partial": "allow" };
  const partial = await send(scene.gateway, "POST", "/v1/embeddings", { body, headers });
  // Before: a 502 naming inputs 0 to 3 as answered and charged but not returned.
  assert.equal(partial.status, 200, partial.text);
  assert.equal(partial.headers["x-gateway-partial"], "4/7");
  // The missing chunk's 500 names no wait.
  assert.equal(partial.headers["retry-after"], undefined);
  const answer = partial.json as {
    data: { index: number; embedding: number[] }[];
    usage: { prompt_tokens: number };
    x_gateway: { partial: { answered: number; inputs: number; error: { message: string; code: string } } };
  };
  assert.deepEqual(
    answer.data.map((item) => [item.index, item.embedding]),
    texts(4).map((text, index) => [index, vectorOf(text)]),
  );
  assert.equal(answer.usage.prompt_tokens, 12);
  assert.equal(answer.x_gateway.partial.answered, 4);
  assert.equal(answer.x_gateway.partial.inputs, 7);
  const { error } = answer.x_gateway.partial;
  assert.match(error.message, /^Inputs 4 to 6 of 7 .* got no answer/);
  assert.match(error.message, /inputs 0 to 3 were answered and charged \(12 tokens\), returned in this partial answer/);
  assert.equal(error.code, "upstream_unavailable");
  // The client is charged what was answered (and the failed chunk's attempts, which reported nothing here).
  assert.equal((await clientMinuteUsed(scene.gateway, "greedy", (tokens) => tokens === 12)).tokens, 12);
  // A partial answer is not kept by the answer cache: the same batch is sent again.
  const callsBefore = sentInputs(scene.alpha).length;
  const again = await send(scene.gateway, "POST", "/v1/embeddings", { body, headers });
  assert.equal(again.status, 200, again.text);
  assert.notEqual(again.headers["x-gateway-cache"], "hit");
  assert.ok(sentInputs(scene.alpha).length > callsBefore, "sent again, not given from the cache");
  // Without the header: one error, as before.
  const whole = await send(scene.gateway, "POST", "/v1/embeddings", {
    body,
    headers: { authorization: "Bearer sk-client" },
  });
  assert.equal(whole.status, 502, whole.text);
  assert.match(errorOf(whole).message, /inputs 0 to 3 were answered and charged \(12 tokens\) but are not returned/);
});

test("a partial answer of chunks that reported no usage charges its client the answered chunks' estimates, not the batch's", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { server: SERVER },
  });
  // 11 tokens an input by the estimate (`tN` and 9 words); the chunk holding t4 fails; no answer reports usage.
  answerEachInput(scene.alpha, { text: texts(5, 9)[4] as string, times: 100 }, () => ({}));
  const headers = { authorization: "Bearer sk-client", "x-gateway-partial": "allow" };
  const partial = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: texts(7, 9) },
    headers,
  });
  assert.equal(partial.status, 200, partial.text);
  assert.equal(partial.headers["x-gateway-partial"], "4/7");
  const answer = partial.json as { usage?: { prompt_tokens: number }; x_gateway: { usage_estimated?: boolean } };
  assert.equal(answer.usage?.prompt_tokens, 44, "the answered inputs' estimate, said to be one");
  assert.equal(answer.x_gateway.usage_estimated, true);
  // Before: 77, the reservation of the whole batch (read as a batch answered whole without a usage report), the three
  // inputs that got no answer charged too.
  assert.equal(
    (await clientMinuteUsed(scene.gateway, "greedy", (tokens) => tokens !== undefined && tokens !== 77)).tokens,
    44,
  );
});

test("a partial answer whose missing chunk got a 429 carries its Retry-After: the provider's wait", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { server: SERVER, routing: { total_timeout_ms: 20_000 } },
  });
  answerEachInput(scene.alpha);
  // The chunk holding t4 gets a 429 whose wait (600 s) is past the request's time: not waited for, no answer.
  scene.alpha.setDefault("POST /v1/embeddings", (request) => {
    const input = (request.body as { input: string[] }).input;
    if (input.includes("t4")) return rateLimited({ retryAfter: "600" });
    const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
    return {
      kind: "json",
      body: { object: "list", data, model: "m-up", usage: { prompt_tokens: 3, total_tokens: 3 } },
    };
  });
  const headers = { authorization: "Bearer sk-client", "x-gateway-partial": "allow" };
  const partial = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: texts(7) },
    headers,
  });
  assert.equal(partial.status, 200, partial.text);
  assert.equal(partial.headers["x-gateway-partial"], "4/7");
  const { error } = (partial.json as { x_gateway: { partial: { error: { code: string } } } }).x_gateway.partial;
  assert.equal(error.code, "rate_limit_exceeded");
  // Before: no Retry-After, so the client could not tell when to send inputs 4 to 6.
  const retryAfterSeconds = Number(partial.headers["retry-after"]);
  assert.ok(retryAfterSeconds >= 590 && retryAfterSeconds <= 600, `Retry-After ${partial.headers["retry-after"]}`);
  // The same wait to the millisecond, as on the error (before: no retry-after-ms on the 200).
  const retryAfterMs = Number(partial.headers["retry-after-ms"]);
  assert.ok(Number.isInteger(retryAfterMs), `retry-after-ms ${partial.headers["retry-after-ms"]}`);
  assert.equal(Math.ceil(retryAfterMs / 1000), retryAfterSeconds);
});
