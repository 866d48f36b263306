// POST /v1/responses where the gateway answered differently from OpenAI (an audit against the API reference), with
// the openai SDK as the client and the mock upstream speaking Chat Completions: `metadata` and `max_output_tokens`
// bounds, an `item_reference` to an item `previous_response_id` already brings, the role of an input `developer`
// message in `input_items`, `parallel_tool_calls: false` and `max_tool_calls` held to by a provider that ignores
// them, and the request fields the response object repeats back.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import type OpenAI from "openai";
import { type ScriptedCall, toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { badRequest, CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

const scene = oneProviderScene;

function chatBody(mock: Awaited<ReturnType<typeof scene>>["mock"], index: number): Record<string, unknown> {
  return (chatRequests(mock)[index]?.body ?? {}) as Record<string, unknown>;
}

const lookupTool = {
  type: "function" as const,
  name: "lookup",
  parameters: { type: "object", properties: { q: { type: "string" } } },
  strict: false,
};

const THREE_CALLS: readonly ScriptedCall[] = [
  { id: "call_1", name: "lookup", arguments: '{"q":"a"}' },
  { id: "call_2", name: "lookup", arguments: '{"q":"b"}' },
  { id: "call_3", name: "lookup", arguments: '{"q":"c"}' },
];

describe("responses API: bounds OpenAI refuses", () => {
  test("metadata over 16 keys, a key over 64 characters or a value over 512: a 400 naming metadata, nothing sent", async (t) => {
    const { mock, client } = await scene(t);
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"]));
    const cases: Record<string, string>[] = [many, { ["k".repeat(65)]: "v" }, { key: "v".repeat(513) }];
    for (const metadata of cases) {
      const error = await badRequest(client.responses.create({ model: "m", input: "hi", metadata }));
      assert.equal(error.param, "metadata");
      assert.equal((error.error as { type?: string }).type, "invalid_request_error");
    }
    assert.equal(chatRequests(mock).length, 0);
  });

  test("metadata with a __proto__ key: a 400 naming metadata on the Responses and Conversations doors, not dropped", async (t) => {
    const { mock, client } = await scene(t);
    // JSON.parse keeps `__proto__` an own key (an object literal would set the prototype instead): sent as a client
    // in another language sends it. Copied into a plain object it vanished and the answer said `metadata: {}`.
    const metadata = JSON.parse('{"__proto__": "polluted", "kept": "yes"}') as Record<string, string>;
    const responses = await badRequest(client.responses.create({ model: "m", input: "hi", metadata }));
    assert.equal(responses.param, "metadata");
    assert.match(responses.message, /__proto__/);
    assert.equal(chatRequests(mock).length, 0);
    const created = await badRequest(client.conversations.create({ metadata }));
    assert.equal(created.param, "metadata");
    const conversation = await client.conversations.create({ metadata: { kept: "yes" } });
    const updated = await badRequest(client.conversations.update(conversation.id, { metadata }));
    assert.equal(updated.param, "metadata");
    assert.deepEqual((await client.conversations.retrieve(conversation.id)).metadata, { kept: "yes" });
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });

  test("max_output_tokens below 16: OpenAI's 400 integer_below_min_value; 16 is taken", async (t) => {
    const { mock, client } = await scene(t);
    const error = await badRequest(client.responses.create({ model: "m", input: "hi", max_output_tokens: 15 }));
    assert.equal(error.param, "max_output_tokens");
    assert.equal(error.code, "integer_below_min_value");
    assert.match(error.message, /Expected a value >= 16, but got 15 instead/);
    assert.equal(chatRequests(mock).length, 0);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    const response = await client.responses.create({ model: "m", input: "hi", max_output_tokens: 16 });
    assert.equal(response.max_output_tokens, 16);
  });

  test("chat completions: metadata is passed through for the provider to judge (a LiteLLM-style one included)", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    // Clients moving from a LiteLLM proxy send tags and trace ids there; the Responses door keeps and repeats its
    // metadata (so holds it to OpenAI's bounds), the chat door only forwards the body's fields.
    const metadata = { tags: ["a", "b"], trace: { id: "t1" }, long: "v".repeat(513) };
    const sent = { model: "m", messages: [{ role: "user" as const, content: "hi" }], metadata };
    const completion = await client.chat.completions.create(
      sent as unknown as Parameters<typeof client.chat.completions.create>[0],
    );
    assert.ok("choices" in completion);
    assert.deepEqual(chatBody(mock, 0).metadata, metadata);
  });
});

describe("responses API: continuing", () => {
  test("an item_reference to an item previous_response_id already brings: 400 Duplicate item found", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("First answer.", VENDOR_MODEL_ID) });
    const first = await client.responses.create({ model: "m", input: "one" });
    const itemId = first.output[0]?.id ?? "";
    const error = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: first.id,
        input: [
          { type: "item_reference", id: itemId },
          { role: "user", content: "two" },
        ],
      }),
    );
    assert.match(error.message, new RegExp(`Duplicate item found with id ${itemId}`));
    assert.equal(error.param, "input[0].id");
    assert.equal(chatRequests(mock).length, 1);
    // Two turns on: the first answer is still in the chain.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Second answer.", VENDOR_MODEL_ID) });
    const second = await client.responses.create({ model: "m", previous_response_id: first.id, input: "two" });
    const again = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: second.id,
        input: [{ type: "item_reference", id: itemId }],
      }),
    );
    assert.match(again.message, /Duplicate item found/);
    // An item of another chain (a response made apart) is not in this one: it goes upstream after the history.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Apart.", VENDOR_MODEL_ID) });
    const apart = await client.responses.create({ model: "m", input: "apart" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Third answer.", VENDOR_MODEL_ID) });
    await client.responses.create({
      model: "m",
      previous_response_id: second.id,
      input: [{ type: "item_reference", id: apart.output[0]?.id ?? "" }],
    });
    const sent = chatBody(mock, 3).messages as { content: unknown }[];
    assert.deepEqual(
      sent.map((message) => message.content),
      ["one", "First answer.", "two", "Second answer.", "Apart."],
    );
    // The same item twice in one input.
    const twice = await badRequest(
      client.responses.create({
        model: "m",
        input: [
          { type: "item_reference", id: apart.output[0]?.id ?? "" },
          { type: "item_reference", id: apart.output[0]?.id ?? "" },
        ],
      }),
    );
    assert.equal(twice.param, "input[1].id");
    assert.equal(chatRequests(mock).length, 4);
  });

  test("input_items keeps an input developer message's role", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    const response = await client.responses.create({
      model: "m",
      input: [
        { role: "developer", content: "Be brief." },
        { role: "system", content: "System rule." },
        { role: "user", content: "hi" },
      ],
    });
    const sent = chatBody(mock, 0).messages as { role: string }[];
    assert.deepEqual(
      sent.map((message) => message.role),
      ["system", "system", "user"],
    );
    const items = await client.responses.inputItems.list(response.id, { order: "asc" });
    assert.deepEqual(
      items.data.map((item) => (item as { role?: string }).role),
      ["developer", "system", "user"],
    );
    // Continued from, the kept developer message goes upstream as `system` again.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    await client.responses.create({ model: "m", previous_response_id: response.id, input: "more" });
    assert.deepEqual(
      (chatBody(mock, 1).messages as { role: string }[]).map((message) => message.role),
      ["system", "system", "user", "assistant", "user"],
    );
  });
});

