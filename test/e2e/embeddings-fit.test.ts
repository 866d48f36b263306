// Each input of an embeddings request is embedded alone: the context fit compares the longest input with the
// model's window, not the sum of all of them (which the token budgets still count).
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";

const EMBEDDINGS = "POST /v1/embeddings";

test("a batch whose inputs each fit is served; one input over the window is refused naming `input`", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      small-embed: { kind: embedding, context: 100 }
`,
  );
  mock.setDefault(EMBEDDINGS, (request) => ({
    kind: "json",
    body: {
      object: "list",
      data: ((request.body as { input: string[] }).input ?? []).map((_, index) => ({
        object: "embedding",
        index,
        embedding: [0.1, 0.2],
      })),
      model: "small-embed",
      usage: { prompt_tokens: 10, total_tokens: 10 },
    },
  }));
  // Ten inputs of ~25 tokens each: ~250 in all, every one well inside the 100-token window.
  const sentence = "the quick brown fox jumps over the lazy dog near the quiet river bank today";
  const inputs = Array.from({ length: 10 }, (_, index) => `${sentence} ${index}`);
  const batch = await openAiClient(gateway).embeddings.create({ model: "small-embed", input: inputs });
  assert.equal(batch.data.length, 10);

  const long = await send(gateway, "POST", "/v1/embeddings", {
    body: { model: "small-embed", input: ["short", sentence.repeat(20)] },
  });
  assert.equal(long.status, 400, long.text);
  assert.equal(errorOf(long).code, "no_capable_model");
  assert.equal(errorOf(long).param, "input");
  assert.equal(mock.requests.filter((recorded) => recorded.path === "/v1/embeddings").length, 1);
});
