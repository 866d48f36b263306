// A later chunk of an embeddings batch that every candidate answered "overloaded" (a 529, a 503 with retry-after) is
// waited for as a 429's is (pipeline/embeddings-chunks.ts forwardChunk): the earlier chunks are answered and paid for.
// Since every-candidate-overloaded became its own 503 `upstream_overloaded` (final-error.ts), no longer a 429, the
// chunk was not waited for and the whole batch failed, its answered chunks paid and lost.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send } from "../helpers/e2e.ts";
import { sentInputs, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";
import type { MockStep } from "../helpers/mock-upstream.ts";

const SERVER = { port: 0, host: "127.0.0.1", api_keys: ["sk-client"] };

for (const [name, overloaded] of [
  [
    "a 529",
    {
      kind: "json",
      status: 529,
      headers: { "retry-after": "1" },
      body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
    },
  ],
  ["a 503 with retry-after", { kind: "json", status: 503, headers: { "retry-after": "1" }, body: { error: "busy" } }],
] as const) {
  test(`a later chunk answered ${name} by every candidate is waited for, not the whole batch failed`, async (t) => {
    const scene = await startScene(t, {
      beta: false,
      alphaModel: { kind: "embedding", max_inputs: 2 },
      config: { server: SERVER, routing: { total_timeout_ms: 20_000 } },
    });
    let failing = 1;
    scene.alpha.setDefault("POST /v1/embeddings", (request): MockStep => {
      const input = (request.body as { input: string[] }).input;
      if (input.includes("t2") && failing > 0) {
        failing -= 1;
        return overloaded as MockStep;
      }
      const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
      return {
        kind: "json",
        body: { object: "list", data, model: "m-up", usage: { prompt_tokens: 3, total_tokens: 3 } },
      };
    });
    const answer = await send(scene.gateway, "POST", "/v1/embeddings", {
      body: { model: MODEL, input: texts(4) },
      headers: { authorization: "Bearer sk-client" },
    });
    // Before: 503 upstream_overloaded, "inputs 0 to 1 were answered and charged but are not returned".
    assert.equal(answer.status, 200, answer.text);
    const data = (answer.json as { data: { index: number; embedding: number[] }[] }).data;
    assert.deepEqual(
      data.map((item) => [item.index, item.embedding]),
      texts(4).map((text, index) => [index, vectorOf(text)]),
    );
    assert.equal(sentInputs(scene.alpha).length, 3);
  });
}
