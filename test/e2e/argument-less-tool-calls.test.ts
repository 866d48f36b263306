// A streamed call of a function without parameters, followed by another call, from providers that send no argument
// text for it (`""` or nothing) and name the next call at the same index (a new id there) or at none (Gemini: each
// call whole in its own chunk). The `openai` SDK's stream helper takes a call as done when a delta of another index
// comes, and fired `tool_calls.function.arguments.done` with `""` for it (the gateway's `{}` came only with the
// finish); for a `strict` tool it ran `JSON.parse("")` and the stream failed. The gateway now sends the `{}` before
// the next call starts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { SseScript } from "../helpers/mock-upstream.ts";

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-argument-less",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: VENDOR_MODEL_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

/** `now` (no parameters, `""`) then `read_file`, both at index 0 with their own ids (vLLM-style numbering). */
function sameIndexStream(): SseScript[] {
  return [
    chunk({ role: "assistant", content: null }),
    chunk({ tool_calls: [{ index: 0, id: "call_now", type: "function", function: { name: "now", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, id: "call_read", type: "function", function: { name: "read_file" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"path":"a.txt"}' } }] }),
    chunk({}, "tool_calls"),
  ];
}

/** Gemini's shape: each call whole in its own chunk, no index; `now` with no arguments at all. */
function indexlessStream(): SseScript[] {
  return [
    chunk({ role: "assistant", content: null }),
    chunk({ tool_calls: [{ id: "call_now", type: "function", function: { name: "now" } }] }),
    chunk({
      tool_calls: [
        { id: "call_read", type: "function", function: { name: "read_file", arguments: '{"path":"a.txt"}' } },
      ],
    }),
    chunk({}, "tool_calls"),
  ];
}

const tools = [
  {
    type: "function" as const,
    function: {
      name: "now",
      strict: true,
      parameters: { type: "object", properties: {}, required: [], additionalProperties: false },
    },
  },
  {
    type: "function" as const,
    function: {
      name: "read_file",
      strict: true,
      parameters: {
        type: "object",
        properties: { path: { type: "string" } },
        required: ["path"],
        additionalProperties: false,
      },
    },
  },
];

describe("chat door: an argument-less streamed call followed by another", () => {
  for (const [shape, events] of [
    ["the next call at the same index", sameIndexStream],
    ["indexless calls (Gemini)", indexlessStream],
  ] as const) {
    test(`${shape}: the openai SDK's stream helper fires the first call's done event with {}`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: events() });
      const stream = client.chat.completions.stream({
        model: "m",
        messages: [{ role: "user", content: "What time is it? Then read a.txt." }],
        tools,
      });
      const done: unknown[] = [];
      stream.on("tool_calls.function.arguments.done", (event) =>
        done.push([event.index, event.name, event.arguments, event.parsed_arguments]),
      );
      const final = await stream.finalChatCompletion();
      assert.deepEqual(done, [
        [0, "now", "{}", {}],
        [1, "read_file", '{"path":"a.txt"}', { path: "a.txt" }],
      ]);
      assert.deepEqual(
        final.choices[0]?.message.tool_calls?.map((call) => [call.id, call.function.name, call.function.arguments]),
        [
          ["call_now", "now", "{}"],
          ["call_read", "read_file", '{"path":"a.txt"}'],
        ],
      );
    });
  }
});

describe("Messages and Responses doors: the same streams translate to whole calls", () => {
  for (const [shape, events] of [
    ["the next call at the same index", sameIndexStream],
    ["indexless calls (Gemini)", indexlessStream],
  ] as const) {
    test(`${shape}: the Anthropic SDK's tool_use inputs and the openai SDK's function_call arguments`, async (t) => {
      const { mock, gateway, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: events() });
      const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      const message = await anthropic.messages
        .stream({
          model: "m",
          max_tokens: 200,
          tools: tools.map((tool) => ({
            name: tool.function.name,
            input_schema: { ...tool.function.parameters, type: "object" as const },
          })),
          messages: [{ role: "user", content: "What time is it? Then read a.txt." }],
        })
        .finalMessage();
      assert.deepEqual(
        message.content.flatMap((block) => (block.type === "tool_use" ? [[block.name, block.input]] : [])),
        [
          ["now", {}],
          ["read_file", { path: "a.txt" }],
        ],
      );
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: events() });
      const response = await client.responses
        .stream({
          model: "m",
          input: "What time is it? Then read a.txt.",
          tools: tools.map((tool) => ({ type: "function" as const, ...tool.function })),
        })
        .finalResponse();
      assert.deepEqual(
        response.output.flatMap((item) => (item.type === "function_call" ? [[item.name, item.arguments]] : [])),
        [
          ["now", "{}"],
          ["read_file", '{"path":"a.txt"}'],
        ],
      );
    });
  }
});
