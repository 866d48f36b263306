// The up-front window check (pipeline/embeddings-window-fit.ts) reading a provider's rate-limit report: a window the
// provider reported without its limit (Azure OpenAI sends only `x-ratelimit-remaining-*`) bounds nothing once it has
// reset, as the budget check reads it (budget-usage.ts: the report lapses at its reset).
import assert from "node:assert/strict";
import { test } from "node:test";
import { send } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingsCalls, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

test("a provider's report of 1 request left, no limit, reset in 1 s: a batch of 4 chunks is served, not refused", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { routing: { total_timeout_ms: 20_000 } },
  });
  let calls = 0;
  scene.alpha.setDefault(EMBEDDINGS_ROUTE, (request) => {
    calls += 1;
    const input = (request.body as { input: string[] }).input;
    const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
    // The first answer reports the window; the others say nothing of it.
    const headers: Record<string, string> =
      calls === 1 ? { "x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "1s" } : {};
    const usage = { prompt_tokens: input.length, total_tokens: input.length };
    return { kind: "json", headers, body: { object: "list", data, model: "m-up", usage } };
  });
  const first = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(2) } });
  assert.equal(first.status, 200, first.text);
  // 1 request left until the reset (1 s), then none of the provider's limit is known: the budget check lets every
  // chunk go once the report has lapsed. Before, the check counted the window's limit as 1 (its remaining) at each
  // reset: 2 requests in 20 s for 4 chunks, a 413 "send fewer inputs", nothing sent.
  const served = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(7) } });
  assert.equal(served.status, 200, served.text);
  assert.equal(served.headers["x-gateway-chunks"], "4");
  assert.equal(embeddingsCalls(scene.alpha), 5);
});
