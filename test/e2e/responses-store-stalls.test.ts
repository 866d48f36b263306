// Kept Responses answers and conversations whose writes a stalled Redis holds (the store's commands held by a proxy in
// front of a real redis-server, past `responses.store.write_timeout_ms`), on paths other than a live request's own
// answer: a Batch API line of `/v1/responses` (marked as a live request's: record, metric, GET), a conversation's
// write (a Conversations call, an answer's items) and a background response's first write (each a clear 503, or the
// conversation-not-updated header, within the bound instead of the store's own timeouts; the 503 not to be retried
// by the SDK: the write may land), and many answers not kept whose read-backs share one read at a time.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { linesOf, upload, waitForCompleted } from "../helpers/batches-scene.ts";
import {
  CHAT_ROUTE,
  oneProviderYaml,
  openAiClient,
  send,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { assertToldNotStored } from "../helpers/not-stored.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const REDIS = { skip: isRedisInstalled() ? false : REDIS_MISSING };

/** A write (a Lua script: every kept-row write is one) naming `tag`'s keys. */
const writesOf =
  (tag: string) =>
  (text: string): boolean =>
    text.includes(tag) && /\r\neval(?:sha)?\r\n/.test(text);

/**
 * A gateway on Redis through a proxy; `stall()` holds every command `isHeld` picks (default: naming the kept
 * responses' keys) from then on (a Redis that stopped answering them; the other books still answer) until
 * `release()`. The bound (responses.store.write_timeout_ms) is 300 ms.
 */
async function stalledScene(
  t: TestContext,
  prefix: string,
  isHeld: (text: string) => boolean = (text) => text.includes("{responses}"),
) {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Not kept.", VENDOR_MODEL_ID) });
  const redis = await useRedisServer(t);
  let isStalled = false;
  let release = (): void => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  t.after(() => release());
  const proxy = await useRedisProxy(t, redis.port, (text) => (isStalled && isHeld(text) ? held : undefined));
  const gateway = await useGateway(
    t,
    `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${proxy.url}\n  redis_key_prefix: "${prefix}:"\nresponses:\n  store:\n    write_timeout_ms: 300\n`,
  );
  const records: RequestRecord[] = [];
  t.after(gateway.runtime.onRecord((record) => records.push(record)));
  return {
    mock,
    gateway,
    records,
    client: openAiClient(gateway),
    stall: () => {
      isStalled = true;
    },
    release: () => {
      isStalled = false;
      release();
    },
  };
}

describe("kept answers a stalled Redis does not keep, beyond a live request's answer", () => {
  test(
    "a /v1/responses batch line: its record says not kept, the metric counts it, GET says it could not be stored",
    REDIS,
    async (t) => {
      const { gateway, records, client, stall } = await stalledScene(t, "kept-batch");
      const file = await upload(
        client,
        JSON.stringify({
          custom_id: "r1",
          method: "POST",
          url: "/v1/responses",
          body: { model: "m", input: "batched" },
        }),
      );
      stall();
      const batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/responses",
        completion_window: "24h",
      });
      const done = await waitForCompleted(client, batch.id, 1);
      const [line] = await linesOf(client, done.output_file_id);
      const body = (line?.response as { body: { id: string; output_text?: string } } | undefined)?.body;
      assert.ok(body !== undefined, JSON.stringify(line));
      const record = records.find((candidate) => candidate.batchId === batch.id);
      assert.equal(record?.isAnswerNotKept, true, JSON.stringify(record));
      const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
      assert.equal(sumOf(metrics, "llm_gateway_answers_not_kept_total", { endpoint: "responses" }), 1);
      await assertToldNotStored(client.responses.retrieve(body.id), 404, "response_id");
    },
  );

  test(
    "many answers not kept while Redis stalls: their read-backs do not each send a read every second",
    REDIS,
    async (t) => {
      let reads = 0;
      const { client, stall } = await stalledScene(t, "kept-rechecks", (text) => {
        // A read's ZSCORE command (RESP: its name as a bulk string), not the word inside a script a write sends.
        reads += text.split("$6\r\nzscore\r\n").length - 1;
        return text.includes("{responses}");
      });
      await client.responses.create({ model: "m", input: "warm up" });
      stall();
      for (let sent = 0; sent < 100; sent += 20) {
        await Promise.all(Array.from({ length: 20 }, () => client.responses.create({ model: "m", input: "hi" })));
      }
      const readsBefore = reads;
      await sleep(3_000);
      // One read at a time while the store does not answer (each answer's own, every second: ~150 in 3 s).
      assert.ok(reads - readsBefore < 10, `${reads - readsBefore} reads in 3 s for 100 answers not kept`);
    },
  );

  test(
    "a conversation's write the store does not answer: the Conversations call is a 503 within the bound",
    REDIS,
    async (t) => {
      const { gateway, client, stall } = await stalledScene(t, "conv-stall", writesOf("{conversations}"));
      const conversation = await client.conversations.create({ items: [{ role: "user", content: "Hello." }] });
      stall();
      const startedAtMs = Date.now();
      const added = await send(gateway, "POST", `/v1/conversations/${conversation.id}/items`, {
        body: { items: [{ type: "message", role: "user", content: "More." }] },
      });
      const tookMs = Date.now() - startedAtMs;
      assert.equal(added.status, 503, added.text);
      assert.match(added.text, /did not answer within 300 ms \(responses\.store\.write_timeout_ms\)/);
      // Its message says the bound ended it; the time only has to show it did not wait for the store (a loaded machine).
      assert.ok(tookMs >= 300 && tookMs < 3_000, `the Conversations call waited ${tookMs} ms for the stalled store`);
    },
  );

  test(
    "a conversation's write past the bound that lands later: the SDK is told not to retry it (a retry appended it twice)",
    REDIS,
    async (t) => {
      // The held write lands as the next command naming the conversation comes (a retry's read of it).
      let isWriteHeld = false;
      let landWrite = (): void => {};
      const { gateway, client, stall, release } = await stalledScene(t, "conv-stall-retry", (text) => {
        if (isWriteHeld && text.includes("{conversations}")) landWrite();
        isWriteHeld ||= writesOf("{conversations}")(text);
        return isWriteHeld && writesOf("{conversations}")(text);
      });
      landWrite = release;
      const conversation = await client.conversations.create({ items: [{ role: "user", content: "Hello." }] });
      // The openai SDK with its own retries (2 by default, 0.375-0.5 s after a 503).
      const retrying = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
      stall();
      const added = await retrying.conversations.items
        .create(conversation.id, { items: [{ type: "message", role: "user", content: "More." }] })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      assert.ok(added instanceof OpenAI.APIError && added.status === 503, `the append was not a 503: ${String(added)}`);
      release(); // not retried: the write lands now
      const items = await client.conversations.items.list(conversation.id, { order: "asc" });
      const texts = items.data.map((item) => JSON.stringify(item.type === "message" ? item.content : item));
      assert.equal(texts.filter((text) => text.includes("More.")).length, 1, texts.join("\n"));
    },
  );

  test(
    "an answer whose conversation's write the store does not answer: sent within the bound, saying its conversation was not updated",
    REDIS,
    async (t) => {
      const { client, stall } = await stalledScene(t, "conv-answer-stall", writesOf("{conversations}"));
      const conversation = await client.conversations.create({ items: [{ role: "user", content: "Hello." }] });
      // Only the append's write is held: every read before it (the conversation, the store's own) has been answered.
      stall();
      const startedAtMs = Date.now();
      const answered = await client.responses
        .create({ model: "m", conversation: conversation.id, input: "hi" })
        .withResponse();
      const tookMs = Date.now() - startedAtMs;
      assert.equal(answered.data.output_text, "Not kept.");
      assert.equal(answered.response.headers.get("x-gateway-conversation-not-updated"), "store_unavailable");
      // Unbounded, the answer waited 3.3 s for its conversation's write; under 2 s leaves a loaded machine room.
      assert.ok(tookMs >= 300 && tookMs < 2_000, `the answer waited ${tookMs} ms for its conversation's write`);
    },
  );

  test(
    "a background response whose first write the store does not answer: a 503 within the bound, nothing started",
    REDIS,
    async (t) => {
      const { mock, client, stall } = await stalledScene(t, "bg-stall", writesOf("{responses}"));
      // The door's modules are loaded at its first request: not part of the time measured below.
      await client.responses.create({ model: "m", input: "warm up" });
      const asked = mock.requests.length;
      stall();
      const startedAtMs = Date.now();
      await assert.rejects(
        client.responses.create({ model: "m", input: "later", background: true }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.APIError, String(error));
          assert.equal(error.status, 503, error.message);
          assert.match(error.message, /did not answer within 300 ms \(responses\.store\.write_timeout_ms\)/);
          return true;
        },
      );
      const tookMs = Date.now() - startedAtMs;
      assert.ok(tookMs >= 300 && tookMs < 3_000, `the create waited ${tookMs} ms for the stalled store`);
      assert.equal(mock.requests.length, asked, "nothing went upstream");
    },
  );
});

