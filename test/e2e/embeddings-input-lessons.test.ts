// What an answered embeddings request says of an input limit a refusal taught (upstream/accepted-features.ts): a
// batch of at least as many inputs answered ends the lesson; one list of token ids is one input, however long.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openAiClient, send } from "../helpers/e2e.ts";
import { answerEachInput, EMBEDDINGS_ROUTE, sentInputs, texts } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

/** Google's wording of its batch limit, here 2 inputs. */
const BATCH_LIMIT = {
  code: 400,
  message: "* BatchEmbedContentsRequest.requests: at most 2 requests can be in one batch",
  status: "INVALID_ARGUMENT",
};

test("one input of token ids answered does not end a learned input limit, however many ids it holds", async (t) => {
  const scene = await startScene(t, { beta: false, alphaModel: { kind: "embedding" } });
  answerEachInput(scene.alpha);
  const client = openAiClient(scene.gateway);
  scene.alpha.enqueue(EMBEDDINGS_ROUTE, { kind: "json", status: 400, body: { error: BATCH_LIMIT } });
  await client.embeddings.create({ model: MODEL, input: texts(5) });
  const sizes = () => sentInputs(scene.alpha).map((input) => (Array.isArray(input) ? input.length : 1));
  assert.deepEqual(sizes(), [5, 2, 2, 1]);
  // One input of 5 token ids: an answer of one vector.
  scene.alpha.enqueue(EMBEDDINGS_ROUTE, {
    kind: "json",
    body: {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.5, 0.25] }],
      model: "m-up",
      usage: { prompt_tokens: 5, total_tokens: 5 },
    },
  });
  const tokenIds = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: [11, 12, 13, 14, 15] },
  });
  assert.equal(tokenIds.status, 200, tokenIds.text);
  // The lesson holds: the next batch of 5 is split at once. Before, the 5 ids were read as 5 inputs taken: the lesson
  // ended, and the batch was sent whole to be refused again ([5, 2, 2, 1] once more).
  const row = (await scene.stats("alpha")) as unknown as { refused_features: { feature: string }[] };
  assert.deepEqual(
    row.refused_features.map((lesson) => lesson.feature),
    ["input"],
  );
  await client.embeddings.create({ model: MODEL, input: texts(5) });
  assert.deepEqual(sizes().slice(5), [2, 2, 1]);
});
