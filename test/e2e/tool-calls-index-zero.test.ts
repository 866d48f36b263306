// Streamed tool calls from providers that number every parallel call 0 and send no ids (some vLLM, TGI and
// llama.cpp builds), and from one that repeats the function's name in every delta of one call (MiniMax on NVIDIA
// NIM), through the chat door (the openai SDK's stream helper), the Messages door (the Anthropic SDK's stream) and
// the Responses door (the openai SDK's Responses stream). The first must reach the client as two calls, each with
// its own arguments (they used to merge into one, arguments run together); the second as one call, named in its
// first delta only (raw SSE: a client appending names, as hermes-agent does, got `read_fileread_file`).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { jsonSchema, streamText, tool } from "ai";
import { CHAT_ROUTE, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { SseScript } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, strictSseData } from "../helpers/sse-client.ts";

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

/** Two calls of one function, both at index 0, every delta naming it again (MiniMax's parallel calls). */
function twoCallsNamedInEveryDelta(): SseScript[] {
  return [
    chunk({ role: "assistant", content: null }),
    chunk({
      tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "read_file", arguments: "" } }],
    }),
    chunk({ tool_calls: [{ index: 0, function: { name: "read_file", arguments: '{"path":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { name: "read_file", arguments: '"a.txt"}' } }] }),
    chunk({
      tool_calls: [{ index: 0, id: "call_b", type: "function", function: { name: "read_file", arguments: "" } }],
    }),
    chunk({ tool_calls: [{ index: 0, id: "call_b", function: { name: "read_file", arguments: '{"path":' } }] }),
    chunk({ tool_calls: [{ index: 0, id: "call_b", function: { name: "read_file", arguments: '"b.txt"}' } }] }),
    chunk({}, "tool_calls"),
  ];
}

/**
 * Two calls whose every delta repeats the call's id and `type` (and, at times, its name alone), with `"tool_calls": []`
 * on the chunks that carry none: the head of a call repeated the way MiniMax repeats its name.
 */
function headInEveryDelta(): SseScript[] {
  const head = (id: string) => ({ index: 0, id, type: "function" });
  return [
    chunk({ role: "assistant", content: null, tool_calls: [] }),
    chunk({ tool_calls: [{ ...head("call_a"), function: { name: "read_file", arguments: "" } }] }),
    chunk({ tool_calls: [{ ...head("call_a"), function: { name: "read_file" } }] }),
    chunk({ tool_calls: [{ ...head("call_a"), function: { arguments: '{"path":' } }] }),
    chunk({ tool_calls: [{ ...head("call_a"), function: { arguments: '"a.txt"}' } }] }),
    chunk({ tool_calls: [{ ...head("call_b"), function: { name: "get_time", arguments: "" } }] }),
    chunk({ tool_calls: [{ ...head("call_b"), function: {} }] }),
    chunk({ tool_calls: [{ ...head("call_b"), function: { name: "get_time", arguments: '{"zone":"UTC"}' } }] }),
    chunk({ tool_calls: [] }, "tool_calls"),
  ];
}

/**
 * The `data:` payloads of a streamed answer, parsed (`[DONE]` left out). The chat door's framing is checked
 * strictly; the Messages and Responses doors name each event in an `event:` line before its data.
 */
async function streamedPayloads(url: string, body: unknown): Promise<Record<string, unknown>[]> {
  const answer = await postJson(url, body);
  assert.equal(answer.statusCode, 200);
  const { text } = await readTimed(answer.body);
  const data = url.endsWith("/chat/completions")
    ? strictSseData(text)
    : text.split("\n").flatMap((line) => (line.startsWith("data: ") ? [line.slice("data: ".length)] : []));
  return data
    .filter((payload) => payload !== "[DONE]")
    .map((payload) => JSON.parse(payload) as Record<string, unknown>);
}

interface RawCallDelta {
  index: number;
  id?: string;
  function?: { name?: string; arguments?: string };
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

  test("chat door, raw SSE: a name the upstream repeats in every delta reaches the client in each call's first delta only", async (t) => {
    // The openai SDK replaces a call's name, so it cannot tell; a client appending names (hermes-agent) got
    // `read_fileread_file`. Reassembled here the appending way, over the bytes the gateway wrote.
    const { mock, gateway } = await oneProviderScene(t);
    const calls = async (events: SseScript[]) => {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const payloads = await streamedPayloads(`${gateway.url}/v1/chat/completions`, {
        model: "m",
        stream: true,
        messages: [{ role: "user", content: "Read a.txt and b.txt" }],
        tools: chatTools,
      });
      const appended: { id: string; name: string; arguments: string; namedDeltas: number }[] = [];
      for (const payload of payloads) {
        const choices = payload.choices as { delta?: { tool_calls?: RawCallDelta[] } }[] | undefined;
        for (const delta of choices?.[0]?.delta?.tool_calls ?? []) {
          const call = appended[delta.index] ?? { id: "", name: "", arguments: "", namedDeltas: 0 };
          appended[delta.index] = call;
          // Appended as the name is: an id repeated in a later delta (the upstream's) came out doubled.
          if (delta.id !== undefined) call.id += delta.id;
          if (delta.function?.name !== undefined) {
            call.name += delta.function.name;
            call.namedDeltas++;
          }
          call.arguments += delta.function?.arguments ?? "";
        }
      }
      return appended;
    };
    assert.deepEqual(await calls(nameInEveryDelta()), [
      { id: "call_r", name: "read_file", arguments: '{"path":"notes.txt"}', namedDeltas: 1 },
    ]);
    assert.deepEqual(await calls(twoCallsNamedInEveryDelta()), [
      { id: "call_a", name: "read_file", arguments: '{"path":"a.txt"}', namedDeltas: 1 },
      { id: "call_b", name: "read_file", arguments: '{"path":"b.txt"}', namedDeltas: 1 },
    ]);
  });

  test("messages and responses doors, raw SSE: the repeated name opens the one block or item, no arguments delta has it", async (t) => {
    // Their translators build their own events: the name goes in the block's or item's opening event (and the
    // Responses item's closing ones, which carry the whole item), never in an arguments delta.
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: nameInEveryDelta() });
    const messageEvents = await streamedPayloads(`${gateway.url}/v1/messages`, {
      model: "m",
      max_tokens: 100,
      stream: true,
      tools: chatTools.map((tool) => ({ name: tool.function.name, input_schema: { type: "object" } })),
      messages: [{ role: "user", content: "Read notes.txt" }],
    });
    const named = messageEvents.filter((event) => JSON.stringify(event).includes('"name":"read_file"'));
    assert.deepEqual(
      named.map((event) => event.type),
      ["content_block_start"],
    );
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: nameInEveryDelta() });
    const responseEvents = await streamedPayloads(`${gateway.url}/v1/responses`, {
      model: "m",
      stream: true,
      input: "Read notes.txt",
      tools: chatTools.map((tool) => ({ type: "function", ...tool.function, strict: false })),
    });
    const deltas = responseEvents.filter((event) => event.type === "response.function_call_arguments.delta");
    assert.ok(deltas.length > 0);
    assert.ok(deltas.every((event) => !("name" in event)));
    assert.equal(responseEvents.filter((event) => event.type === "response.output_item.added").length, 1);
  });
});

