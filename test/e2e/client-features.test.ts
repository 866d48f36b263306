// The real client libraries' less common features through the gateway, the mock upstream speaking only Chat
// Completions: the AI SDK's structured outputs (generateObject on chat, streamObject on Responses), the Agents
// SDK's handoffs, structured output and tool errors over Responses streaming, LangChain's tools and structured
// output over Responses, the Anthropic SDK's image and cache_control blocks and its model list; chat streams and
// answers whose tool calls or role break the SDKs' accumulators; token log probabilities through Responses.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { ChatOpenAI } from "@langchain/openai";
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { generateObject, generateText, streamObject, streamText, tool } from "ai";
import { z } from "zod";
import { readChatChunks } from "../../src/protocols/__fixtures__/fixtures.ts";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import {
  chatCompletion,
  chatLogprobs,
  chatStream,
  type MockUpstream,
  type SseScript,
} from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

interface SentChat {
  messages: { role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }[];
  response_format?: { type: string; json_schema?: { name?: string; strict?: boolean; schema?: unknown } };
  tools?: { type: string; function: { name: string } }[];
  tool_choice?: unknown;
  stream?: boolean;
}

function sentChat(mock: MockUpstream, index: number): SentChat {
  return (chatRequests(mock)[index]?.body ?? { messages: [] }) as SentChat;
}

const Weather = z.object({ city: z.string(), celsius: z.number() });

describe("AI SDK structured outputs", () => {
  test("generateObject on the chat provider: json_schema reaches the upstream, the object comes back", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion('{"city":"Oslo","celsius":3}', UPSTREAM_ID) });
    const result = await generateObject({ model: openai.chat("m"), schema: Weather, prompt: "Weather in Oslo" });
    assert.deepEqual(result.object, { city: "Oslo", celsius: 3 });
    assert.equal(sentChat(mock, 0).response_format?.type, "json_schema");
  });

  test("streamObject on the Responses provider: text.format becomes response_format, partial objects stream", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(['{"city":', '"Oslo",', '"celsius":', "3}"], UPSTREAM_ID, { usage: true }),
    });
    const result = streamObject({ model: openai.responses("m"), schema: Weather, prompt: "Weather in Oslo" });
    const partials: unknown[] = [];
    for await (const partial of result.partialObjectStream) partials.push(partial);
    assert.deepEqual(await result.object, { city: "Oslo", celsius: 3 });
    assert.ok(partials.length >= 2, JSON.stringify(partials));
    const format = sentChat(mock, 0).response_format;
    assert.equal(format?.type, "json_schema");
    assert.ok(format?.json_schema?.schema !== undefined, JSON.stringify(format));
    assert.equal((await result.usage).outputTokens, 4);
  });
});

