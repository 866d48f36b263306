// OpenAI's Conversations API and `conversation` on the Responses API, driven by the real clients: the `openai` SDK's
// `client.conversations.*` and `responses.create({conversation})`, and the Agents SDK's OpenAIConversationsSession.
// The mock speaks only Chat Completions and shows which earlier turns each request sent. Also: named clients never
// reach each other's conversations, bad input is a clear 400, and with Redis two gateway processes share them.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Agent, OpenAIConversationsSession, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  oneProviderScene,
  oneProviderYaml,
  openAiClient,
  send,
  stateFileYaml,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

function messagesSent(mock: MockUpstream, index: number): unknown {
  return ((chatRequests(mock)[index]?.body ?? {}) as { messages?: unknown }).messages;
}

async function allItems(client: OpenAI, id: string, order: "asc" | "desc" = "asc") {
  const items = [];
  for await (const item of client.conversations.items.list(id, { order, limit: 2 })) items.push(item);
  return items;
}

/** The text of each listed item, as [type, role or name, text]. */
function summary(items: readonly unknown[]): unknown[] {
  return items.map((raw) => {
    const item = raw as { type: string; role?: string; name?: string; content?: { text?: string }[]; output?: unknown };
    const text = item.content?.map((part) => part.text ?? "").join("") ?? item.output ?? null;
    return [item.type, item.role ?? item.name ?? null, text];
  });
}

