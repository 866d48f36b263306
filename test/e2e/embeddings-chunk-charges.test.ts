// What a chunked embeddings batch that failed at a later chunk charged (pipeline/embeddings-chunks.ts failedChunk):
// the chunks answered before it, on their deployment's budgets and on the client's alike.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send } from "../helpers/e2e.ts";
import { answerEachInput, chargedScene, chargedTokens, GREEDY, texts } from "../helpers/embeddings-scene.ts";
import { MODEL } from "../helpers/limits-scene.ts";

test("a chunk answered without usage before a later chunk failed is charged to the client as to its deployment", async (t) => {
  const scene = await chargedScene(t);
  // No usage in any answer; the chunk holding t2 fails every time.
  answerEachInput(scene.alpha, { text: "t2", times: 100 }, () => ({}));
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: texts(3) },
    headers: GREEDY,
  });
  assert.equal(failed.status, 502, failed.text);
  assert.match(errorOf(failed).message, /inputs 0 to 1 were answered and charged \(4 tokens\)/);
  // The first chunk kept its reservation (4 tokens, its estimate) on alpha; the client was charged 0 for it before.
  assert.deepEqual(await chargedTokens(scene.gateway, 4), { client: 4, deployment: 4 });
});
