// The embeddings door as the real clients call it: OpenAI's SDK (and LangChain's OpenAIEmbeddings on it) asks for
// base64 unless told otherwise and decodes whatever comes as base64, so the answer must be in the encoding asked for,
// whatever the provider sent.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenAIEmbeddings } from "@langchain/openai";
import { ManualClock } from "../../src/clock.ts";
import { errorOf, openAiClient, send, twoProviderScene, useGateway, useMock } from "../helpers/e2e.ts";
import { answerWith, EMBEDDINGS_ROUTE, embeddingPair, embeddingScene, VECTOR } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene, windowOf } from "../helpers/limits-scene.ts";

test("a provider that ignores encoding_format: base64: the SDK and LangChain still get the floats", async (t) => {
  const { mock, gateway } = await embeddingScene(t);
  answerWith(mock, (vector) => vector);
  const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: "hello" });
  assert.equal((mock.requests.at(-1)?.body as { encoding_format?: string } | undefined)?.encoding_format, "base64");
  assert.deepEqual(answer.data[0]?.embedding, VECTOR);

  const langchain = new OpenAIEmbeddings({
    model: "embed",
    apiKey: "x",
    configuration: { baseURL: gateway.baseUrl },
    maxRetries: 0,
  });
  assert.deepEqual(await langchain.embedDocuments(["one", "two"]), [VECTOR, VECTOR]);
});

test("a provider answering base64 to a client that asked for floats (or said nothing): numbers", async (t) => {
  const { mock, gateway } = await embeddingScene(t);
  answerWith(mock, (vector) => Buffer.from(new Float32Array(vector).buffer).toString("base64"));
  for (const format of [{ encoding_format: "float" }, {}]) {
    const response = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "embed", input: "hi", ...format },
    });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual((response.json as { data: { embedding: unknown }[] }).data[0]?.embedding, VECTOR);
  }
  // Asked for base64, it is passed on as it came.
  const asked = await send(gateway, "POST", "/v1/embeddings", {
    body: { model: "embed", input: "hi", encoding_format: "base64" },
  });
  const expected = Buffer.from(new Float32Array(VECTOR).buffer).toString("base64");
  assert.equal((asked.json as { data: { embedding: unknown }[] }).data[0]?.embedding, expected);
});

test("an answer missing inputs' embeddings is no answer: the next provider serves the batch", async (t) => {
  const { first, second, gateway } = await twoProviderScene(t, {
    model: "embed",
    firstModel: "{ id: embed-first, kind: embedding }",
    secondModel: "{ id: embed-second, kind: embedding }",
    // A bad answer is retried on the same candidate first (as a 5xx): once is enough here.
    firstKeys: "retries: 0",
    keepsRequestLog: false,
  });
  answerWith(second, (vector) => vector);
  const entry = { object: "embedding", index: 0, embedding: VECTOR };
  const usage = { prompt_tokens: 2, total_tokens: 2 };
  const broken = [
    { object: "list", data: [], model: "embed-first", usage },
    { object: "list", data: [entry], model: "embed-first", usage },
    { object: "list", data: [entry, { object: "embedding", index: 1 }], model: "embed-first", usage },
  ];
  for (const body of broken) {
    first.enqueue(EMBEDDINGS_ROUTE, { kind: "json", body });
    const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: ["one", "two"] });
    assert.deepEqual(
      answer.data.map((item) => item.embedding),
      [VECTOR, VECTOR],
      JSON.stringify(body),
    );
  }
  assert.equal(first.pendingSteps(), 0);
  assert.equal(second.requests.filter((request) => request.path === "/v1/embeddings").length, broken.length);
});

test("usage given as total_tokens alone (Voyage's shape) is what the budgets charge, not the estimate", async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const scene = await startScene(t, { clock, beta: false, alphaModel: { kind: "embedding", limits: { tpm: 10_000 } } });
  scene.alpha.setDefault(EMBEDDINGS_ROUTE, {
    kind: "json",
    body: {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: VECTOR }],
      usage: { total_tokens: 700 },
    },
  });
  const response = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: "hello" } });
  assert.equal(response.status, 200, response.text);
  assert.equal(windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute").used, 700);
});

test("a batch or token ids one provider refuses (its batch limit, strings only) is served by another", async (t) => {
  const { first, second, gateway, client } = await twoProviderScene(t, {
    model: "embed",
    firstModel: "{ id: embed-first, kind: embedding }",
    secondModel: "{ id: embed-second, kind: embedding }",
    keepsRequestLog: false,
  });
  answerWith(second, (vector) => vector);
  // Google's OpenAI-compatible endpoint takes 100 inputs at most; a host taking strings only refuses token ids.
  const batchLimit = {
    code: 400,
    message: "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
    status: "INVALID_ARGUMENT",
  };
  const stringsOnly = { message: "input must be a string or an array of strings", type: "invalid_request_error" };
  first.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: batchLimit } });
  const batch = Array.from({ length: 150 }, (_, index) => `text ${index}`);
  const batchAnswer = await client.embeddings.create({ model: "embed", input: batch });
  assert.equal(batchAnswer.data.length, 150);
  first.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: stringsOnly } });
  const tokens = await client.embeddings.create({
    model: "embed",
    input: [
      [1, 2, 3],
      [4, 5],
    ],
  });
  assert.deepEqual(
    tokens.data.map((item) => item.embedding),
    [VECTOR, VECTOR],
  );
  assert.equal(first.pendingSteps(), 0);
  assert.equal(second.requests.filter((request) => request.path === "/v1/embeddings").length, 2);

  // Refused by every candidate: the first refusal, as it came (its status and message), not a gateway error.
  first.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: stringsOnly } });
  second.enqueue(EMBEDDINGS_ROUTE, {
    kind: "json",
    status: 400,
    body: { error: { message: "token ids are not accepted" } },
  });
  const refused = await send(gateway, "POST", "/v1/embeddings", { body: { model: "embed", input: [[1, 2]] } });
  assert.equal(refused.status, 400, refused.text);
  assert.equal(errorOf(refused).message, stringsOnly.message);
});