describe("responses API: tool calls the request limits", () => {
  test("parallel_tool_calls: false, a provider answering three calls: one function_call item (JSON)", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(VENDOR_MODEL_ID, THREE_CALLS) });
    const response = await client.responses.create({
      model: "m",
      input: "look up a, b and c",
      tools: [lookupTool],
      parallel_tool_calls: false,
    });
    const calls = response.output.filter((item) => item.type === "function_call");
    assert.deepEqual(
      calls.map((call) => call.call_id),
      ["call_1"],
    );
    assert.equal(chatBody(mock, 0).parallel_tool_calls, false);
  });

  test("parallel_tool_calls: false, streamed: only the first call's events", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(VENDOR_MODEL_ID, THREE_CALLS) });
    const stream = client.responses.stream({
      model: "m",
      input: "look up a, b and c",
      tools: [lookupTool],
      parallel_tool_calls: false,
    });
    const added: string[] = [];
    for await (const event of stream) {
      if (event.type === "response.output_item.added" && event.item.type === "function_call") {
        added.push(event.item.call_id);
      }
    }
    const final = await stream.finalResponse();
    assert.deepEqual(added, ["call_1"]);
    assert.deepEqual(
      final.output.filter((item) => item.type === "function_call").map((call) => call.arguments),
      ['{"q":"a"}'],
    );
  });

  test("max_tool_calls: 2 keeps the first two calls, JSON and streamed", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(VENDOR_MODEL_ID, THREE_CALLS) });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(VENDOR_MODEL_ID, THREE_CALLS) });
    // This openai SDK's types have no `max_tool_calls` yet; it sends the field as it is given.
    const request = { model: "m", input: "look up", tools: [lookupTool], max_tool_calls: 2 };
    const json = await client.responses.create(request as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const streamed = await client.responses
      .stream(request as Parameters<typeof client.responses.stream>[0])
      .finalResponse();
    for (const response of [json, streamed]) {
      assert.deepEqual(
        response.output.flatMap((item) => (item.type === "function_call" ? [item.call_id] : [])),
        ["call_1", "call_2"],
      );
      assert.equal((response as unknown as { max_tool_calls?: unknown }).max_tool_calls, 2);
    }
  });
});

