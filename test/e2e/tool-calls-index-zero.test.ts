// Streamed tool calls from providers that number every parallel call 0 and send no ids (some vLLM, TGI and
// llama.cpp builds), and from one that repeats the function's name in every delta of one call (MiniMax on NVIDIA
// NIM), through the chat door (the openai SDK's stream helper), the Messages door (the Anthropic SDK's stream) and
// the Responses door (the openai SDK's Responses stream). The first must reach the client as two calls, each with
// its own arguments (they used to merge into one, arguments run together); the second as one call.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { SseScript } from "../helpers/mock-upstream.ts";

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-index-zero",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: VENDOR_MODEL_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

/** Two calls, both at index 0, no ids: the name first, the arguments in pieces after (vLLM's shape). */
function twoCallsAtIndexZero(): SseScript[] {
  return [
    chunk({ role: "assistant", content: null }),
    chunk({ tool_calls: [{ index: 0, type: "function", function: { name: "get_weather", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city": ' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    chunk({ tool_calls: [{ index: 0, type: "function", function: { name: "get_time", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"zone": "{Europe/Rome}' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"}' } }] }),
    chunk({}, "tool_calls"),
  ];
}

/** One call whose every delta names the function again (MiniMax on NVIDIA NIM), its id in the first only. */
function nameInEveryDelta(): SseScript[] {
  return [
    chunk({ role: "assistant", content: null }),
    chunk({
      tool_calls: [{ index: 0, id: "call_r", type: "function", function: { name: "read_file", arguments: "" } }],
    }),
    chunk({ tool_calls: [{ index: 0, function: { name: "read_file", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { name: "read_file", arguments: '{"path":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { name: "read_file", arguments: '"notes.txt"}' } }] }),
    chunk({}, "tool_calls"),
  ];
}

const TWO_CALLS = [
  ["get_weather", '{"city": "Paris"}'],
  ["get_time", '{"zone": "{Europe/Rome}"}'],
];

const chatTools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object" } } },
  { type: "function" as const, function: { name: "get_time", parameters: { type: "object" } } },
  { type: "function" as const, function: { name: "read_file", parameters: { type: "object" } } },
];

describe("streamed tool calls all at index 0 without ids, and a name repeated in every delta", () => {
  test("chat door: the openai SDK's chat.completions.stream() gets two calls, or one for the repeated name", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    const finalCalls = async (events: SseScript[]) => {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const stream = client.chat.completions.stream({
        model: "m",
        messages: [{ role: "user", content: "Weather in Paris, time in Rome?" }],
        tools: chatTools,
      });
      const final = await stream.finalChatCompletion();
      return (final.choices[0]?.message.tool_calls ?? []).map((call) =>
        call.type === "function" ? [call.function.name, call.function.arguments] : [call.type],
      );
    };
    assert.deepEqual(await finalCalls(twoCallsAtIndexZero()), TWO_CALLS);
    assert.deepEqual(await finalCalls(nameInEveryDelta()), [["read_file", '{"path":"notes.txt"}']]);
  });

  test("messages door: the Anthropic SDK's stream gets two tool_use blocks, or one for the repeated name", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const finalBlocks = async (events: SseScript[]) => {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const message = await client.messages
        .stream({
          model: "m",
          max_tokens: 100,
          tools: chatTools.map((tool) => ({ name: tool.function.name, input_schema: { type: "object" as const } })),
          messages: [{ role: "user", content: "Weather in Paris, time in Rome?" }],
        })
        .finalMessage();
      assert.equal(message.stop_reason, "tool_use");
      return message.content.map((block) => (block.type === "tool_use" ? [block.name, block.input] : [block.type]));
    };
    assert.deepEqual(await finalBlocks(twoCallsAtIndexZero()), [
      ["get_weather", { city: "Paris" }],
      ["get_time", { zone: "{Europe/Rome}" }],
    ]);
    assert.deepEqual(await finalBlocks(nameInEveryDelta()), [["read_file", { path: "notes.txt" }]]);
  });

  test("responses door: the openai SDK's Responses stream gets two function_call items (own ids), or one", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    const finalCalls = async (events: SseScript[]) => {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const final = await client.responses
        .stream({
          model: "m",
          input: "Weather in Paris, time in Rome?",
          tools: chatTools.map((tool) => ({ type: "function" as const, ...tool.function, strict: false })),
        })
        .finalResponse();
      return final.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
    };
    const calls = await finalCalls(twoCallsAtIndexZero());
    assert.deepEqual(
      calls.map((call) => [call.name, call.arguments]),
      TWO_CALLS,
    );
    assert.notEqual(calls[0]?.call_id, calls[1]?.call_id);
    assert.deepEqual(
      (await finalCalls(nameInEveryDelta())).map((call) => [call.call_id, call.name, call.arguments]),
      [["call_r", "read_file", '{"path":"notes.txt"}']],
    );
  });
});
