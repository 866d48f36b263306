// Kept Responses API answers outlive the gateway process that made them: in the embedded store file a
// conversation continues after a restart; with Redis, a conversation started on one gateway process continues on
// another (each a separate OS process, so Redis is the only thing they share). The mock speaks only Chat
// Completions and shows which earlier turns each continuation sent.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests, oneProviderYaml, openAiClient, stateFileYaml, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const UPSTREAM_ID = "vendor/m-instruct";

function messagesSent(mock: MockUpstream, index: number): unknown {
  return ((chatRequests(mock)[index]?.body ?? {}) as { messages?: unknown }).messages;
}

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
}

describe("kept responses across gateway processes", () => {
  test("embedded store: a conversation continues after a gateway restart (previous_response_id, item_reference, GET)", async (t) => {
    const mock = await useMock(t);
    const statePath = join(mkdtempSync(join(tmpdir(), "kept-restart-")), "state.db");
    const yaml = stateFileYaml(mock, statePath);

    const before = await startTestGateway(yaml);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Nice to meet you, Ada.", UPSTREAM_ID) });
    const first = await openAiClient(before).responses.create({ model: "m", input: "My name is Ada." });
    await before.close();

    const after = await startTestGateway(yaml);
    t.after(() => after.close());
    const sdk = openAiClient(after);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Ada."], UPSTREAM_ID, { usage: true }) });
    const second = await sdk.responses
      .stream({ model: "m", previous_response_id: first.id, input: "What is my name?" })
      .finalResponse();
    assert.equal(second.output_text, "Ada.");
    assert.deepEqual(messagesSent(mock, 1), [
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Nice to meet you, Ada." },
      { role: "user", content: "What is my name?" },
    ]);
    // The AI SDK's way: the earlier answer by item reference.
    const firstItem = first.output[0];
    assert.ok(firstItem?.id !== undefined);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Yes.", UPSTREAM_ID) });
    await sdk.responses.create({
      model: "m",
      input: [
        { role: "user", content: "My name is Ada." },
        { type: "item_reference", id: firstItem.id },
        { role: "user", content: "Did you greet me?" },
      ],
    });
    assert.deepEqual(messagesSent(mock, 2), [
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Nice to meet you, Ada." },
      { role: "user", content: "Did you greet me?" },
    ]);
    assert.equal((await sdk.responses.retrieve(first.id)).output_text, "Nice to meet you, Ada.");
  });

  test("responses.store bounds apply to the embedded store: max_entries 1 keeps only the newest", async (t) => {
    const mock = await useMock(t);
    const gateway = await startTestGateway(`${oneProviderYaml(mock)}responses:\n  store:\n    max_entries: 1\n`);
    t.after(() => gateway.close());
    const sdk = openAiClient(gateway);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("one", UPSTREAM_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("two", UPSTREAM_ID) });
    const first = await sdk.responses.create({ model: "m", input: "1" });
    const second = await sdk.responses.create({ model: "m", input: "2" });
    await assert.rejects(sdk.responses.retrieve(first.id), OpenAI.NotFoundError);
    assert.equal((await sdk.responses.retrieve(second.id)).output_text, "two");
  });

  test("embedded store locked by another process: answers are not held up, continuations work, the answer is written once the lock is free", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Nice to meet you, Ada.", UPSTREAM_ID) });
    const statePath = join(mkdtempSync(join(tmpdir(), "kept-locked-")), "state.db");
    const lines: string[] = [];
    const gateway = await startTestGateway(stateFileYaml(mock, statePath), {
      logLevel: "info",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    t.after(() => gateway.close());
    const sdk = openAiClient(gateway);
    // Another process (a backup, a second gateway, sqlite3 in a shell) holds the file's write lock.
    const other = new DatabaseSync(statePath);
    other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
    t.after(() => {
      if (other.isTransaction) other.exec("ROLLBACK");
      other.close();
    });
    const startedMs = performance.now();
    const [first, chat] = await Promise.all([
      sdk.responses.create({ model: "m", input: "My name is Ada." }),
      sdk.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    ]);
    const elapsedMs = performance.now() - startedMs;
    assert.equal(chat.choices[0]?.message.content, "Nice to meet you, Ada.");
    // The busy timeout (2 s) stalled the whole process before; a put now never waits for the lock.
    assert.ok(elapsedMs < 1_000, `answered ${Math.round(elapsedMs)} ms after the requests while the file was locked`);
    // Still locked: the continuation finds the answer waiting in memory.
    await sdk.responses.create({ model: "m", previous_response_id: first.id, input: "What is my name?" });
    assert.deepEqual(messagesSent(mock, 2), [
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Nice to meet you, Ada." },
      { role: "user", content: "What is my name?" },
    ]);
    assert.ok(
      lines.some((line) => line.includes("is locked by another process")),
      "no word about the lock",
    );
    other.exec("ROLLBACK");
    const reader = new DatabaseSync(statePath, { readOnly: true });
    t.after(() => reader.close());
    const deadline = Date.now() + 3_000;
    while (reader.prepare("SELECT id FROM kept_responses WHERE id = ?").get(first.id) === undefined) {
      assert.ok(Date.now() < deadline, "the answer was not written once the lock was free");
      await sleep(50);
    }
    assert.ok(lines.some((line) => line.includes("answers that waited for the lock are written")));
  });

  test("redis: a conversation started on one gateway process continues on another; DELETE on one is seen by the other", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "kept-e2e:"\n`;
    const [one, two] = await Promise.all([startGatewayProcess(t, yaml), startGatewayProcess(t, yaml)]);

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Nice to meet you, Ada.", UPSTREAM_ID) });
    const first = await client(one.url).responses.create({ model: "m", input: "My name is Ada." });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Ada."], UPSTREAM_ID, { usage: true }) });
    const second = await client(two.url)
      .responses.stream({ model: "m", previous_response_id: first.id, input: "What is my name?" })
      .finalResponse();
    assert.equal(second.output_text, "Ada.");
    assert.deepEqual(messagesSent(mock, 1), [
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Nice to meet you, Ada." },
      { role: "user", content: "What is my name?" },
    ]);
    // The streamed answer kept by process two is visible to process one.
    assert.equal((await client(one.url).responses.retrieve(second.id)).output_text, "Ada.");
    await client(one.url).responses.delete(second.id);
    await assert.rejects(client(two.url).responses.retrieve(second.id), OpenAI.NotFoundError);
  });

  test("redis down: a continuation is a 503 naming the store, and nothing goes upstream", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "kept-down:"\n`;
    const gateway = await startTestGateway(yaml);
    t.after(() => gateway.close());
    await redis.kill();
    await assert.rejects(
      openAiClient(gateway).responses.create({ model: "m", previous_response_id: "resp_x", input: "hi" }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError);
        assert.equal(error.status, 503);
        assert.match(error.message, /kept responses/);
        return true;
      },
    );
    assert.equal(chatRequests(mock).length, 0);
  });

  test("redis down: answers are still given, and the failed keeps are logged once, not once per answer", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("hello", UPSTREAM_ID) });
    const redis = await useRedisServer(t);
    const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "kept-flood:"\n`;
    const lines: string[] = [];
    const gateway = await startTestGateway(yaml, {
      logLevel: "info",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    t.after(() => gateway.close());
    const ask = () => openAiClient(gateway).responses.create({ model: "m", input: "hi" });
    await redis.kill();
    for (let index = 0; index < 4; index++) assert.equal((await ask()).output_text, "hello");
    const failures = () => lines.filter((line) => line.includes("kept responses: could not keep an answer"));
    assert.equal(failures().length, 1, "one warning for the outage, not one per answer");

    await redis.restart();
    const deadline = Date.now() + 5_000;
    while (!lines.some((line) => line.includes("kept responses: answers are kept again"))) {
      assert.ok(Date.now() < deadline, "no word that answers are kept again");
      await ask();
      await sleep(100);
    }
    assert.equal(failures().length, 1);
  });
});
