// A tool result with no text (a command that printed nothing) on every door: a chat `tool` message with `""`
// content, a Messages `tool_result` with no content, a Responses `function_call_output` with `output: ""`. Providers
// that check tool content refuse an empty one (a 400 "content must not be empty"), which failed every later turn of
// the agent's session; the gateway sends a short placeholder instead (src/protocols/tool-result-text.ts).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";

const PLACEHOLDER = "(no output)";

/** An upstream that refuses a `tool` message without text, as providers checking tool content do; else answers. */
function emptyToolContentRefusingUpstream(): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const { messages } = request.body as { messages: { role: string; content?: unknown }[] };
      const empty = messages.findIndex(
        (message) => message.role === "tool" && (typeof message.content !== "string" || message.content.trim() === ""),
      );
      if (empty >= 0) {
        response.writeHead(400, { "content-type": "application/json" });
        const message = `messages.${empty}.content: text content blocks must be non-empty`;
        response.end(JSON.stringify({ error: { message, type: "invalid_request_error", code: "invalid_value" } }));
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("Done: the command printed nothing.", VENDOR_MODEL_ID)));
    },
  };
}

/** The `tool` messages the upstream got. */
function sentToolMessages(mock: MockUpstream): unknown[] {
  const body = chatRequests(mock).at(-1)?.body as { messages: { role: string }[] };
  return body.messages.filter((message) => message.role === "tool");
}

const tools = [{ type: "function" as const, function: { name: "run", parameters: { type: "object" } } }];
const call = { id: "call_run", type: "function" as const, function: { name: "run", arguments: '{"cmd":"true"}' } };

describe("tool results with no text reach the provider with a placeholder", () => {
  test('chat door: a tool message whose content is "" or white space only', async (t) => {
    const { mock, client } = await oneProviderScene(t);
    for (const content of ["", " \n"]) {
      mock.enqueue(CHAT_ROUTE, emptyToolContentRefusingUpstream());
      const completion = await client.chat.completions.create({
        model: "m",
        tools,
        messages: [
          { role: "user", content: "Run true." },
          { role: "assistant", content: null, tool_calls: [call] },
          { role: "tool", tool_call_id: "call_run", content },
        ],
      });
      assert.equal(completion.choices[0]?.message.content, "Done: the command printed nothing.");
      assert.deepEqual(sentToolMessages(mock), [{ role: "tool", tool_call_id: "call_run", content: PLACEHOLDER }]);
    }
    // A result with text goes as it came.
    mock.enqueue(CHAT_ROUTE, emptyToolContentRefusingUpstream());
    await client.chat.completions.create({
      model: "m",
      tools,
      messages: [
        { role: "user", content: "Run echo." },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: "call_run", content: " hi" },
      ],
    });
    assert.deepEqual(sentToolMessages(mock), [{ role: "tool", tool_call_id: "call_run", content: " hi" }]);
  });

  test("messages door: a tool_result with no content, and one with an empty string", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, emptyToolContentRefusingUpstream());
    const message = await client.messages.create({
      model: "m",
      max_tokens: 100,
      tools: [{ name: "run", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: "Run true twice." },
        {
          role: "assistant",
          content: [
            { type: "tool_use", id: "toolu_1", name: "run", input: { cmd: "true" } },
            { type: "tool_use", id: "toolu_2", name: "run", input: { cmd: "true" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1" },
            { type: "tool_result", tool_use_id: "toolu_2", content: "" },
          ],
        },
      ],
    });
    assert.equal(message.stop_reason, "end_turn");
    assert.deepEqual(sentToolMessages(mock), [
      { role: "tool", tool_call_id: "toolu_1", content: PLACEHOLDER },
      { role: "tool", tool_call_id: "toolu_2", content: PLACEHOLDER },
    ]);
  });

  test('responses door: a function_call_output with output ""', async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, emptyToolContentRefusingUpstream());
    const response = await client.responses.create({
      model: "m",
      tools: [{ type: "function", name: "run", parameters: { type: "object" }, strict: false }],
      input: [
        { role: "user", content: "Run true." },
        { type: "function_call", call_id: "call_run", name: "run", arguments: '{"cmd":"true"}' },
        { type: "function_call_output", call_id: "call_run", output: "" },
      ],
    });
    assert.equal(response.status, "completed");
    assert.deepEqual(sentToolMessages(mock), [{ role: "tool", tool_call_id: "call_run", content: PLACEHOLDER }]);
  });
});
