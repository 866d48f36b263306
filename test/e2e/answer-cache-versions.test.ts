// The answer cache across gateway versions (pipeline/answer-fingerprint.ts ANSWER_FORMAT_VERSION): a row kept in a
// shared Redis by a gateway whose answers had another shape is never given by this one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keepAnswerFor, keepRowFor } from "../helpers/answer-cache-scene.ts";
import { CHAT_ROUTE, logCollector, oneProviderYaml, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { answerWith, embeddingScene, embeddingsCalls, VECTOR } from "../helpers/embeddings-scene.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
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

  test("a damaged row (a status no kept answer has) is a miss, not answered as that status; logged once", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fresh.", "vendor/m-instruct") });
    const log = logCollector();
    const shared = `cache:\n  enabled: true\nstate:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-damaged:"\n`;
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}${shared}`, {
      logStream: log.stream,
      logLevel: "warn",
    });
    const refusedLines = () => log.lines.filter((line) => /not an answer this version gives/.test(line)).length;
    for (const [index, status] of [503, 1000].entries()) {
      const body = { model: "m", messages: [{ role: "user", content: `damaged ${index}` }] };
      const bodyText = JSON.stringify({ error: { message: "kept by nobody", type: "server_error" } });
      const row = { api: "chat", form: "json", bodyText, status, provider: "alpha", model: "m", cost: "free" } as const;
      await keepRowFor(gateway, "chat", body, row);
      const answer = await send(gateway, "POST", "/v1/chat/completions", { body });
      assert.equal(answer.status, 200, `a row of status ${status} was answered: ${answer.text}`);
      assert.equal(answer.headers["x-gateway-cache"], "miss");
      assert.match(answer.text, /Fresh\./);
    }
    assert.equal(mock.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 2);
    assert.equal(refusedLines(), 1, "the first refused row is logged, the next ones not");
  });
});