describe("OpenAI Agents SDK, less common paths (Responses streaming)", () => {
  function runner(gateway: { baseUrl: string }): Runner {
    setTracingDisabled(true);
    return new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
  }

  test("a handoff: the triage agent's transfer call hands the turn to the specialist, who answers", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const specialist = new Agent({ name: "Weather specialist", instructions: "You know the weather.", model: "m" });
    const triage = Agent.create({
      name: "Triage",
      instructions: "Hand weather questions off.",
      model: "m",
      handoffs: [specialist],
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: toolCallStream(UPSTREAM_ID, [{ id: "call_h1", name: "transfer_to_Weather_specialist", arguments: "{}" }]),
    });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Rainy."], UPSTREAM_ID, { usage: true }) });
    const result = await runner(gateway).run(triage, "Weather in Bergen?", { stream: true });
    for await (const _event of result) {
      // Drained: the run goes on as its events are read.
    }
    await result.completed;
    assert.equal(result.finalOutput, "Rainy.");
    assert.equal(result.lastAgent?.name, "Weather specialist");
    const first = sentChat(mock, 0);
    assert.ok(first.tools?.some((tool) => tool.function.name === "transfer_to_Weather_specialist"));
    const second = sentChat(mock, 1);
    assert.equal(second.messages[0]?.content, "You know the weather.");
    assert.deepEqual(
      second.messages.map((message) => message.role),
      ["system", "user", "assistant", "tool"],
      JSON.stringify(second.messages),
    );
  });

  test("outputType: the agent's zod schema goes upstream as json_schema and the final output is the parsed object", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const agent = new Agent({ name: "Reporter", instructions: "Report as JSON.", model: "m", outputType: Weather });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(['{"city":"Bergen",', '"celsius":9}'], UPSTREAM_ID, { usage: true }),
    });
    const result = await runner(gateway).run(agent, "Weather in Bergen?", { stream: true });
    for await (const _event of result) {
      // Drained.
    }
    await result.completed;
    assert.deepEqual(result.finalOutput, { city: "Bergen", celsius: 9 });
    const format = sentChat(mock, 0).response_format;
    assert.equal(format?.type, "json_schema");
    assert.equal(format?.json_schema?.strict, true);
  });

  test("a tool that throws: the error text goes back as the tool's output and the model answers", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const agent = new Agent({
      name: "Weather agent",
      instructions: "Use the tool.",
      model: "m",
      tools: [
        agentTool({
          name: "get_weather",
          description: "Current weather for a city",
          parameters: z.object({ city: z.string() }),
          execute: async () => {
            throw new Error("weather service down");
          },
        }),
      ],
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: toolCallStream(UPSTREAM_ID, [{ id: "call_e1", name: "get_weather", arguments: '{"city":"Bergen"}' }]),
    });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Sorry."], UPSTREAM_ID, { usage: true }) });
    const result = await runner(gateway).run(agent, "Weather in Bergen?", { stream: true });
    for await (const _event of result) {
      // Drained.
    }
    await result.completed;
    assert.equal(result.finalOutput, "Sorry.");
    const toolMessage = sentChat(mock, 1).messages.at(-1);
    assert.equal(toolMessage?.role, "tool");
    assert.equal(toolMessage?.tool_call_id, "call_e1");
    // The SDK hides the thrown message by default; its stand-in text is the tool's output.
    assert.match(String(toolMessage?.content), /error occurred while running the tool/);
  });
});

describe("LangChain ChatOpenAI over Responses: tools and structured output", () => {
  function llm(gateway: { baseUrl: string }): ChatOpenAI {
    return new ChatOpenAI({
      model: "m",
      apiKey: "x",
      useResponsesApi: true,
      maxRetries: 0,
      configuration: { baseURL: gateway.baseUrl },
    });
  }

  test("bindTools, streamed: the tool call chunks add up to the call", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: toolCallStream(UPSTREAM_ID, [{ id: "call_l1", name: "get_weather", arguments: '{"city":"Lima"}' }]),
    });
    const bound = llm(gateway).bindTools([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Current weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ]);
    let whole: Awaited<ReturnType<typeof bound.invoke>> | undefined;
    for await (const chunk of await bound.stream("Weather in Lima?")) {
      whole = whole === undefined ? chunk : whole.concat(chunk);
    }
    assert.deepEqual(
      whole?.tool_calls?.map((call) => [call.name, call.args, call.id]),
      [["get_weather", { city: "Lima" }, "call_l1"]],
    );
    assert.equal(sentChat(mock, 0).tools?.[0]?.function.name, "get_weather");
  });

  test("withStructuredOutput, json_schema and function calling", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion('{"city":"Lima","celsius":19}', UPSTREAM_ID) });
    const viaSchema = await llm(gateway).withStructuredOutput(Weather, { method: "jsonSchema" }).invoke("Lima?");
    assert.deepEqual(viaSchema, { city: "Lima", celsius: 19 });
    assert.equal(sentChat(mock, 0).response_format?.type, "json_schema");

    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: toolCallCompletion(UPSTREAM_ID, [
        { id: "call_l2", name: "weather", arguments: '{"city":"Lima","celsius":20}' },
      ]),
    });
    const viaTool = await llm(gateway)
      .withStructuredOutput(Weather, { method: "functionCalling", name: "weather" })
      .invoke("Lima?");
    assert.deepEqual(viaTool, { city: "Lima", celsius: 20 });
    assert.equal(sentChat(mock, 1).tools?.[0]?.function.name, "weather");
  });
});

describe("Anthropic SDK: content blocks", () => {
  test("system blocks with cache_control and a base64 image block reach the upstream as chat content", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("A red dot.", UPSTREAM_ID) });
    const pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const message = await client.messages.create({
      model: "m",
      max_tokens: 50,
      system: [{ type: "text", text: "You describe images.", cache_control: { type: "ephemeral" } }],
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: pixel } },
            { type: "text", text: "What is this?" },
          ],
        },
      ],
    });
    assert.equal(message.content[0]?.type === "text" ? message.content[0].text : "", "A red dot.");
    const sent = sentChat(mock, 0).messages;
    assert.equal(sent[0]?.role, "system");
    assert.match(JSON.stringify(sent[0]?.content), /You describe images\./);
    assert.match(JSON.stringify(sent[1]?.content), /data:image\/png;base64,iVBORw0KGgo/);
  });
});

