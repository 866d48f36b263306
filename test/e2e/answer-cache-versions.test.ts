// The answer cache across gateway versions (pipeline/answer-fingerprint.ts ANSWER_FORMAT_VERSION): a row kept in a
// shared Redis by a gateway whose answers had another shape is never given by this one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keepAnswerFor } from "../helpers/answer-cache-scene.ts";
import { openAiClient, send } from "../helpers/e2e.ts";
import { answerWith, embeddingScene, embeddingsCalls, VECTOR } from "../helpers/embeddings-scene.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

/** A gateway before this one: any format version but the current one (the versions count up from 1). */
const OLDER_FORMAT_VERSION = 1;

/**
 * Keeps `bodyText` as the answer to an embeddings request of `input` (base64 asked, as OpenAI's SDK asks), under the
 * key a gateway of `formatVersion` on this config computes for it: what such a gateway sharing the Redis would write.
 */
async function keepAnswer(gateway: TestGateway, input: string, formatVersion: number | undefined, bodyText: string) {
  const body = { model: "embed", input, encoding_format: "base64" };
  const answer = {
    api: "chat",
    form: "json",
    bodyText,
    status: 200,
    provider: "alpha",
    model: "embed",
    cost: "free",
  } as const;
  await keepAnswerFor(gateway, "embeddings", body, answer, formatVersion);
}

describe("answer cache rows of another gateway version", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, () => {
  test("an embeddings answer kept by an older gateway (floats for a base64 client) is not given", async (t) => {
    const redis = await useRedisServer(t);
    const shared = `cache:\n  enabled: true\nstate:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-versions:"\n`;
    const { mock, gateway } = await embeddingScene(t, shared);
    answerWith(mock, (vector) => vector);
    // Kept as an older gateway passed it on: the host's floats, which OpenAI's SDK decodes as base64 into garbage.
    const stale = JSON.stringify({
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [9, 9, 9, 9] }],
      model: "embed",
      usage: { prompt_tokens: 1, total_tokens: 1 },
    });
    await keepAnswer(gateway, "hello", OLDER_FORMAT_VERSION, stale);
    const answer = await openAiClient(gateway).embeddings.create({ model: "embed", input: "hello" });
    assert.deepEqual(answer.data[0]?.embedding, VECTOR);
    assert.equal(embeddingsCalls(mock), 1, "the older version's row is not this gateway's answer");

    // The same row under this version's key is given (the key above is the gateway's own but for the version).
    await keepAnswer(gateway, "again", undefined, stale);
    const kept = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "embed", input: "again", encoding_format: "base64" },
    });
    assert.equal(kept.headers["x-gateway-cache"], "hit");
    assert.deepEqual((kept.json as { data: unknown }).data, (JSON.parse(stale) as { data: unknown }).data);
    assert.equal(embeddingsCalls(mock), 1);
  });
});