describe("Conversations API with the openai SDK", () => {
  test("create with items and metadata, retrieve, update, add, list in pages, retrieve and delete an item, delete", async (t) => {
    const { client } = await oneProviderScene(t);
    const created = await client.conversations.create({
      metadata: { topic: "demo" },
      items: [
        { type: "message", role: "user", content: "Hello" },
        // An earlier answer as the SDK returned it: its id is replaced by one of the conversation's.
        {
          id: "msg_elsewhere",
          type: "message",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: "Hi there", annotations: [] }],
        },
      ],
    });
    assert.match(created.id, /^conv_[0-9a-f]{32}$/);
    assert.equal(created.object, "conversation");
    assert.equal(typeof created.created_at, "number");
    assert.deepEqual(created.metadata, { topic: "demo" });

    const updated = await client.conversations.update(created.id, { metadata: { topic: "changed" } });
    assert.deepEqual(updated.metadata, { topic: "changed" });
    assert.deepEqual((await client.conversations.retrieve(created.id)).metadata, { topic: "changed" });

    const added = await client.conversations.items.create(created.id, {
      items: [
        { type: "function_call", call_id: "call_1", name: "lookup", arguments: '{"q":"x"}' },
        { type: "function_call_output", call_id: "call_1", output: "found" },
        { role: "user", content: [{ type: "input_text", text: "Thanks" }] },
      ],
    });
    assert.equal(added.object, "list");
    assert.deepEqual(
      added.data.map((item) => item.type),
      ["function_call", "function_call_output", "message"],
    );
    assert.match(added.data[0]?.id ?? "", /^fc_/);
    assert.equal(added.first_id, added.data[0]?.id);
    assert.equal(added.last_id, added.data[2]?.id);

    // Pages of 2, followed by the SDK's cursor (`after` = the last id) until has_more is false.
    const ascending = await allItems(client, created.id, "asc");
    assert.deepEqual(summary(ascending), [
      ["message", "user", "Hello"],
      ["message", "assistant", "Hi there"],
      ["function_call", "lookup", null],
      ["function_call_output", null, "found"],
      ["message", "user", "Thanks"],
    ]);
    const descending = await allItems(client, created.id, "desc");
    assert.deepEqual(
      descending.map((item) => item.id),
      ascending.map((item) => item.id).reverse(),
    );
    const page = await client.conversations.items.list(created.id, { limit: 2 });
    assert.equal(page.has_more, true);
    assert.equal(page.data[0]?.id, ascending.at(-1)?.id, "newest first by default");

    const second = ascending[1];
    assert.ok(second?.id !== undefined);
    const retrieved = await client.conversations.items.retrieve(second.id, { conversation_id: created.id });
    assert.deepEqual(retrieved, second);
    const afterDelete = await client.conversations.items.delete(second.id, { conversation_id: created.id });
    assert.equal(afterDelete.object, "conversation");
    assert.equal(afterDelete.id, created.id);
    assert.equal((await allItems(client, created.id)).length, 4);
    await assert.rejects(
      client.conversations.items.retrieve(second.id, { conversation_id: created.id }),
      OpenAI.NotFoundError,
    );

    const deleted = await client.conversations.delete(created.id);
    assert.deepEqual(deleted, { id: created.id, object: "conversation.deleted", deleted: true });
    await assert.rejects(client.conversations.retrieve(created.id), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal((error.error as { code?: string }).code, "conversation_not_found");
      return true;
    });
  });

  test("responses.create({conversation}): the conversation's items go first; input and output items are added, JSON and streamed", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    const conversation = await client.conversations.create({
      items: [{ type: "message", role: "user", content: "My name is Ada." }],
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Nice to meet you, Ada.", UPSTREAM_ID) });
    const first = await client.responses.create({
      model: "m",
      conversation: conversation.id,
      instructions: "Be brief.",
      input: "Say hello.",
    });
    assert.deepEqual(first.conversation, { id: conversation.id });
    assert.deepEqual(messagesSent(mock, 0), [
      { role: "system", content: "Be brief." },
      { role: "user", content: "My name is Ada." },
      { role: "user", content: "Say hello." },
    ]);

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Ada", "."], UPSTREAM_ID, { usage: true }) });
    const second = await client.responses
      .stream({ model: "m", conversation: { id: conversation.id }, input: [{ role: "user", content: "My name?" }] })
      .finalResponse();
    assert.equal(second.output_text, "Ada.");
    assert.deepEqual(second.conversation, { id: conversation.id }, "streamed snapshots show it too");
    assert.deepEqual(messagesSent(mock, 1), [
      { role: "user", content: "My name is Ada." },
      { role: "user", content: "Say hello." },
      { role: "assistant", content: "Nice to meet you, Ada." },
      { role: "user", content: "My name?" },
    ]);

    const items = await allItems(client, conversation.id);
    assert.deepEqual(summary(items), [
      ["message", "user", "My name is Ada."],
      ["message", "user", "Say hello."],
      ["message", "assistant", "Nice to meet you, Ada."],
      ["message", "user", "My name?"],
      ["message", "assistant", "Ada."],
    ]);
    // The output items keep the ids the responses showed; `instructions` are not added (as OpenAI).
    assert.equal(items[2]?.id, first.output[0]?.id);
    assert.equal(items[4]?.id, second.output[0]?.id);
    // `store: false` keeps no response, but the conversation still gets the turn.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Still here.", UPSTREAM_ID) });
    const unkept = await client.responses.create({
      model: "m",
      conversation: conversation.id,
      input: "Ping",
      store: false,
    });
    await assert.rejects(client.responses.retrieve(unkept.id), OpenAI.NotFoundError);
    assert.equal((await allItems(client, conversation.id)).length, 7);
  });

  test("a failed request adds nothing; unknown conversation is a 404, with previous_response_id a 400; nothing goes upstream", async (t) => {
    const { mock, gateway, client } = await oneProviderScene(t);
    const conversation = await client.conversations.create({ items: [{ role: "user", content: "hi" }] });
    mock.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    await assert.rejects(client.responses.create({ model: "m", conversation: conversation.id, input: "x" }));
    await assert.rejects(
      client.responses.stream({ model: "m", conversation: conversation.id, input: "y" }).finalResponse(),
    );
    // A stream cut after its first words (continuation then fails too): the client got an error event.
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Half", " an"], UPSTREAM_ID).slice(0, 2),
      end: "destroy",
    });
    await assert.rejects(
      client.responses.stream({ model: "m", conversation: conversation.id, input: "z" }).finalResponse(),
    );
    assert.equal((await allItems(client, conversation.id)).length, 1, "nothing added by failed requests");
    const upstreamCalls = chatRequests(mock).length;

    const unknown = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", conversation: "conv_0000", input: "x" },
    });
    assert.equal(unknown.status, 404);
    assert.deepEqual(
      { code: errorOf(unknown).code, param: errorOf(unknown).param, type: errorOf(unknown).type },
      { code: "conversation_not_found", param: "conversation", type: "invalid_request_error" },
    );
    const both = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", conversation: conversation.id, previous_response_id: "resp_1", input: "x" },
    });
    assert.equal(both.status, 400);
    assert.equal(errorOf(both).param, "conversation");
    assert.match(errorOf(both).message, /cannot be used together/);
    assert.equal(chatRequests(mock).length, upstreamCalls);

    // The token count reads the conversation too.
    const counted = await client.responses.inputTokens.count({ model: "m", conversation: conversation.id, input: "x" });
    const bare = await client.responses.inputTokens.count({ model: "m", input: "x" });
    assert.ok(counted.input_tokens > bare.input_tokens);
  });

  test("bad input is a clear 400 naming the field: ids, items, too many items, metadata, paging", async (t) => {
    const { gateway, client } = await oneProviderScene(t);
    const { id } = await client.conversations.create();
    const cases: [string, "GET" | "POST" | "DELETE", string, unknown, string | null][] = [
      ["bad conversation id", "GET", "/v1/conversations/not-a-conv", undefined, "conversation_id"],
      ["bad item id", "GET", `/v1/conversations/${id}/items/a%20b`, undefined, "item_id"],
      ["items not an array", "POST", `/v1/conversations/${id}/items`, { items: "hello" }, "items"],
      ["items missing", "POST", `/v1/conversations/${id}/items`, {}, "items"],
      [
        "too many items",
        "POST",
        "/v1/conversations",
        { items: Array.from({ length: 21 }, () => ({ role: "user", content: "x" })) },
        "items",
      ],
      [
        "unknown role",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ role: "robot", content: "x" }] },
        "items[0].role",
      ],
      [
        "item type OpenAI's reference does not take as input",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ type: "hologram_call", id: "h_1" }] },
        "items[0].type",
      ],
      [
        "hosted tool's item without a field the reference requires",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ type: "web_search_call", id: "ws_1", status: "completed" }] },
        "items[0].action",
      ],
      [
        "item_reference",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ type: "item_reference", id: "msg_1" }] },
        "items[0].type",
      ],
      [
        "function call without call_id",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ type: "function_call", name: "f", arguments: "{}" }] },
        "items[0].call_id",
      ],
      [
        "too much metadata",
        "POST",
        "/v1/conversations",
        { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"])) },
        "metadata",
      ],
      ["metadata not strings", "POST", `/v1/conversations/${id}`, { metadata: { a: 1 } }, "metadata"],
      ["update without metadata", "POST", `/v1/conversations/${id}`, {}, "metadata"],
      ["bad limit", "GET", `/v1/conversations/${id}/items?limit=500`, undefined, "limit"],
      ["bad order", "GET", `/v1/conversations/${id}/items?order=up`, undefined, "order"],
      ["unknown cursor", "GET", `/v1/conversations/${id}/items?after=msg_nope`, undefined, "after"],
      ["body not an object", "POST", "/v1/conversations", [1, 2], null],
      ["repeated limit", "GET", `/v1/conversations/${id}/items?limit=1&limit=2`, undefined, "limit"],
      ["repeated cursor", "GET", `/v1/conversations/${id}/items?after=a&after=b`, undefined, "after"],
      // Past Fastify's longest path parameter: refused before the route, as for /v1/responses/{id}.
      ["very long id", "GET", `/v1/conversations/conv_${"a".repeat(5_000)}`, undefined, null],
      ["encoded id", "DELETE", "/v1/conversations/conv_%2e%2e%2fx", undefined, "conversation_id"],
      [
        "nested content",
        "POST",
        `/v1/conversations/${id}/items`,
        { items: [{ role: "user", content: [[[[[[{ type: "input_text", text: "x" }]]]]]] }] },
        "items[0].content",
      ],
    ];
    for (const [name, method, path, body, param] of cases) {
      const response = await send(gateway, method, path, body === undefined ? {} : { body });
      assert.equal(response.status, 400, `${name}: ${response.text}`);
      assert.equal(errorOf(response).param, param, name);
    }
    // Prototype names are data, never a crash.
    const proto = await send(gateway, "POST", "/v1/conversations", {
      body: '{"metadata":{"__proto__":"x","constructor":"y"}}',
    });
    assert.ok(proto.status === 200 || proto.status === 400, proto.text);
    if (proto.status === 400) errorOf(proto);
    assert.equal((await allItems(client, id)).length, 0, "nothing was added by the refused requests");
    const gone = await send(gateway, "DELETE", `/v1/conversations/${id}/items/msg_nope`);
    assert.equal(gone.status, 404);
    assert.equal(errorOf(gone).code, "item_not_found");
  });

  test("ids as long as the routes take reach their route; a longer path segment is a short 400 that does not quote it", async (t) => {
    const { gateway, client } = await oneProviderScene(t);
    const { id } = await client.conversations.create();
    // Fastify's default longest parameter (100) refused these valid ids with its own message, quoting the path.
    const longest = `conv_${"a".repeat(128)}`;
    const unknown = await send(gateway, "GET", `/v1/conversations/${longest}`);
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(errorOf(unknown).code, "conversation_not_found");
    const item = await send(gateway, "GET", `/v1/conversations/${id}/items/${"i".repeat(200)}`);
    assert.equal(item.status, 404, item.text);
    assert.equal(errorOf(item).code, "item_not_found");
    for (const path of [`/v1/conversations/conv_${"b".repeat(5_000)}`, `/v1/responses/resp_${"b".repeat(5_000)}`]) {
      const refused = await send(gateway, "GET", path);
      assert.equal(refused.status, 400, refused.text.slice(0, 200));
      assert.ok(refused.text.length < 400, `a ${refused.text.length}-character answer`);
      assert.match(errorOf(refused).message, /longer than 256 characters/);
    }
  });

  test("an unknown type of kilobytes is named cut in its 400 (items, input, content parts, tools, Messages blocks)", async (t) => {
    const { gateway } = await oneProviderScene(t);
    const big = "x".repeat(5_000);
    const cases: [string, unknown][] = [
      ["/v1/conversations", { items: [{ type: big, role: "user", content: "x" }] }],
      ["/v1/conversations", { items: [{ role: "user", content: [{ type: big }] }] }],
      ["/v1/conversations", { items: [{ role: "assistant", content: [{ type: big, text: "t" }] }] }],
      ["/v1/responses", { model: "m", input: [{ type: big, role: "user", content: "x" }] }],
      ["/v1/responses", { model: "m", input: "hi", tools: [{ type: big }] }],
      ["/v1/responses", { model: "m", input: "hi", tools: [{ type: "namespace", name: "n", tools: [{ type: big }] }] }],
      ["/v1/messages", { model: "m", max_tokens: 5, messages: [{ role: "user", content: [{ type: big }] }] }],
      ["/v1/messages", { model: "m", max_tokens: 5, messages: [{ role: "assistant", content: [{ type: big }] }] }],
    ];
    for (const [path, body] of cases) {
      const response = await send(gateway, "POST", path, { body });
      assert.equal(response.status, 400, `${path}: ${response.text.slice(0, 200)}`);
      assert.ok(response.text.length < 600, `${path}: a ${response.text.length}-character answer`);
    }
  });

  test("a conversation is bounded in bytes: an input that would pass the bound is a 400 before anything goes upstream", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}responses:\n  store:\n    max_bytes: 20000\n`);
    const client = openAiClient(gateway);
    const { id } = await client.conversations.create({ items: [{ role: "user", content: "x".repeat(10_000) }] });
    await assert.rejects(
      client.conversations.items.create(id, { items: [{ role: "user", content: "y".repeat(10_000) }] }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && /per conversation/.test(error.message),
    );
    await assert.rejects(
      client.responses.create({ model: "m", conversation: id, input: "z".repeat(10_000) }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "conversation",
    );
    assert.equal(chatRequests(mock).length, 0);
    assert.equal((await allItems(client, id)).length, 1);
  });
});

describe("paging with `after` while items are deleted", () => {
  test("`after` naming an item deleted meanwhile pages on from where it was (both orders); an unknown id is a 400", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const client = openAiClient(gateway);
    const { id } = await client.conversations.create({
      items: ["a", "b", "c", "d", "e"].map((text) => ({ role: "user" as const, content: text })),
    });
    const texts = (page: { data: unknown[] }): string[] =>
      page.data.map((item) => (item as { content: { text: string }[] }).content[0]?.text ?? "?");
    const first = await client.conversations.items.list(id, { order: "asc", limit: 2 });
    assert.deepEqual(texts(first), ["a", "b"]);
    const [a, b] = first.data as { id: string }[];
    assert.ok(a !== undefined && b !== undefined);
    // The cursor and the item before it are both deleted: the next page still starts after where they were.
    await client.conversations.items.delete(b.id, { conversation_id: id });
    await client.conversations.items.delete(a.id, { conversation_id: id });
    const next = await client.conversations.items.list(id, { order: "asc", limit: 2, after: b.id });
    assert.deepEqual(texts(next), ["c", "d"]);
    const newest = await client.conversations.items.list(id, { order: "desc", limit: 1 });
    assert.deepEqual(texts(newest), ["e"]);
    const e = newest.data[0] as { id: string };
    await client.conversations.items.delete(e.id, { conversation_id: id });
    const older = await client.conversations.items.list(id, { order: "desc", after: e.id });
    assert.deepEqual(texts(older), ["d", "c"]);
    const unknown = await send(gateway, "GET", `/v1/conversations/${id}/items?after=msg_never_there`);
    assert.equal(unknown.status, 400);
    assert.equal(errorOf(unknown).param, "after");
  });
});

describe("an answer that would push its conversation past the bound", () => {
  test("is sent, not added, and the client is told: a header on JSON, an SSE comment before the last event", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}responses:\n  store:\n    max_bytes: 20000\n`);
    const client = openAiClient(gateway);
    const { id } = await client.conversations.create({ items: [{ role: "user", content: "x".repeat(9_000) }] });
    const long = "y".repeat(12_000);
    // The input fits, so it goes upstream; the answer does not.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion(long, UPSTREAM_ID) });
    const json = await send(gateway, "POST", "/v1/responses", { body: { model: "m", conversation: id, input: "Go." } });
    assert.equal(json.status, 200);
    assert.equal((json.json as { output_text?: string }).output_text, long, "the answer is sent whole");
    assert.equal(json.headers["x-gateway-conversation-not-updated"], "too_large");
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([long], UPSTREAM_ID, { usage: true }) });
    const streamed = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", conversation: id, input: "Again.", stream: true },
    });
    assert.equal(streamed.status, 200);
    // An SSE comment (skipped by SDKs) among the last events, before `response.completed`.
    const note = streamed.text.indexOf("\n\n: x-gateway-conversation-not-updated: too_large\n\n");
    assert.ok(note > 0, "the stream says the conversation was not updated");
    assert.ok(note < streamed.text.indexOf("event: response.completed\n"), "before the last event");
    assert.equal((await allItems(client, id)).length, 1, "neither answer was added");
    // An answer that fits adds its items and says nothing.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Short.", UPSTREAM_ID) });
    const fits = await send(gateway, "POST", "/v1/responses", { body: { model: "m", conversation: id, input: "Hi." } });
    assert.equal(fits.headers["x-gateway-conversation-not-updated"], undefined);
    assert.equal((await allItems(client, id)).length, 3);
  });
});

