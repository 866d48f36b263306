// A live embeddings batch charged to its named client chunk by chunk (pipeline/client-chunk-charges.ts) whose first
// chunk's reservation another replica's spending refused after the plan saw room (nothing sent), queued and planned
// again (handle-request.ts mayQueueAgain): that chunk's charge is given back before it is charged again. Before, the
// unsent chunk's charge stayed in the client's window and the chunk charged again waited a minute for it to leave (the
// batch was served a minute late; each such round another charge, up to the queue's rounds).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Clock } from "../../src/clock.ts";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { providersYaml, serverWithKeys } from "../helpers/batches-scene.ts";
import { openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { answerEachInput, texts } from "../helpers/embeddings-scene.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { redisStateYaml } from "../helpers/replica-scenes.ts";

function jumpingClock(): Clock & { jump(ms: number): void } {
  let offsetMs = 0;
  return { now: () => Date.now() + offsetMs, jump: (ms) => (offsetMs += ms) };
}

test("a chunk refused at its reservation and queued again is charged to its client once", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const mock = await useMock(t);
  const clock = jumpingClock();
  answerEachInput(mock, undefined, (input) => {
    const tokens = estimateTextInputs(input).total;
    // Each chunk of the batch "takes" a minute: the client's window has room again for the next one.
    if (input.some((text) => text.includes("word"))) clock.jump(61_000);
    return { usage: { prompt_tokens: tokens, total_tokens: tokens } };
  });
  const redis = await useRedisServer(t);
  const yaml = `${serverWithKeys("{ key: sk-team, name: team, limits: { tpm: 100 } }", "sk-ops")}routing:\n  queue_timeout_ms: 10000\n${providersYaml(mock, { moreModels: "      e: { kind: embedding, limits: { rps: 1 } }\n" })}${redisStateYaml(redis.url, `requeue-${Date.now()}:`)}`;
  const a = await useGateway(t, yaml, { clock });
  const b = await useGateway(t, yaml, { clock });
  await openAiClient(b, "sk-ops").embeddings.create({ model: "e", input: ["x"] });
  const input = texts(2, 59);
  assert.ok(estimateTextInputs(input).total > 100);
  const answer = await Promise.race([
    openAiClient(a, "sk-team").embeddings.create({ model: "e", input }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("not served within 20 s")), 20_000).unref()),
  ]);
  assert.equal(answer.data.length, 2);
  assert.equal(mock.requests.length, 3, "the other replica's call and the batch's two chunks");
});