describe("Anthropic SDK: the model list", () => {
  test("models.list() and retrieve() get Anthropic's shape and pages; an unknown model is its typed 404; OpenAI's list is unchanged", async (t) => {
    const { gateway, client: openai } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((model) => [model.type, model.id, model.display_name]),
      [
        ["model", "m", "m"],
        ["model", "priority-auto", "priority-auto"],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(page.data[0]?.created_at ?? "")), JSON.stringify(page.data[0]));
    assert.equal(page.has_more, false);
    assert.equal(page.last_id, "priority-auto");
    // Auto-pagination follows `last_id` while `has_more`: one model per page here.
    const ids: string[] = [];
    for await (const model of client.models.list({ limit: 1 })) ids.push(model.id);
    assert.deepEqual(ids, ["m", "priority-auto"]);

    const model = await client.models.retrieve("m").withResponse();
    assert.equal(model.data.type, "model");
    assert.equal(model.data.display_name, "m");
    assert.equal(model.response.headers.get("request-id"), model.response.headers.get("x-request-id"));
    await assert.rejects(client.models.retrieve("no-such-model"), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError, String(error));
      assert.equal((error.error as { error?: { type?: string } }).error?.type, "not_found_error");
      return true;
    });
    await assert.rejects(client.models.list({ limit: 0 }), Anthropic.BadRequestError);

    const listed = await openai.models.list();
    assert.deepEqual(
      listed.data.map((entry) => [entry.object, entry.id]),
      [
        ["model", "m"],
        ["model", "priority-auto"],
      ],
    );
  });
});

describe("chat streams whose tool calls lack OpenAI's per-call index or `type`", () => {
  /** Gemini's OpenAI-compatible stream: each call whole in its own chunk, no `tool_calls[].index`. */
  const indexless = () => readChatChunks("indexless-tool-calls").map((data) => ({ data }));
  /** A provider numbering every call 0, each call's id in its first delta (without `type`) and its arguments after. */
  function allIndexZero(): SseScript[] {
    const chunk = (delta: unknown, finishReason: string | null = null) => ({
      data: { model: UPSTREAM_ID, choices: [{ index: 0, delta, finish_reason: finishReason }] },
    });
    return [
      chunk({ role: "assistant", tool_calls: [{ index: 0, id: "call_1", function: { name: "get_weather" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] }),
      chunk({ tool_calls: [{ index: 0, id: "call_2", function: { name: "get_weather" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Rome"}' } }] }),
      chunk({}, "tool_calls"),
    ];
  }
  const expectedCalls = [
    ["call_1", "get_weather", '{"city":"Paris"}'],
    ["call_2", "get_weather", '{"city":"Rome"}'],
  ];

  test("the openai SDK's chat.completions.stream() helper gets every call, each with its own arguments", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    for (const events of [indexless(), allIndexZero()]) {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const stream = client.chat.completions.stream({ model: "m", messages: [{ role: "user", content: "Weather?" }] });
      const final = await stream.finalChatCompletion();
      assert.deepEqual(
        final.choices[0]?.message.tool_calls?.map((call) =>
          call.type === "function" ? [call.id, call.function.name, call.function.arguments] : [],
        ),
        expectedCalls,
      );
    }
  });

  test("the AI SDK's chat provider reads the stream (its schema requires the index) and gets both calls", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: indexless() });
    const result = streamText({
      model: openai.chat("m"),
      prompt: "Weather?",
      tools: {
        get_weather: tool({
          description: "Current weather for a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      },
    });
    const errors: unknown[] = [];
    for await (const part of result.fullStream) if (part.type === "error") errors.push(part.error);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      (await result.toolCalls).map((call) => [call.toolCallId, call.input]),
      [
        ["call_1", { city: "Paris" }],
        ["call_2", { city: "Rome" }],
      ],
    );
  });
});

describe("chat answers whose tool calls lack `type` or carry their arguments as an object", () => {
  /** A JSON answer as some providers write it: no `type` on the call, the arguments the object itself. */
  function quirkyAnswer(): unknown {
    const body = toolCallCompletion(UPSTREAM_ID, [{ id: "call_q1", name: "get_weather", arguments: "" }]) as {
      choices: { message: { tool_calls: Record<string, unknown>[] } }[];
    };
    body.choices[0]?.message.tool_calls.splice(0, 1, {
      id: "call_q1",
      function: { name: "get_weather", arguments: { city: "Quito" } },
    });
    return body;
  }

  test("the AI SDK's chat provider (its schema requires both) and the openai SDK get OpenAI's form", async (t) => {
    const { mock, gateway, client } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: quirkyAnswer() });
    const result = await generateText({
      model: openai.chat("m"),
      prompt: "Weather in Quito?",
      tools: {
        get_weather: tool({
          description: "Current weather for a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      },
    });
    assert.deepEqual(
      result.toolCalls.map((call) => [call.toolCallId, call.input]),
      [["call_q1", { city: "Quito" }]],
    );

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: quirkyAnswer() });
    const completion = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "?" }] });
    assert.deepEqual(completion.choices[0]?.message.tool_calls, [
      { id: "call_q1", type: "function", function: { name: "get_weather", arguments: '{"city":"Quito"}' } },
    ]);
  });
});