describe("responses API: fields the response object repeats", () => {
  test("prompt_cache_key, safety_identifier, top_logprobs, max_tool_calls, service_tier, text.verbosity", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    const response = (await client.responses.create({
      model: "m",
      input: "hi",
      prompt_cache_key: "cache-1",
      safety_identifier: "user-hash-1",
      max_tool_calls: 3,
      service_tier: "auto",
      text: { verbosity: "low" },
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming)) as OpenAI.Responses.Response & {
      max_tool_calls?: unknown;
    };
    assert.equal(response.prompt_cache_key, "cache-1");
    assert.equal(response.safety_identifier, "user-hash-1");
    assert.equal(response.max_tool_calls, 3);
    assert.equal(response.service_tier, "auto");
    assert.equal(response.text?.verbosity, "low");
    assert.equal(response.top_logprobs, 0);
    // Sent as chat's `user` (which every chat provider the gateway forwards `user` to takes); the cache key is not.
    const sent = chatBody(mock, 0);
    assert.equal(sent.user, "user-hash-1");
    assert.equal(sent.prompt_cache_key, undefined);
    assert.equal(sent.safety_identifier, undefined);
    const plain = await client.responses.create({ model: "m", input: "hi", user: "own-user", safety_identifier: "s" });
    assert.equal(plain.prompt_cache_key, null);
    assert.equal((plain as { max_tool_calls?: unknown }).max_tool_calls, null);
    assert.equal(plain.text?.verbosity, "medium");
    assert.equal(chatBody(mock, 1).user, "own-user");
  });
});

describe("responses API: safety_identifier as chat's user", () => {
  test("a safety_identifier over 64 characters goes upstream as its SHA-256, as the Messages door's user_id", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
    const long = `tenant-7/user-${"x".repeat(80)}`;
    const response = await client.responses.create({ model: "m", input: "hi", safety_identifier: long });
    // OpenAI refuses a `user` over 64 characters (string_above_max_length): every candidate would have failed.
    assert.equal(chatBody(mock, 0).user, createHash("sha256").update(long).digest("hex"));
    assert.equal(response.safety_identifier, long);
  });
});
