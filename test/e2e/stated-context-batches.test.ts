// A window an embeddings refusal stated is each input's (the context fit reads the longest input), while the usage a
// batch's answer reports is every input's together: a batch of inputs each within the window, reported larger than it
// in all, says nothing of the window and must not clear it (limits/learned-context.ts clearOutgrownWindow). Real
// gateway, a scripted mock upstream over loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock, words } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingsCalls } from "../helpers/embeddings-scene.ts";

test("an embeddings batch whose inputs each fit the stated window, larger in all, does not clear it", async (t) => {
  const mock = await useMock(t);
  mock.setDefault(EMBEDDINGS_ROUTE, (request) => {
    const input = (request.body as { input: string | string[] }).input;
    const inputs = Array.isArray(input) ? input : [input];
    const sizes = inputs.map((text) => text.split(/\s+/).length);
    const longest = Math.max(...sizes);
    if (longest > 500) {
      const message = `This model's maximum context length is 500 tokens, however you requested ${longest} tokens (${longest} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`;
      return {
        kind: "json",
        status: 400,
        body: { error: { message, type: "invalid_request_error", code: "context_length_exceeded" } },
      };
    }
    const total = sizes.reduce((sum, size) => sum + size, 0);
    const data = inputs.map((_, index) => ({ object: "embedding", index, embedding: [0.5, 0.25] }));
    return {
      kind: "json",
      body: { object: "list", data, model: "e", usage: { prompt_tokens: total, total_tokens: total } },
    };
  });
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      e: { kind: embedding, context: 5000 }
`,
  );
  const embed = (input: string | string[]) => send(gateway, "POST", "/v1/embeddings", { body: { model: "e", input } });
  const long = words("long", 600);
  assert.equal((await embed(long)).status, 400);
  assert.equal(embeddingsCalls(mock), 1, "the refusal");
  assert.equal((await embed(long)).status, 400);
  assert.equal(embeddingsCalls(mock), 1, "the window learned: not sent again");
  // Three inputs of ~300 tokens: each within 500, ~900 reported in all.
  const batch = await embed([words("a", 300), words("b", 300), words("c", 300)]);
  assert.equal(batch.status, 200, batch.text);
  assert.equal(embeddingsCalls(mock), 2);
  assert.equal((await embed(long)).status, 400);
  assert.equal(embeddingsCalls(mock), 2, "the window still held: the long input not sent to be refused again");
});