describe("named clients and conversations", () => {
  test("one named client never reaches another's conversation; an unnamed key reaches all", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", UPSTREAM_ID) });
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: alice-key-0123456789, name: alice }
    - { key: bob-key-0123456789, name: bob }
    - plain-key-0123456789
${oneProviderYaml(mock)}`,
    );
    const alice = openAiClient(gateway, "alice-key-0123456789");
    const bob = openAiClient(gateway, "bob-key-0123456789");
    const plain = openAiClient(gateway, "plain-key-0123456789");
    const secret = await alice.conversations.create({ items: [{ role: "user", content: "alice's secret" }] });
    const withoutKey = await send(gateway, "GET", `/v1/conversations/${secret.id}/items`);
    assert.equal(withoutKey.status, 401);
    assert.doesNotMatch(withoutKey.text, /secret/);
    const notFound = (error: unknown) => error instanceof OpenAI.NotFoundError;
    await assert.rejects(bob.conversations.retrieve(secret.id), notFound);
    await assert.rejects(bob.conversations.items.list(secret.id), notFound);
    await assert.rejects(bob.conversations.update(secret.id, { metadata: { x: "y" } }), notFound);
    await assert.rejects(
      bob.conversations.items.create(secret.id, { items: [{ role: "user", content: "hi" }] }),
      notFound,
    );
    await assert.rejects(bob.conversations.delete(secret.id), notFound);
    const listed = await allItems(alice, secret.id);
    await assert.rejects(bob.conversations.items.delete(listed[0]?.id ?? "", { conversation_id: secret.id }), notFound);
    await assert.rejects(
      bob.responses.create({ model: "m", conversation: secret.id, input: "what is the secret?" }),
      notFound,
    );
    await assert.rejects(
      bob.responses.inputTokens.count({ model: "m", conversation: secret.id, input: "x" }),
      notFound,
    );
    assert.equal(chatRequests(mock).length, 0, "bob's request never went upstream with alice's items");
    // Untouched by bob's attempts; alice and an unnamed key still read it.
    assert.deepEqual(summary(await allItems(alice, secret.id)), [["message", "user", "alice's secret"]]);
    assert.equal((await plain.conversations.retrieve(secret.id)).id, secret.id);
    await alice.responses.create({ model: "m", conversation: secret.id, input: "hi" });
    assert.equal((await allItems(alice, secret.id)).length, 3);
  });
});

describe("OpenAI Agents SDK", () => {
  test("OpenAIConversationsSession: the second run sends the first run's turn; the session's items are the conversation's", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    setTracingDisabled(true);
    const client = openAiClient(gateway);
    // The Agents SDK brings its own `openai`: it makes its clients from the base URL.
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
    const agent = new Agent({ name: "Assistant", instructions: "Be brief.", model: "m" });
    const session = new OpenAIConversationsSession({ apiKey: "x", baseURL: gateway.baseUrl });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello Ada.", UPSTREAM_ID) });
    assert.equal((await runner.run(agent, "I am Ada.", { session })).finalOutput, "Hello Ada.");
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("You are Ada.", UPSTREAM_ID) });
    assert.equal((await runner.run(agent, "Who am I?", { session })).finalOutput, "You are Ada.");
    assert.deepEqual(messagesSent(mock, 1), [
      { role: "system", content: "Be brief." },
      { role: "user", content: "I am Ada." },
      { role: "assistant", content: "Hello Ada." },
      { role: "user", content: "Who am I?" },
    ]);
    const conversationId = await session.getSessionId();
    assert.match(conversationId, /^conv_/);
    assert.deepEqual(summary(await allItems(client, conversationId)), [
      ["message", "user", "I am Ada."],
      ["message", "assistant", "Hello Ada."],
      ["message", "user", "Who am I?"],
      ["message", "assistant", "You are Ada."],
    ]);
    const popped = await session.popItem();
    assert.equal((popped as { role?: string } | undefined)?.role, "assistant");
    assert.equal((await session.getItems()).length, 3);
    await session.clearSession();
    await assert.rejects(client.conversations.retrieve(conversationId), OpenAI.NotFoundError);
  });

  test("run({conversationId}): the server keeps the history, the runs send only their new input", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    setTracingDisabled(true);
    const client = openAiClient(gateway);
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
    const agent = new Agent({ name: "Assistant", model: "m" });
    const { id } = await client.conversations.create();
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello Ada.", UPSTREAM_ID) });
    await runner.run(agent, "I am Ada.", { conversationId: id });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["You are Ada."], UPSTREAM_ID, { usage: true }) });
    const streamed = await runner.run(agent, "Who am I?", { conversationId: id, stream: true });
    for await (const _event of streamed) {
      // drained
    }
    await streamed.completed;
    assert.equal(streamed.finalOutput, "You are Ada.");
    assert.deepEqual(messagesSent(mock, 1), [
      { role: "user", content: "I am Ada." },
      { role: "assistant", content: "Hello Ada." },
      { role: "user", content: "Who am I?" },
    ]);
    assert.equal((await allItems(client, id)).length, 4);
  });
});

describe("conversations across gateway processes", () => {
  test("embedded store: a conversation outlives a gateway restart", async (t) => {
    const mock = await useMock(t);
    const statePath = join(mkdtempSync(join(tmpdir(), "conv-restart-")), "state.db");
    const yaml = stateFileYaml(mock, statePath);
    const before = await startTestGateway(yaml);
    const { id } = await openAiClient(before).conversations.create({ items: [{ role: "user", content: "I am Ada." }] });
    await before.close();
    const after = await startTestGateway(yaml);
    t.after(() => after.close());
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Ada.", UPSTREAM_ID) });
    await openAiClient(after).responses.create({ model: "m", conversation: id, input: "Who am I?" });
    assert.deepEqual(messagesSent(mock, 0), [
      { role: "user", content: "I am Ada." },
      { role: "user", content: "Who am I?" },
    ]);
  });

  test("redis: a conversation made on one gateway process is continued on another; a delete on one is seen by the other", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "conv-e2e:"\n`;
    const [one, two] = await Promise.all([startGatewayProcess(t, yaml), startGatewayProcess(t, yaml)]);
    const clientOf = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
    const { id } = await clientOf(one.url).conversations.create({ items: [{ role: "user", content: "I am Ada." }] });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hello Ada."], UPSTREAM_ID, { usage: true }) });
    await clientOf(two.url).responses.stream({ model: "m", conversation: id, input: "Hi" }).finalResponse();
    assert.deepEqual(summary(await allItems(clientOf(one.url), id)), [
      ["message", "user", "I am Ada."],
      ["message", "user", "Hi"],
      ["message", "assistant", "Hello Ada."],
    ]);
    await clientOf(two.url).conversations.delete(id);
    await assert.rejects(clientOf(one.url).conversations.retrieve(id), OpenAI.NotFoundError);
  });

  test("redis down: the conversation routes and `conversation` are a 503 naming the store; nothing goes upstream", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const gateway = await useGateway(
      t,
      `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "conv-down:"\n`,
    );
    const client = openAiClient(gateway);
    const { id } = await client.conversations.create();
    await redis.kill();
    const isStoreDown = (error: unknown) =>
      error instanceof OpenAI.APIError && error.status === 503 && /conversations cannot be reached/.test(error.message);
    await assert.rejects(client.conversations.create(), isStoreDown);
    await assert.rejects(client.conversations.items.list(id), isStoreDown);
    await assert.rejects(client.responses.create({ model: "m", conversation: id, input: "hi" }), isStoreDown);
    assert.equal(chatRequests(mock).length, 0);
  });
});