describe("a chat stream that never names its role", () => {
  test("the openai SDK's finalChatCompletion() gets the answer (it threw 'missing role for choice 0')", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    const events = chatStream(["Hi", " there"], UPSTREAM_ID, { usage: true });
    const roleChunk = events[0] as { data: { choices: { delta: Record<string, unknown> }[] } };
    // The role chunk without its role: the first delta is an empty content one, as some servers send.
    delete roleChunk.data.choices[0]?.delta.role;
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
    const final = await client.chat.completions
      .stream({ model: "m", messages: [{ role: "user", content: "Say hi" }] })
      .finalChatCompletion();
    assert.equal(final.choices[0]?.message.role, "assistant");
    assert.equal(final.choices[0]?.message.content, "Hi there");
  });
});

describe("a chat stream that ends with [DONE] but never gives a finish_reason", () => {
  /** Sets every choice's finish_reason to null: some OpenAI-compatible servers never send one. */
  function withoutFinish(events: SseScript[]): SseScript[] {
    for (const event of events) {
      if (!("data" in event)) continue;
      const choices = (event.data as { choices?: { finish_reason?: unknown }[] }).choices ?? [];
      for (const choice of choices) choice.finish_reason = null;
    }
    return events;
  }
  const textStream = () => withoutFinish(chatStream(["Hi", " there"], UPSTREAM_ID, { usage: true }));
  const toolStream = () =>
    withoutFinish(toolCallStream(UPSTREAM_ID, [{ id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' }]));
  const weatherTool = {
    get_weather: tool({
      description: "Current weather for a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => `sunny in ${city}`,
    }),
  };

  test("the openai SDK's finalChatCompletion() gets stop, or tool_calls after a tool call (it threw)", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: textStream() });
    const text = await client.chat.completions
      .stream({ model: "m", messages: [{ role: "user", content: "Say hi" }], stream_options: { include_usage: true } })
      .finalChatCompletion();
    assert.equal(text.choices[0]?.finish_reason, "stop");
    assert.equal(text.choices[0]?.message.content, "Hi there");
    assert.equal(text.usage?.completion_tokens, 2);

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolStream() });
    const calls = await client.chat.completions
      .stream({ model: "m", messages: [{ role: "user", content: "Weather?" }] })
      .finalChatCompletion();
    assert.equal(calls.choices[0]?.finish_reason, "tool_calls");
    assert.equal(calls.choices[0]?.message.tool_calls?.length, 1);
  });

  test("the AI SDK's chat provider reports stop and tool-calls (it reported other)", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: textStream() });
    const text = streamText({ model: openai.chat("m"), prompt: "Say hi" });
    assert.equal(await text.text, "Hi there");
    assert.equal(await text.finishReason, "stop");

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolStream() });
    const calls = streamText({ model: openai.chat("m"), prompt: "Weather?", tools: weatherTool });
    assert.deepEqual(
      (await calls.toolCalls).map((call) => [call.toolCallId, call.input]),
      [["call_w", { city: "Oslo" }]],
    );
    assert.equal(await calls.finishReason, "tool-calls");
  });

  test("a stream that closes without [DONE] and without a finish_reason still ends in the stream error", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    // A tool call is not continued: the cut stream is the client's to see.
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolStream().slice(0, 3), end: "close-without-done" });
    const response = await fetch(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer x" },
      body: JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "Say hi" }] }),
    });
    const body = await response.text();
    assert.doesNotMatch(body, /"finish_reason":"(stop|tool_calls)"/);
    assert.match(body, /"error":\{[^}]*"code":"stream_interrupted"/);
    assert.doesNotMatch(body, /\[DONE\]/);
  });
});

