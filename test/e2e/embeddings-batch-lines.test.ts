// A `/v1/batches` line for /v1/embeddings is a batch the pipeline may send in chunks (pipeline/embeddings-chunks.ts):
// a line whose later chunk no candidate answers has had its earlier chunks answered and paid for. It is written at
// once, saying which inputs got no answer, with what the answered ones cost on the batch's usage; tried again, it paid
// for them again at each try.
import assert from "node:assert/strict";
import { test } from "node:test";
import { linesOf, upload, waitForBatch } from "../helpers/batches-scene.ts";
import { openAiClient } from "../helpers/e2e.ts";
import { answerEachInput, chargedScene, chargedTokens, embeddingsCalls, texts } from "../helpers/embeddings-scene.ts";
import { MODEL } from "../helpers/limits-scene.ts";

test("a batch line whose middle chunk fails is written at once: which inputs got no answer, what the rest cost", async (t) => {
  const scene = await chargedScene(t);
  // The chunk [t4, t5] fails every time (a 500: failed over to nothing, then the line's 502); 3 tokens an input.
  answerEachInput(scene.alpha, { text: "t4", times: 1_000 });
  const client = openAiClient(scene.gateway, "sk-client");
  const line = { custom_id: "e1", method: "POST", url: "/v1/embeddings", body: { model: MODEL, input: texts(7) } };
  const file = await upload(client, `${JSON.stringify(line)}\n`);
  const created = await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/embeddings",
    completion_window: "24h",
  });
  const done = await waitForBatch(client, created.id, (batch) => batch.status === "completed", 15_000);
  assert.deepEqual(done.request_counts, { total: 1, completed: 0, failed: 1 });
  const [failed] = await linesOf(client, done.error_file_id);
  const response = failed?.response as { status_code: number; body: { error: { message: string } } };
  assert.equal(response.status_code, 502);
  assert.match(
    response.body.error.message,
    /^Inputs 4 to 6 of 7 \(sent in chunks of 2, .*\) got no answer: the chunk of inputs 4 to 5 failed and the ones after it were not sent; inputs 0 to 3 were answered and charged \(12 tokens\) but are not returned: /,
  );
  // One try: the two chunks answered and the failing one, not the whole line again after each 5xx.
  assert.equal(embeddingsCalls(scene.alpha), 3);
  // The client and the deployment were charged the answered chunks alone, and the batch's usage says so.
  assert.equal(done.usage?.input_tokens, 12);
  assert.deepEqual(await chargedTokens(scene.gateway, 12), { client: 12, deployment: 12 });
});