test("an answer whose data is out of index order reaches the client sorted by index", async (t) => {
  const { mock, gateway } = await embeddingScene(t);
  // Each input's vector is its own: index 0 gets [0, ...], index 1 [1, ...]; the host lists them backwards.
  const vectorOf = (index: number) => VECTOR.map((value) => value + index);
  mock.setDefault(EMBEDDINGS_ROUTE, {
    kind: "json",
    body: {
      object: "list",
      data: [2, 0, 1].map((index) => ({ object: "embedding", index, embedding: vectorOf(index) })),
      model: "embed",
      usage: { prompt_tokens: 3, total_tokens: 3 },
    },
  });
  // The SDK (base64 asked) and LangChain pair vectors with texts by position.
  const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: ["a", "b", "c"] });
  assert.deepEqual(
    answer.data.map((item) => item.index),
    [0, 1, 2],
  );
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    [0, 1, 2].map(vectorOf),
  );
  const floats = await send(gateway, "POST", "/v1/embeddings", {
    body: { model: "embed", input: ["a", "b", "c"], encoding_format: "float" },
  });
  assert.deepEqual(
    (floats.json as { data: { embedding: number[] }[] }).data.map((item) => item.embedding),
    [0, 1, 2].map(vectorOf),
  );
});

test('input "" and [] are a 400 naming `input`, as OpenAI\'s reference states, before any upstream call', async (t) => {
  const { mock, gateway } = await embeddingScene(t);
  answerWith(mock, (vector) => vector);
  for (const input of ["", []]) {
    const response = await send(gateway, "POST", "/v1/embeddings", { body: { model: "embed", input } });
    assert.equal(response.status, 400, `${JSON.stringify(input)}: ${response.text}`);
    assert.equal(errorOf(response).type, "invalid_request_error");
    assert.equal(errorOf(response).param, "input");
  }
  assert.equal(mock.requests.filter((request) => request.path === "/v1/embeddings").length, 0);
});

test("a batch refused for another field the client sent (its param) is the client's 400, returned at once", async (t) => {
  const { first, second, gateway } = await embeddingPair(t, "");
  const refusal = {
    message: "Invalid value for 'dimensions': must be at least 1.",
    type: "invalid_request_error",
    param: "dimensions",
    code: "invalid_value",
  };
  first.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: refusal } });
  const response = await send(gateway, "POST", "/v1/embeddings", {
    body: { model: "embed", input: ["one", "two"], dimensions: -1 },
  });
  assert.equal(response.status, 400, response.text);
  assert.equal(errorOf(response).param, "dimensions");
  assert.equal(second.requests.filter((request) => request.path === "/v1/embeddings").length, 0);
});

test("base64 that as floats would pass max_response_bytes is not decoded into an answer past the cap", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `upstream_limits:
  max_response_bytes: 65536
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      embed: { kind: embedding }
`,
  );
  // 4,000 floats: 21 KB of base64, within the cap; about 80 KB as JSON numbers, past it.
  const vector = Array.from({ length: 4000 }, (_, index) => Math.fround(Math.sin(index) / 7));
  answerWith(mock, () => Buffer.from(new Float32Array(vector).buffer).toString("base64"));
  const response = await send(gateway, "POST", "/v1/embeddings", { body: { model: "embed", input: "hi" } });
  assert.ok(response.text.length < 65536, `${response.status}: ${response.text.length} characters`);
  assert.equal(response.status, 502, response.text.slice(0, 300));
  // Within the cap it is still decoded.
  answerWith(mock, (small) => Buffer.from(new Float32Array(small).buffer).toString("base64"));
  const small = await send(gateway, "POST", "/v1/embeddings", { body: { model: "embed", input: "hi" } });
  assert.deepEqual((small.json as { data: { embedding: unknown }[] }).data[0]?.embedding, VECTOR);
});

test("an embedding string that is not base64 is no vector: failed over, never decoded into made-up floats", async (t) => {
  const { first, gateway } = await embeddingPair(t, "retries: 0");
  // A proxy that stringified the list: Buffer.from skips what is not base64 and reads 16 digits as 12 bytes.
  const stringified = "[1.25, 2.5, 3.75, 4.125, 5.5, 6.0]";
  first.enqueue(EMBEDDINGS_ROUTE, {
    kind: "json",
    body: { object: "list", data: [{ object: "embedding", index: 0, embedding: stringified }], model: "embed-first" },
  });
  const response = await send(gateway, "POST", "/v1/embeddings", { body: { model: "embed", input: "hi" } });
  assert.equal(response.status, 200, response.text);
  assert.deepEqual((response.json as { data: { embedding: unknown }[] }).data[0]?.embedding, VECTOR);
});
