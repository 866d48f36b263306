// A /v1/batches embeddings line sent in chunks, whose later chunk finds live requests waiting in the route queue
// (plan-request.ts batchLinePlan refuses a line then): it waits for them, its earlier chunks paid for.
import assert from "node:assert/strict";
import { test } from "node:test";
import { linesOf, upload, waitForBatch } from "../helpers/batches-scene.ts";
import { openAiClient, postChat } from "../helpers/e2e.ts";
import { EMBEDDINGS_ROUTE, embeddingsCalls, texts, vectorOf } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

test("a batch line's later chunk waits while live requests queue, instead of failing the paid line", async (t) => {
  const scene = await startScene(t, {
    alphaModel: { kind: "embedding", max_inputs: 2 },
    betaModel: { limits: { rpm: 1 } },
    config: { routing: { queue_timeout_ms: 2_500 } },
  });
  // The first chunk is answered after 800 ms: live chat requests arrive meanwhile, the second one queued (rpm 1).
  scene.alpha.setDefault(EMBEDDINGS_ROUTE, (request) => {
    const input = (request.body as { input: string[] }).input;
    const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) }));
    const body = { object: "list", data, model: "m-up", usage: { prompt_tokens: 3, total_tokens: 3 } };
    return { kind: "json", body, ...(input.includes("t0") ? { delayMs: 800 } : {}) };
  });
  const client = openAiClient(scene.gateway);
  const line = { custom_id: "e1", method: "POST", url: "/v1/embeddings", body: { model: MODEL, input: texts(3) } };
  const file = await upload(client, `${JSON.stringify(line)}\n`);
  const created = await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/embeddings",
    completion_window: "24h",
  });
  await scene.alpha.waitForRequests(1, 5_000);
  const first = await postChat(scene.gateway, { model: MODEL });
  assert.equal(first.status, 200, first.text);
  // Queued until the queue's time ends (its 429 is this test's business only as the end of the wait).
  const queued = postChat(scene.gateway, { model: MODEL });
  const done = await waitForBatch(client, created.id, (batch) => batch.status === "completed", 15_000);
  await queued;
  // Before, the second chunk gave up after 20 waits of 50 ms (1 s) and the line was written as that 429, its first
  // chunk paid for and lost.
  assert.deepEqual(done.request_counts, { total: 1, completed: 1, failed: 0 }, JSON.stringify(done));
  const [answered] = await linesOf(client, done.output_file_id);
  const response = answered?.response as { status_code: number; body: { data: { embedding: number[] }[] } };
  assert.equal(response.status_code, 200);
  assert.deepEqual(
    response.body.data.map((item) => item.embedding),
    texts(3).map(vectorOf),
  );
  assert.equal(embeddingsCalls(scene.alpha), 2);
});