describe("a call's id and type repeated in later deltas, and deltas left empty", () => {
  test("chat door, raw SSE: each call's id once (in its first delta), and no empty function, call delta or tool_calls", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: headInEveryDelta() });
    const payloads = await streamedPayloads(`${gateway.url}/v1/chat/completions`, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "Read a.txt; what time is it?" }],
      tools: chatTools,
    });
    const appended: { id: string; type: string; name: string; arguments: string }[] = [];
    for (const payload of payloads) {
      const choices = payload.choices as { delta?: { tool_calls?: unknown } }[] | undefined;
      const calls = choices?.[0]?.delta?.tool_calls;
      if (calls === undefined) continue;
      assert.ok(Array.isArray(calls) && calls.length > 0, `tool_calls ${JSON.stringify(calls)}`);
      for (const delta of calls as (RawCallDelta & { type?: string })[]) {
        assert.ok(Object.keys(delta).length > 1, `a delta of its index alone: ${JSON.stringify(delta)}`);
        if (delta.function !== undefined) {
          assert.ok(Object.keys(delta.function).length > 0, `an empty function: ${JSON.stringify(delta)}`);
        }
        const call = appended[delta.index] ?? { id: "", type: "", name: "", arguments: "" };
        appended[delta.index] = call;
        call.id += delta.id ?? "";
        call.type += delta.type ?? "";
        call.name += delta.function?.name ?? "";
        call.arguments += delta.function?.arguments ?? "";
      }
    }
    assert.deepEqual(appended, [
      { id: "call_a", type: "function", name: "read_file", arguments: '{"path":"a.txt"}' },
      { id: "call_b", type: "function", name: "get_time", arguments: '{"zone":"UTC"}' },
    ]);
  });

  test("chat door: the openai SDK's stream helper gets both calls, their done events, and no tool_calls on a text answer", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: headInEveryDelta() });
    const stream = client.chat.completions.stream({
      model: "m",
      messages: [{ role: "user", content: "Read a.txt; what time is it?" }],
      tools: chatTools,
    });
    const done: unknown[] = [];
    stream.on("tool_calls.function.arguments.done", (event) => done.push([event.index, event.name, event.arguments]));
    const final = await stream.finalChatCompletion();
    assert.deepEqual(final.choices[0]?.message.tool_calls, [
      { id: "call_a", type: "function", function: { name: "read_file", arguments: '{"path":"a.txt"}' } },
      { id: "call_b", type: "function", function: { name: "get_time", arguments: '{"zone":"UTC"}' } },
    ]);
    assert.deepEqual(done, [
      [0, "read_file", '{"path":"a.txt"}'],
      [1, "get_time", '{"zone":"UTC"}'],
    ]);
    // `"tool_calls": []` on every chunk of a text answer: the helper's message got `tool_calls: []`, which OpenAI
    // refuses in an assistant message sent back ("empty array").
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "", tool_calls: [] }),
        chunk({ content: "Hello", tool_calls: [] }),
        chunk({ tool_calls: [] }, "stop"),
      ],
    });
    const text = await client.chat.completions
      .stream({ model: "m", messages: [{ role: "user", content: "Hi" }] })
      .finalChatCompletion();
    assert.equal(text.choices[0]?.message.content, "Hello");
    assert.equal(text.choices[0]?.message.tool_calls, undefined);
  });

  test("chat door: the AI SDK's streamText gets both calls with their ids and inputs, no stream error", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: headInEveryDelta() });
    const schema = jsonSchema<Record<string, unknown>>({ type: "object" });
    const result = streamText({
      model: openai.chat("m"),
      prompt: "Read a.txt; what time is it?",
      tools: { read_file: tool({ inputSchema: schema }), get_time: tool({ inputSchema: schema }) },
    });
    const errors: unknown[] = [];
    for await (const part of result.fullStream) if (part.type === "error") errors.push(part.error);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      (await result.toolCalls).map((call) => [call.toolCallId, call.toolName, call.input]),
      [
        ["call_a", "read_file", { path: "a.txt" }],
        ["call_b", "get_time", { zone: "UTC" }],
      ],
    );
  });
});