describe("token log probabilities through the Responses door", () => {
  /** A chat answer "Hi there" whose tokens carry log probabilities, JSON and streamed one token per chunk. */
  function answerWithLogprobs(): unknown {
    const body = chatCompletion("Hi there", UPSTREAM_ID) as unknown as { choices: { logprobs: unknown }[] };
    const choice = body.choices[0];
    if (choice !== undefined) choice.logprobs = chatLogprobs(["Hi", " there"]);
    return body;
  }

  function streamWithLogprobs(): SseScript[] {
    const events = chatStream(["Hi", " there"], UPSTREAM_ID, { usage: true });
    // The role chunk, then one chunk per word: each word's chunk carries its token's log probability.
    for (const [position, word] of ["Hi", " there"].entries()) {
      const event = events[position + 1] as { data: { choices: { logprobs: unknown }[] } };
      const choice = event.data.choices[0];
      if (choice !== undefined) choice.logprobs = chatLogprobs([word], -0.1 - position * 0.1);
    }
    return events;
  }

  const expected = [
    { token: "Hi", logprob: -0.1, bytes: [72, 105] },
    { token: " there", logprob: -0.2, bytes: [32, 116, 104, 101, 114, 101] },
  ].map((token) => ({ ...token, top_logprobs: [token, { token: " x", logprob: -5, bytes: [32, 120] }] }));

  test("openai SDK: include message.output_text.logprobs asks the provider for them; JSON and stream carry them", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: answerWithLogprobs() });
    const response = await client.responses.create({
      model: "m",
      input: "Say hi",
      include: ["message.output_text.logprobs"],
      top_logprobs: 1,
    });
    const part = response.output[0]?.type === "message" ? response.output[0].content[0] : undefined;
    assert.equal(part?.type, "output_text");
    assert.deepEqual(part?.type === "output_text" ? part.logprobs : undefined, expected);
    const sent = chatRequests(mock)[0]?.body as { logprobs?: unknown; top_logprobs?: unknown };
    assert.equal(sent.logprobs, true);
    assert.equal(sent.top_logprobs, 1);

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamWithLogprobs() });
    const stream = client.responses.stream({
      model: "m",
      input: "Say hi",
      include: ["message.output_text.logprobs"],
      top_logprobs: 1,
    });
    const deltas: unknown[] = [];
    stream.on("response.output_text.delta", (event) => deltas.push(event.logprobs));
    const final = await stream.finalResponse();
    assert.deepEqual(deltas, [[expected[0]], [expected[1]]]);
    const streamedPart = final.output[0]?.type === "message" ? final.output[0].content[0] : undefined;
    assert.deepEqual(streamedPart?.type === "output_text" ? streamedPart.logprobs : undefined, expected);

    // Not asked for: the provider is not asked either (some refuse `logprobs`).
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi there", UPSTREAM_ID) });
    await client.responses.create({ model: "m", input: "Say hi" });
    const unasked = chatRequests(mock)[2];
    assert.ok(unasked !== undefined, "the third request reached the upstream");
    assert.equal((unasked.body as { logprobs?: unknown }).logprobs, undefined);
  });

  test("AI SDK Responses provider: providerOptions.openai.logprobs come back in providerMetadata", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamWithLogprobs() });
    const result = streamText({
      model: openai.responses("m"),
      prompt: "Say hi",
      providerOptions: { openai: { logprobs: 1 } },
    });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, "Hi there");
    const logprobs = (await result.providerMetadata)?.openai?.logprobs as { token: string; logprob: number }[][];
    assert.deepEqual(
      logprobs.flat().map((entry) => [entry.token, entry.logprob]),
      [
        ["Hi", -0.1],
        [" there", -0.2],
      ],
    );
  });
});
