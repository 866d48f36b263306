// A named client's budgets (`server.api_keys` `limits`) after an embeddings batch sent in chunks
// (pipeline/embeddings-chunks.ts): charged what the chunks cost upstream, as a request sent whole is.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openAiClient } from "../helpers/e2e.ts";
import { answerEachInput, clientMinuteUsed, texts } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

const CLIENT = { key: "sk-client", name: "greedy", limits: { rpm: 100, tpm: 1_000_000 } };
const SERVER = { port: 0, host: "127.0.0.1", api_keys: [CLIENT, "sk-ops"] };

test("a chunked batch leaves its client's tpm holding the chunks' upstream usage and its rpm one request", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2 },
    config: { server: SERVER },
  });
  // 7 tokens an input as the provider counts them, far above the gateway's estimate of `t<N> word word`.
  answerEachInput(scene.alpha, undefined, (input) => ({
    usage: { prompt_tokens: 7 * input.length, total_tokens: 7 * input.length },
  }));
  const answer = await openAiClient(scene.gateway, "sk-client").embeddings.create({ model: MODEL, input: texts(5, 2) });
  assert.equal(answer.usage.prompt_tokens, 35);
  const used = await clientMinuteUsed(scene.gateway, "greedy", (tokens) => tokens === 35);
  assert.deepEqual(used, { requests: 1, tokens: 35 });
});