describe("a background response's cancel while the store does not answer", () => {
  test(
    "the cancel's read is bounded as its write is: a clear 503 within the bound, not the store's 1 s command timeout",
    REDIS,
    async (t) => {
      const { mock, gateway, client, stall, release } = await stalledScene(t, "bg-cancel-stall");
      // The run stays in progress on this gateway: its upstream call never answers.
      mock.setDefault(CHAT_ROUTE, { kind: "hang" });
      const created = await client.responses.create({ model: "m", input: "long", background: true });
      assert.notEqual((await client.responses.retrieve(created.id)).status, "cancelled");
      stall();
      const startedAtMs = Date.now();
      const cancel = await send(gateway, "POST", `/v1/responses/${created.id}/cancel`);
      const tookMs = Date.now() - startedAtMs;
      assert.equal(cancel.status, 503, cancel.text);
      assert.match(cancel.text, /did not answer within 300 ms \(responses\.store\.write_timeout_ms\)/);
      assert.doesNotMatch(cancel.text, /may still land/, "a read that timed out wrote nothing");
      assert.ok(tookMs >= 300 && tookMs < 900, `the cancel waited ${tookMs} ms for the stalled store`);
      // Nothing was cancelled: told to try again, the client does, once the store answers.
      release();
      assert.equal((await client.responses.cancel(created.id)).status, "cancelled");
    },
  );
});
