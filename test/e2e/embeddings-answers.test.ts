// Which embeddings answers are answers: a vector for every input, each tied to exactly one input by its `index`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openAiClient } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingPair, embeddingsCalls, VECTOR } from "../helpers/embeddings-scene.ts";

test("an answer whose indexes repeat or fall outside the inputs is no answer: the next provider serves it", async (t) => {
  const usage = { prompt_tokens: 2, total_tokens: 2 };
  const entry = (index: unknown) => ({ object: "embedding", index, embedding: VECTOR.map((value) => -value) });
  // [0, 0]: which text has no vector, and which one got another's? [0, 2] and [-1, 0]: an index no input has.
  // Each on a gateway of its own: bad answers in a row open the first provider's circuit.
  for (const indexes of [
    [0, 0],
    [0, 2],
    [-1, 0],
    [0, 1.5],
    [0, "1"],
    [0, undefined],
  ]) {
    await t.test(
      indexes.map((index) => (index === undefined ? "none" : JSON.stringify(index))).join(", "),
      async (t) => {
        const { first, second, gateway } = await embeddingPair(t, "retries: 0");
        first.enqueue(EMBEDDINGS_ROUTE, {
          kind: "json",
          body: { object: "list", data: indexes.map(entry), model: "embed-first", usage },
        });
        const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: ["one", "two"] });
        assert.deepEqual(
          answer.data.map((item) => [item.index, item.embedding]),
          [
            [0, VECTOR],
            [1, VECTOR],
          ],
        );
        assert.equal(first.pendingSteps(), 0);
        assert.equal(embeddingsCalls(second), 1);
      },
    );
  }
});

test("an answer whose entries all omit `index` is paired by position, as it came", async (t) => {
  const { first, second, gateway } = await embeddingPair(t, "retries: 0");
  const vectors = [VECTOR, VECTOR.map((value) => -value)];
  first.enqueue(EMBEDDINGS_ROUTE, {
    kind: "json",
    body: { object: "list", data: vectors.map((embedding) => ({ object: "embedding", embedding })) },
  });
  const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: ["one", "two"] });
  assert.deepEqual(
    answer.data.map((item) => item.embedding),
    vectors,
  );
  assert.equal(embeddingsCalls(second), 0);
});
