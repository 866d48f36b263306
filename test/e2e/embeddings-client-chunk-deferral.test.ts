// A batch line of embeddings whose named client's token budget is below the batch's tokens (charged chunk by chunk,
// pipeline/client-chunk-charges.ts), refused by the gateway's own limits after its first chunk was charged to the
// client and before that chunk was sent (batch-line-pipeline.ts deferredLine: the line goes back to wait, no record):
// the client's charge is given back whole, the chunk's tokens with its request. Before, only the request's charge was
// given back: the chunk's tokens stayed in the client's windows for a chunk never sent, at every such try of the line.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { RateLimitedError } from "../../src/errors/gateway-error.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { EMBEDDINGS_ENDPOINT } from "../../src/pipeline/endpoints.ts";
import { handleRequest } from "../../src/pipeline/handle-request.ts";
import { providersYaml, serverWithKeys } from "../helpers/batches-scene.ts";
import { openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { answerEachInput, embeddingsCalls, texts } from "../helpers/embeddings-scene.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);

test("a deferred embeddings batch line gives back its client's chunk charges, not only its request's", async (t) => {
  const mock = await useMock(t);
  answerEachInput(mock, undefined, (input) => {
    const tokens = estimateTextInputs(input).total;
    return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
  });
  const clock = new ManualClock(START_MS);
  const gateway = await useGateway(
    t,
    `${serverWithKeys("{ key: sk-team, name: team, limits: { tpm: 100 } }", "sk-ops")}${providersYaml(mock, {
      moreModels: "      e: { kind: embedding, limits: { tpm: 100 } }\n",
    })}`,
    { clock },
  );
  // Another key spends half of the model's minute: the batch's first chunk cannot be sent this minute.
  const spent = texts(1, 49);
  await openAiClient(gateway, "sk-ops").embeddings.create({ model: "e", input: spent });
  const records: RequestRecord[] = [];
  gateway.runtime.recorder.onRecord((record) => records.push(record));
  const scope = gateway.runtime.snapshot.clientScopes.get("team");
  assert.ok(scope !== undefined);
  const clientTokensLeft = () =>
    gateway.runtime.budgets.usage(scope, clock.now()).find((usage) => usage.unit === "tokens")?.remaining;
  assert.equal(clientTokensLeft(), 100);
  // ~60 tokens an input, 120 for the batch: above the client's whole tpm, so charged chunk by chunk.
  const input = texts(2, 59);
  assert.ok(estimateTextInputs(input).total > 100);
  await assert.rejects(
    handleRequest(
      gateway.runtime,
      EMBEDDINGS_ENDPOINT,
      { model: "e", input },
      {
        requestId: "batch_req_embeddings",
        clientProtocol: "openai-chat",
        signal: new AbortController().signal,
        client: "team",
        log: { warn: () => {} },
        batchId: "batch_test",
      },
    ),
    (error: unknown) => {
      assert.ok(error instanceof RateLimitedError, String(error));
      return true;
    },
  );
  assert.deepEqual(records, [], "the line went back to wait: no record");
  assert.equal(embeddingsCalls(mock), 1, "nothing of the batch was sent");
  assert.equal(clientTokensLeft(), 100, "the client's chunk charge of a chunk never sent was given back");
});
