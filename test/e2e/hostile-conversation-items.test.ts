// The Conversations door (`POST /v1/conversations` with `items`, `POST /v1/conversations/{id}/items`) refuses a tool
// output whose `call_id` answers no call in the conversation nor before it in the request, as the Responses door refuses
// one in `input`: OpenAI's 400 ("No tool call found for function call output with call_id ..."), `param` naming the
// item, nothing stored. Kept, the orphan was dropped from every later turn sent to a chat provider (a tool result the
// model never saw) and sent as it was to a native Responses provider, which refused every turn. With Redis, two
// gateways check against the conversation as the shared store holds it (review coverage of 1d72919d).
import assert from "node:assert/strict";
import { test } from "node:test";
import type OpenAI from "openai";
import { badRequest, oneProviderYaml, openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { hostileScene } from "../helpers/hostile-bodies.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

type Items = OpenAI.Conversations.ItemCreateParams["items"];

const CALL_1 = { type: "function_call", call_id: "call_1", name: "lookup", arguments: "{}" } as const;

async function refused(promise: Promise<unknown>, param: string, message: string): Promise<void> {
  const error = await badRequest(promise);
  assert.deepEqual([error.param, error.message, error.code], [param, `400 ${message}`, "invalid_value"]);
}

async function listed(client: OpenAI, id: string): Promise<[string, string | undefined][]> {
  const items: [string, string | undefined][] = [];
  for await (const item of client.conversations.items.list(id, { order: "asc" })) {
    items.push([item.type, (item as { call_id?: string }).call_id]);
  }
  return items;
}

test("an output answering no call of the conversation or of the request: OpenAI's 400 naming the item, nothing kept", async (t) => {
  const { mock, client } = await hostileScene(t);
  const orphan: Items = [
    { type: "message", role: "user", content: "look" },
    { type: "function_call_output", call_id: "call_404", output: "lost" },
  ];
  await refused(
    client.conversations.create({ items: orphan }),
    "items[1].call_id",
    "No tool call found for function call output with call_id call_404.",
  );
  // Its call after it is no call before it, as in a Responses `input`.
  await refused(
    client.conversations.create({ items: [{ type: "function_call_output", call_id: "call_1", output: "x" }, CALL_1] }),
    "items[0].call_id",
    "No tool call found for function call output with call_id call_1.",
  );

  const conversation = await client.conversations.create({
    items: [CALL_1, { type: "function_call_output", call_id: "call_1", output: "found" }],
  });
  await refused(
    client.conversations.items.create(conversation.id, {
      items: [
        { type: "message", role: "user", content: "more" },
        { type: "custom_tool_call_output", call_id: "call_9", output: "lost" },
      ],
    }),
    "items[1].call_id",
    "No tool call found for custom tool call output with call_id call_9.",
  );
  // An output of the conversation's own call, and a call with its output in one request, are taken.
  await client.conversations.items.create(conversation.id, {
    items: [{ type: "function_call_output", call_id: "call_1", output: "again" }],
  });
  await client.conversations.items.create(conversation.id, {
    items: [
      { type: "function_call", call_id: "call_2", name: "lookup", arguments: "{}" },
      { type: "function_call_output", call_id: "call_2", output: "found" },
    ],
  });
  assert.deepEqual(await listed(client, conversation.id), [
    ["function_call", "call_1"],
    ["function_call_output", "call_1"],
    ["function_call_output", "call_1"],
    ["function_call", "call_2"],
    ["function_call_output", "call_2"],
  ]);

  // The conversation as it is now: once its call item is deleted, an output of `call_2` answers nothing.
  const callItem = (await client.conversations.items.list(conversation.id, { order: "asc" })).data[3];
  assert.equal(callItem?.type, "function_call");
  await client.conversations.items.delete(callItem?.id ?? "", { conversation_id: conversation.id });
  await refused(
    client.conversations.items.create(conversation.id, {
      items: [{ type: "function_call_output", call_id: "call_2", output: "late" }],
    }),
    "items[0].call_id",
    "No tool call found for function call output with call_id call_2.",
  );
  assert.equal((await listed(client, conversation.id)).length, 4);
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method !== "GET").map((recorded) => recorded.path),
    [],
    "the Conversations API calls no upstream",
  );
});

test("two gateways on one Redis: an output is checked against the conversation as the store holds it", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const mock = await useMock(t);
  const redis = await useRedisServer(t);
  const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "orphans:"\n`;
  const [one, two] = [openAiClient(await useGateway(t, yaml)), openAiClient(await useGateway(t, yaml))];
  const { id } = await one.conversations.create({ items: [CALL_1] });
  // The call added on one gateway answers an output added on the other.
  await two.conversations.items.create(id, {
    items: [{ type: "function_call_output", call_id: "call_1", output: "a" }],
  });
  const callItem = (await two.conversations.items.list(id, { order: "asc" })).data[0];
  assert.equal(callItem?.type, "function_call");
  // Deleted on the first: the second reads the store inside its write, not a copy of its own.
  await one.conversations.items.delete(callItem?.id ?? "", { conversation_id: id });
  await refused(
    two.conversations.items.create(id, { items: [{ type: "function_call_output", call_id: "call_1", output: "b" }] }),
    "items[0].call_id",
    "No tool call found for function call output with call_id call_1.",
  );
  assert.deepEqual(await listed(one, id), [["function_call_output", "call_1"]]);
});
