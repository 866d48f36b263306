// The frameworks that speak the Responses API by default, pointed at the gateway by base URL only, with the
// mock upstream speaking only Chat Completions: the OpenAI Agents SDK's run(), the AI SDK's default `openai(id)`
// provider (including multi-turn with item_reference) and LangChain's ChatOpenAI with useResponsesApi.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import {
  Agent,
  tool as agentTool,
  OpenAIProvider,
  Runner,
  run,
  setDefaultModelProvider,
  setTracingDisabled,
} from "@openai/agents";
import { generateText, type ModelMessage, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

const scene = oneProviderScene;

function sentMessages(mock: MockUpstream, index: number): { role: string; content?: unknown; tool_calls?: unknown }[] {
  return ((chatRequests(mock)[index]?.body ?? {}) as { messages: { role: string }[] }).messages;
}

describe("OpenAI Agents SDK (Responses by default)", () => {
  test("run() with one function tool: the tool runs and the final output comes back", async (t) => {
    const { mock, gateway } = await scene(t);
    setTracingDisabled(true);
    // Only the base URL changes; the provider speaks the Responses API by default.
    setDefaultModelProvider(new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }));
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: toolCallCompletion(UPSTREAM_ID, [{ id: "call_a1", name: "get_weather", arguments: '{"city":"Paris"}' }]),
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("It is sunny in Paris.", UPSTREAM_ID) });
    const calls: string[] = [];
    const agent = new Agent({
      name: "Weather agent",
      instructions: "Answer weather questions with the tool.",
      model: "m",
      tools: [
        agentTool({
          name: "get_weather",
          description: "Current weather for a city",
          parameters: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            calls.push(city);
            return `sunny in ${city}`;
          },
        }),
      ],
    });
    const result = await run(agent, "Weather in Paris?");
    assert.equal(result.finalOutput, "It is sunny in Paris.");
    assert.deepEqual(calls, ["Paris"]);
    const second = sentMessages(mock, 1);
    assert.equal(second[0]?.role, "system");
    assert.deepEqual(second.at(-1), { role: "tool", tool_call_id: "call_a1", content: "sunny in Paris" });
  });
});

