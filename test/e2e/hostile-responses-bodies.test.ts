// A Responses `function_call_output` (or custom tool output) whose `call_id` names no call, in the input or in the
// history `previous_response_id` brings: OpenAI's 400 ("No tool call found for function call output with call_id
// ..."), naming the item, before any upstream call. Translated as it came, it was a chat `tool` message answering
// nothing, which each provider refused in its own words.
import assert from "node:assert/strict";
import { test } from "node:test";
import type OpenAI from "openai";
import { toolCallCompletion } from "../helpers/chat-tool-calls.ts";
import { badRequest, CHAT_ROUTE, chatRequests, serveEveryChat } from "../helpers/e2e.ts";
import { assertRefusedBeforeUpstream, hostileScene } from "../helpers/hostile-bodies.ts";

const TOOLS: OpenAI.Responses.Tool[] = [
  { type: "function", name: "lookup", parameters: { type: "object", properties: {} }, strict: false },
];

test("an output answering no call: OpenAI's 400 naming the item, nothing sent upstream", async (t) => {
  const { mock, gateway, client } = await hostileScene(t);
  const refused: [OpenAI.Responses.ResponseInput, string, string][] = [
    [
      [
        { role: "user", content: "look" },
        { type: "function_call_output", call_id: "call_404", output: "lost" },
      ],
      "input[1].call_id",
      "No tool call found for function call output with call_id call_404.",
    ],
    [
      [
        { role: "user", content: "look" },
        { type: "function_call", call_id: "call_1", name: "lookup", arguments: "{}" },
        { type: "function_call_output", call_id: "call_1", output: "found" },
        { type: "custom_tool_call_output", call_id: "call_2", output: "lost" },
      ],
      "input[3].call_id",
      "No tool call found for custom tool call output with call_id call_2.",
    ],
  ];
  for (const [input, param, message] of refused) {
    const error = await badRequest(client.responses.create({ model: "m", input, tools: TOOLS }));
    assert.deepEqual([error.param, error.message, error.code], [param, `400 ${message}`, "invalid_value"]);
  }
  await assertRefusedBeforeUpstream(gateway, mock, "responses", refused.length);
});

test("an output answering a call of the previous response is served; one answering none of it is refused", async (t) => {
  const { mock, client } = await hostileScene(t);
  mock.enqueue(CHAT_ROUTE, {
    kind: "json",
    body: toolCallCompletion("vendor/m-instruct", [{ id: "call_kept", name: "lookup", arguments: "{}" }]),
  });
  const first = await client.responses.create({ model: "m", input: "look it up", tools: TOOLS });
  assert.ok(first.output.some((item) => item.type === "function_call" && item.call_id === "call_kept"));
  serveEveryChat(mock);

  const error = await badRequest(
    client.responses.create({
      model: "m",
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: "call_other", output: "?" }],
      tools: TOOLS,
    }),
  );
  assert.equal(error.param, "input[0].call_id");
  assert.equal(error.message, "400 No tool call found for function call output with call_id call_other.");
  assert.equal(chatRequests(mock).length, 1);

  const answered = await client.responses.create({
    model: "m",
    previous_response_id: first.id,
    input: [{ type: "function_call_output", call_id: "call_kept", output: "a cat" }],
    tools: TOOLS,
  });
  assert.equal(answered.output_text, "Served.");
  const sent = chatRequests(mock)[1]?.body as { messages: { role: string; tool_call_id?: string }[] };
  assert.equal(sent.messages.at(-1)?.tool_call_id, "call_kept");
});

test("a conversation's turn continued after the conversation was deleted: its output of the conversation's call is no orphan to refuse", async (t) => {
  const { mock, client } = await hostileScene(t);
  mock.enqueue(CHAT_ROUTE, {
    kind: "json",
    body: toolCallCompletion("vendor/m-instruct", [{ id: "call_conv", name: "lookup", arguments: "{}" }]),
  });
  const conversation = await client.conversations.create({});
  await client.responses.create({ model: "m", conversation: conversation.id, input: "look it up", tools: TOOLS });
  serveEveryChat(mock);
  const answered = await client.responses.create({
    model: "m",
    conversation: conversation.id,
    input: [{ type: "function_call_output", call_id: "call_conv", output: "a cat" }],
    tools: TOOLS,
  });
  await client.conversations.delete(conversation.id);
  // The kept turn holds its own items (the output, the answer) and points to the conversation for the rest: with it
  // gone, its history starts at the output, whose call went with the conversation. At OpenAI the turn keeps its whole
  // input; here the request is sent with what is left, not refused for a field the client never sent.
  const next = await client.responses.create({ model: "m", previous_response_id: answered.id, input: "thanks" });
  assert.equal(next.output_text, "Served.");
  const sent = chatRequests(mock).at(-1)?.body as { messages: { role: string; content: unknown }[] };
  assert.deepEqual(
    sent.messages.map((message) => [message.role, message.content]),
    [
      ["assistant", "Served."],
      ["user", "thanks"],
    ],
  );
});
