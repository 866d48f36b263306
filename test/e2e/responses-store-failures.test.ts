// A Responses answer (`store: true`, the default) the store of kept responses fails to keep, for real: a Redis that
// was stopped (SIGKILL) or paused (SIGSTOP: it keeps its connections open and answers nothing). The answer is still
// sent whole; its record says it was not kept (`isAnswerNotKept`), counted in `llm_gateway_answers_not_kept_total`;
// a later GET or `previous_response_id` naming it is told it was not stored (a 404, a 400), not a 503 or a hang. Until
// 2026-12-07 `onPutError` only logged the outage's first failure: the record said nothing, and a GET naming the answer
// was a 503 while the store was down, then the 404 of a response that was "never kept (`store: false`), has expired
// or was deleted".
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { handleShutdownSignals } from "../../src/cli/start-gateway.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import {
  CHAT_ROUTE,
  logCollector,
  oneProviderYaml,
  openAiClient,
  send,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";
import { assertToldNotStored } from "../helpers/not-stored.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const REDIS = { skip: isRedisInstalled() ? false : REDIS_MISSING };

async function waitUntilAsync(isDone: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isDone())) {
    assert.ok(Date.now() < deadline, `not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** `store`: more `responses.store` keys, as YAML lines under it; `server`: the `server` section's YAML. */
async function redisScene(t: TestContext, prefix: string, store = "", server = "") {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Not kept.", VENDOR_MODEL_ID) });
  const redis = await useRedisServer(t);
  const logs = logCollector();
  const gateway = await useGateway(
    t,
    `${server}${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "${prefix}:"\n${store === "" ? "" : `responses:\n  store:\n${store}`}`,
    { logLevel: "info", logStream: logs.stream },
  );
  // Read as published: the request log lives in the same Redis.
  const records: RequestRecord[] = [];
  t.after(gateway.runtime.onRecord((record) => records.push(record)));
  return { mock, redis, gateway, logs, records, client: openAiClient(gateway) };
}

describe("a Responses answer the store fails to keep", () => {
  test(
    "Redis stopped: streamed and JSON answers are sent, marked not kept (record, metric), and GET / previous_response_id say they were not stored",
    REDIS,
    async (t) => {
      const { mock, redis, gateway, records, logs, client } = await redisScene(t, "kept-stopped");
      await redis.kill();
      const json = await client.responses.create({ model: "m", input: "hi" });
      assert.equal(json.output_text, "Not kept.");
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Not", " kept."], VENDOR_MODEL_ID) });
      const streamed = await client.responses.stream({ model: "m", input: "hi" }).finalResponse();
      assert.equal(streamed.status, "completed");
      assert.equal(streamed.output_text, "Not kept.");

      assert.equal(records.length, 2, JSON.stringify(records));
      for (const record of records) {
        assert.equal(record.status, 200);
        assert.equal(record.isAnswerNotKept, true, JSON.stringify(record));
      }
      const routed = logs.lines.filter(
        (line) => line.includes('"msg":"routed"') && line.includes('"endpoint":"responses"'),
      );
      assert.equal(routed.length, 2, logs.lines.join(""));
      for (const line of routed) assert.match(line, /"isAnswerNotKept":true/);
      const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
      assert.equal(sumOf(metrics, "llm_gateway_answers_not_kept_total", { endpoint: "responses" }), 2);

      // Redis still down: the gateway knows these two were not kept, so it says so instead of a 503.
      await assertToldNotStored(client.responses.retrieve(json.id), 404, "response_id");
      await assertToldNotStored(
        client.responses.create({ model: "m", previous_response_id: streamed.id, input: "and then?" }),
        400,
        "previous_response_id",
      );
      // Nothing to delete either: told so, not a 503 for the store being down.
      await assertToldNotStored(client.responses.delete(json.id), 404, "response_id");
      // Redis back (empty): still told why, not "never kept (`store: false`)".
      await redis.restart();
      await assertToldNotStored(client.responses.retrieve(streamed.id), 404, "response_id");
    },
  );

  test(
    "item_reference naming an item of an answer not kept: a 400 saying it could not be stored, while Redis is down and after",
    REDIS,
    async (t) => {
      const { redis, client } = await redisScene(t, "kept-items");
      await redis.kill();
      const answer = await client.responses.create({ model: "m", input: "hi" });
      const itemId = answer.output[0]?.id ?? "";
      assert.match(itemId, /^msg_/);
      const refer = () =>
        client.responses.create({
          model: "m",
          input: [
            { type: "item_reference", id: itemId },
            { role: "user", content: "and then?" },
          ],
        });
      // Down: not the store's 503 (this process knows the answer was not kept); back (empty): not a plain not-found.
      await assertToldNotStored(refer(), 400, "input[0].id");
      await redis.restart();
      await assertToldNotStored(refer(), 400, "input[0].id");
    },
  );

  test(
    "Redis paused: keeping gives up after responses.store.write_timeout_ms, the stream ends and its record says not kept",
    REDIS,
    async (t) => {
      // Well within the store's own command timeout (1 s): the bound, not Redis's client, ends the wait.
      const { mock, redis, records, logs, client } = await redisScene(t, "kept-paused", "    write_timeout_ms: 300\n");
      // A first answer kept: the store's connection is up when Redis stops answering.
      await client.responses.create({ model: "m", input: "warm up" });
      redis.pause();
      t.after(() => redis.resume());
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Not", " kept."], VENDOR_MODEL_ID) });
      const startedAtMs = Date.now();
      const streamed = await client.responses.stream({ model: "m", input: "hi" }).finalResponse();
      assert.equal(streamed.output_text, "Not kept.");
      const tookMs = Date.now() - startedAtMs;
      assert.ok(tookMs >= 300 && tookMs < 5_000, `the stream's end waited ${tookMs} ms for the paused store`);
      // Ended by the bound (its 300 ms timer always fires before the store's own 1 s command timeout).
      const failures = logs.lines.filter((line) => line.includes("could not keep an answer"));
      assert.equal(failures.length, 1, logs.lines.join(""));
      assert.match(failures[0] ?? "", /did not answer within 300 ms \(responses\.store\.write_timeout_ms\)/);
      const json = await client.responses.create({ model: "m", input: "hi again" });
      assert.equal(json.output_text, "Not kept.");
      assert.equal(records.length, 3, JSON.stringify(records));
      assert.deepEqual(
        records.map((record) => record.isAnswerNotKept === true),
        [false, true, true],
        JSON.stringify(records),
      );
      await assertToldNotStored(client.responses.retrieve(streamed.id), 404, "response_id");
    },
  );

  test(
    "named client keys: another client's answer not kept is a 503 to them while Redis is down, as any id",
    REDIS,
    async (t) => {
      const { redis, gateway } = await redisScene(
        t,
        "kept-clients",
        "",
        "server:\n  api_keys: [{ key: sk-client-a, name: a }, { key: sk-client-b, name: b }]\n",
      );
      const a = openAiClient(gateway, "sk-client-a");
      const b = openAiClient(gateway, "sk-client-b");
      await redis.kill();
      const answered = await a.responses.create({ model: "m", input: "hi" });
      await assertToldNotStored(a.responses.retrieve(answered.id), 404, "response_id");
      // Client b cannot tell a's answer from an id never seen: both are the store's 503 (it was a 404 for a's).
      for (const id of [answered.id, "resp_0123456789abcdef0123456789abcdef"]) {
        await assert.rejects(b.responses.retrieve(id, undefined, { maxRetries: 0 }), (error: unknown) => {
          assert.ok(error instanceof OpenAI.APIError, String(error));
          assert.equal(error.status, 503, `${id}: ${error.message}`);
          return true;
        });
      }
    },
  );

  test(
    "a write that lands after its bound: found, and no longer said 'could not be stored' when the store is down later",
    REDIS,
    async (t) => {
      const { redis, client } = await redisScene(t, "kept-late", "    write_timeout_ms: 300\n");
      await client.responses.create({ model: "m", input: "warm up" });
      redis.pause();
      t.after(() => redis.resume());
      const answer = client.responses.create({ model: "m", input: "hi" });
      // Past the bound (300 ms), within the store's own command timeout (1 s): the write is still on its way.
      await sleep(600);
      redis.resume();
      const late = await answer;
      for (let tries = 0; ; tries++) {
        const found = await client.responses.retrieve(late.id).catch(() => undefined);
        if (found !== undefined) break;
        assert.ok(tries < 50, "the late write never landed");
        await sleep(50);
      }
      // Stored after all: with the store down, a GET is the store's 503 (try again), not a 404 saying it was never
      // stored (which a client takes as final: it would give up a conversation Redis holds).
      await redis.kill();
      await assert.rejects(client.responses.retrieve(late.id, undefined, { maxRetries: 0 }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.status, 503, error.message);
        return true;
      });
    },
  );

  test(
    "a write that timed out in Redis's client too, then ran once Redis answered: no longer said 'could not be stored' when the store is down later",
    REDIS,
    async (t) => {
      const { redis, client } = await redisScene(t, "kept-ran", "    write_timeout_ms: 300\n");
      await client.responses.create({ model: "m", input: "warm up" });
      redis.pause();
      t.after(() => redis.resume());
      const answer = await client.responses.create({ model: "m", input: "hi" });
      // Past the store's own command timeout (1 s) too: the write was rejected, yet Redis runs it once it answers.
      await sleep(1_500);
      redis.resume();
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      t.after(() => admin.disconnect());
      await waitUntilAsync(async () => (await admin.hexists("kept-ran:{responses}:rows", answer.id)) === 1);
      // Nobody read it meanwhile: only a check of the gateway's own can learn that it landed.
      await sleep(1_500);
      await redis.kill();
      await assert.rejects(client.responses.retrieve(answer.id, undefined, { maxRetries: 0 }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.status, 503, error.message);
        return true;
      });
    },
  );

  test("answer cache hits, streamed and JSON: keeping them fails, and their records say not kept", REDIS, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    // The kept answers' commands (keys under `{responses}`) held on their way to Redis once `isStalled`: the answer
    // cache (`{answers}`, another connection) still answers, the store of kept responses does not.
    let isStalled = false;
    let release = (): void => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    t.after(() => release());
    const proxy = await useRedisProxy(t, redis.port, (text) =>
      isStalled && text.includes("{responses}") ? held : undefined,
    );
    const gateway = await useGateway(
      t,
      `${oneProviderYaml(mock)}cache:\n  enabled: true\nstate:\n  path: ":memory:"\n  redis_url: ${proxy.url}\n  redis_key_prefix: "kept-hits:"\nresponses:\n  store:\n    write_timeout_ms: 300\n`,
    );
    const records: RequestRecord[] = [];
    t.after(gateway.runtime.onRecord((record) => records.push(record)));
    const client = openAiClient(gateway);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Cached.", VENDOR_MODEL_ID) });
    const ask = {
      json: () => client.responses.create({ model: "m", input: "json, please" }),
      stream: () => client.responses.stream({ model: "m", input: "a stream, please" }).finalResponse(),
    };
    // Each answered once (a miss), then given from the cache once its shared put landed (not waited for).
    for (const kind of ["json", "stream"] as const) {
      if (kind === "stream") {
        mock.setDefault(CHAT_ROUTE, { kind: "sse", events: chatStream(["Cached", " stream."], VENDOR_MODEL_ID) });
      }
      for (let tries = 0; ; tries++) {
        await ask[kind]();
        if (records.at(-1)?.cache === "hit") break;
        assert.ok(tries < 50, `the ${kind} answer was never given from the cache`);
        await sleep(50);
      }
    }
    const asked = mock.requests.length;
    isStalled = true;
    const before = records.length;
    assert.equal((await ask.json()).output_text, "Cached.");
    assert.equal((await ask.stream()).output_text, "Cached stream.");
    assert.equal(mock.requests.length, asked, "both were cache hits");
    const given = records.slice(before);
    assert.deepEqual(
      given.map((record) => [record.isStream, record.cache, record.status, record.isAnswerNotKept === true]),
      [
        [false, "hit", 200, true],
        [true, "hit", 200, true],
      ],
    );
  });

  test(
    "a second signal while answers' keeping hangs (JSON, stream): their records are published before the exit, marked not kept",
    REDIS,
    async (t) => {
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Answered.", VENDOR_MODEL_ID) });
      const redis = await useRedisServer(t);
      // The kept answers' commands held once `isStalled` (a Redis that stopped answering them): the write's bound
      // (5 s, the default) is far past the exit's.
      let isStalled = false;
      /** The responses whose keeping was held (their ids, in the held commands). */
      const heldIds = new Set<string>();
      let release = (): void => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      t.after(() => release());
      const proxy = await useRedisProxy(t, redis.port, (text) => {
        if (!isStalled || !text.includes("{responses}")) return undefined;
        for (const id of text.match(/resp_[0-9a-f]+/g) ?? []) heldIds.add(id);
        return held;
      });
      const gateway = await useGateway(
        t,
        `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${proxy.url}\n  redis_key_prefix: "kept-exit:"\n`,
      );
      const records: RequestRecord[] = [];
      t.after(gateway.runtime.onRecord((record) => records.push(record)));
      const client = openAiClient(gateway);
      await client.responses.create({ model: "m", input: "warm up" });
      const signals = new EventEmitter();
      const exits: { code: number; records: readonly RequestRecord[] }[] = [];
      handleShutdownSignals(gateway, 10_000, (code) => exits.push({ code, records: [...records] }), signals);
      isStalled = true;
      const answer = client.responses.create({ model: "m", input: "hi" }, { maxRetries: 0 }).catch(() => undefined);
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Streamed."], VENDOR_MODEL_ID) });
      const streamed = client.responses
        .stream({ model: "m", input: "a stream" }, { maxRetries: 0 })
        .finalResponse()
        .catch(() => undefined);
      // Both answers made and sent to be kept, their keeping held.
      await waitUntil(() => heldIds.size >= 2, "the answers' keeping under way", 5_000);
      signals.emit("SIGTERM");
      signals.emit("SIGINT");
      await waitUntil(() => exits.length > 0, "the exit after the second signal", 5_000);
      release();
      await Promise.all([answer, streamed]);
      const published = exits[0]?.records ?? [];
      // Before, the records waited for the keeping (up to write_timeout_ms) and were lost with the exit: the answers'
      // usage and cost never reached the request log or the client's budgets.
      assert.deepEqual(
        published
          .slice(1)
          .map((record) => [record.endpoint, record.isStream, record.isAnswerNotKept === true])
          .sort(),
        [
          ["responses", false, true],
          ["responses", true, true],
        ],
        JSON.stringify(published),
      );
    },
  );
});