describe("OpenAI Agents SDK, streamed", () => {
  test("a turn that streams its call before its text: the next turn sends one assistant turn, then the tool result", async (t) => {
    const { mock, gateway } = await scene(t);
    setTracingDisabled(true);
    const chunk = (delta: unknown, finishReason: string | null = null) => ({
      data: { model: UPSTREAM_ID, choices: [{ index: 0, delta, finish_reason: finishReason }] },
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({
          role: "assistant",
          tool_calls: [
            {
              index: 0,
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        }),
        chunk({ content: "Checking the weather." }),
        chunk({}, "tool_calls"),
      ],
    });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Sunny."], UPSTREAM_ID, { usage: true }) });
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
    const agent = new Agent({
      name: "Weather agent",
      instructions: "Use the tool.",
      model: "m",
      tools: [
        agentTool({
          name: "get_weather",
          description: "Current weather for a city",
          parameters: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      ],
    });
    const result = await runner.run(agent, "Weather in Paris?", { stream: true });
    for await (const _event of result) {
      // Drained: the run goes on as its events are read.
    }
    await result.completed;
    assert.equal(result.finalOutput, "Sunny.");
    assert.deepEqual(
      sentMessages(mock, 1).map((message) => [message.role, message.content ?? null, message.tool_calls !== undefined]),
      [
        ["system", "Use the tool.", false],
        ["user", "Weather in Paris?", false],
        ["assistant", "Checking the weather.", true],
        ["tool", "sunny in Paris", false],
      ],
    );
  });
});

describe("AI SDK default openai(id) provider (Responses)", () => {
  /** The provider, recording the Responses request bodies it sends (the real request still goes out). */
  function provider(gateway: { baseUrl: string }, sent: unknown[] = []) {
    return createOpenAI({
      baseURL: gateway.baseUrl,
      apiKey: "x",
      fetch: async (url, init) => {
        if (typeof init?.body === "string") sent.push(JSON.parse(init.body));
        return fetch(url, init);
      },
    });
  }

  test("generateText and streamText", async (t) => {
    const { mock, gateway } = await scene(t);
    const openai = provider(gateway);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello from JSON", UPSTREAM_ID) });
    const generated = await generateText({ model: openai("m"), prompt: "Say hello" });
    assert.equal(generated.text, "Hello from JSON");
    assert.equal(generated.finishReason, "stop");
    assert.equal(generated.usage.outputTokens, 3);

    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Hello", " from", " stream"], UPSTREAM_ID, { usage: true }),
    });
    const streamed = streamText({ model: openai("m"), prompt: "Say hello" });
    let text = "";
    for await (const delta of streamed.textStream) text += delta;
    assert.equal(text, "Hello from stream");
    assert.equal(await streamed.finishReason, "stop");
    assert.equal((await streamed.usage).outputTokens, 3);
  });

  test("a tool call over two steps, then a second turn that sends item_reference items", async (t) => {
    const { mock, gateway } = await scene(t);
    const sent: unknown[] = [];
    const openai = provider(gateway, sent);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: toolCallStream(UPSTREAM_ID, [{ id: "call_s1", name: "get_weather", arguments: '{"city":"Rome"}' }]),
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Rome", " is", " warm."], UPSTREAM_ID, { usage: true }),
    });
    const tools = {
      get_weather: tool({
        description: "Current weather for a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => ({ city, celsius: 24 }),
      }),
    };
    const messages: ModelMessage[] = [{ role: "user", content: "Weather in Rome?" }];
    const first = streamText({ model: openai("m"), messages, tools, stopWhen: stepCountIs(3) });
    let text = "";
    for await (const delta of first.textStream) text += delta;
    assert.equal(text, "Rome is warm.");
    const toolResults = (await first.steps).flatMap((step) => step.toolResults);
    assert.deepEqual(
      toolResults.map((result) => result.output),
      [{ city: "Rome", celsius: 24 }],
    );
    const stepTwo = sentMessages(mock, 1);
    assert.deepEqual(stepTwo.at(-2)?.tool_calls, [
      { id: "call_s1", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
    ]);
    assert.deepEqual(stepTwo.at(-1), {
      role: "tool",
      tool_call_id: "call_s1",
      content: '{"city":"Rome","celsius":24}',
    });

    // The next turn: the AI SDK refers to the kept assistant items by id (item_reference), the gateway resolves them.
    messages.push(...(await first.response).messages, { role: "user", content: "And tomorrow?" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Also warm.", UPSTREAM_ID) });
    const second = await generateText({ model: openai("m"), messages, tools });
    assert.equal(second.text, "Also warm.");
    const turnTwo = sentMessages(mock, 2);
    assert.deepEqual(
      turnTwo.map((message) => message.role),
      ["user", "assistant", "tool", "assistant", "user"],
      JSON.stringify(turnTwo),
    );
    assert.equal(turnTwo[3]?.content, "Rome is warm.");
    const lastInput = (sent.at(-1) as { input: { type?: string }[] }).input;
    assert.ok(
      lastInput.some((item) => item.type === "item_reference"),
      `the AI SDK sent item references: ${JSON.stringify(lastInput)}`,
    );
  });
});

describe("LangChain ChatOpenAI with useResponsesApi", () => {
  test("invoke and stream", async (t) => {
    const { mock, gateway } = await scene(t);
    const llm = new ChatOpenAI({
      model: "m",
      apiKey: "x",
      useResponsesApi: true,
      maxRetries: 0,
      configuration: { baseURL: gateway.baseUrl },
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi from LangChain", UPSTREAM_ID) });
    const message = await llm.invoke("Say hi");
    assert.equal(message.text, "Hi from LangChain");
    // Read through `unknown`: this LangChain version types `usage_metadata` as `never` under our tsconfig.
    const usage = (message as unknown as { usage_metadata?: { output_tokens?: number } }).usage_metadata;
    assert.equal(usage?.output_tokens, 3);

    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Hi", " from", " a", " stream"], UPSTREAM_ID, { usage: true }),
    });
    let text = "";
    for await (const chunk of await llm.stream("Say hi")) text += chunk.text;
    assert.equal(text, "Hi from a stream");
    assert.equal(chatRequests(mock).length, 2);
  });
});
