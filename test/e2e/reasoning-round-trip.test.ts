// Reasoning sent back in a later request's history reaches a chat provider as the assistant message's
// `reasoning_content` (docs/protocols.md "Reasoning"): DeepSeek's thinking mode answers a 400 when the reasoning of
// a turn that called tools is missing from the next requests, and Kimi K2 Thinking and GLM read it too. The real
// clients send it back on their own: the Anthropic SDK's thinking blocks (Claude Code keeps them in its history),
// the Agents SDK's reasoning items, the AI SDK's reasoning parts (Responses provider by item_reference, chat
// provider as `reasoning_content` itself).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import Anthropic from "@anthropic-ai/sdk";
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, rowOf, statsOf } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockUpstream, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-think";
const MODEL = "m";
const REASONING = "The user wants Paris weather; call get_weather.";

interface SentMessage {
  role: string;
  content?: unknown;
  tool_calls?: { id: string }[];
  reasoning_content?: string;
}

function sentMessages(mock: MockUpstream, index: number): SentMessage[] {
  return ((chatRequests(mock)[index]?.body ?? {}) as { messages?: SentMessage[] }).messages ?? [];
}

function sentAssistant(mock: MockUpstream, index: number): SentMessage | undefined {
  return sentMessages(mock, index).find((message) => message.role === "assistant");
}

/** A chat answer calling get_weather, its reasoning as DeepSeek gives it (`reasoning_content`). */
function reasonedToolCall(): unknown {
  const body = toolCallCompletion(UPSTREAM_ID, [{ id: "call_w1", name: "get_weather", arguments: '{"city":"Paris"}' }]);
  const message = (body as { choices: { message: Record<string, unknown> }[] }).choices[0]?.message;
  if (message !== undefined) message.reasoning_content = REASONING;
  return body;
}

/** The same, streamed: reasoning deltas before the call's. */
function reasonedToolCallStream(): SseScript[] {
  const events = toolCallStream(UPSTREAM_ID, [{ id: "call_w1", name: "get_weather", arguments: '{"city":"Paris"}' }]);
  const reasoning = (text: string): SseScript => ({
    data: {
      id: "chatcmpl-tools",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta: { reasoning_content: text }, logprobs: null, finish_reason: null }],
    },
  });
  const half = REASONING.length / 2;
  return [
    events[0] as SseScript,
    reasoning(REASONING.slice(0, half)),
    reasoning(REASONING.slice(half)),
    ...events.slice(1),
  ];
}

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

describe("Anthropic SDK: thinking blocks sent back", () => {
  for (const isStream of [false, true]) {
    test(`the tool turn's thinking goes upstream as the assistant's reasoning_content${isStream ? " (streamed turn)" : ""}`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID, keys: ", reasoning: true" });
      const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      mock.enqueue(
        CHAT_ROUTE,
        isStream ? { kind: "sse", events: reasonedToolCallStream() } : { kind: "json", body: reasonedToolCall() },
      );
      mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
      const request = {
        model: MODEL,
        max_tokens: 4000,
        thinking: { type: "enabled" as const, budget_tokens: 2048 },
        tools: [WEATHER_TOOL],
      };
      const question = { role: "user" as const, content: "Weather in Paris?" };
      const first = isStream
        ? await client.messages.stream({ ...request, messages: [question] }).finalMessage()
        : await client.messages.create({ ...request, messages: [question] });
      assert.deepEqual(
        first.content.map((block) => block.type),
        ["thinking", "tool_use"],
      );
      const call = first.content.find((block) => block.type === "tool_use");
      const answer = await client.messages.create({
        ...request,
        messages: [
          question,
          // As Claude Code does: the answer's blocks as they came, plus a redacted block of an earlier Claude turn.
          { role: "assistant", content: [{ type: "redacted_thinking", data: "EuYBCkQYAiJA" }, ...first.content] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: call?.id ?? "", content: "sunny" }] },
        ],
      });
      assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
      const assistant = sentAssistant(mock, 1);
      assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
      assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
      assert.equal(
        JSON.stringify(sentMessages(mock, 1)).includes("EuYBCkQYAiJA"),
        false,
        "redacted thinking is not sent",
      );
    });
  }

  test("an assistant turn without thinking gets no reasoning_content; empty thinking is none", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) });
    await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "", signature: "" },
            { type: "text", text: "Hello." },
          ],
        },
        { role: "user", content: "How are you?" },
      ],
    });
    assert.deepEqual(sentAssistant(mock, 0), { role: "assistant", content: "Hello." });
  });
});

test("Anthropic SDK: a long history sends back only the reasoning of turns that called tools", async (t) => {
  // Claude Code keeps every turn's thinking in its history (Anthropic drops earlier turns' itself). Sent on every
  // turn, each request grew by all the session's reasoning, counted as prompt for the fit check and budgets, and
  // billed by hosts that read it; DeepSeek needs only a tool turn's (and ignores the rest), as previous_response_id
  // already sent.
  const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
  const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
  const musing = "A greeting; answer in kind. ".repeat(50);
  await client.messages.create({
    model: MODEL,
    max_tokens: 4000,
    thinking: { type: "enabled", budget_tokens: 2048 },
    tools: [WEATHER_TOOL],
    messages: [
      { role: "user", content: "Hi" },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: musing, signature: "" },
          { type: "text", text: "Hello." },
        ],
      },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: REASONING, signature: "" },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
        ],
      },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
    ],
  });
  const assistants = sentMessages(mock, 0).filter((message) => message.role === "assistant");
  assert.deepEqual(assistants[0], { role: "assistant", content: "Hello." }, "a turn without tools: no reasoning");
  assert.equal(assistants[1]?.reasoning_content, REASONING, "the tool turn keeps its reasoning");
});

test("Responses, stateless: a reasoning item before an answer without tools is not sent back", async (t) => {
  const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) });
  await client.responses.create({
    model: MODEL,
    store: false,
    input: [
      { role: "user", content: "Hi" },
      { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Greet back." }] },
      {
        type: "message",
        role: "assistant",
        id: "msg_1",
        status: "completed",
        content: [{ type: "output_text", text: "Hello.", annotations: [] }],
      },
      { role: "user", content: "How are you?" },
    ],
  });
  assert.deepEqual(sentAssistant(mock, 0), { role: "assistant", content: "Hello." });
});

describe("Responses clients: reasoning items sent back", () => {
  test("Agents SDK run(): the tool turn's reasoning item goes upstream as the assistant's reasoning_content", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    setTracingDisabled(true);
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedToolCall() });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
    const agent = new Agent({
      name: "Weather agent",
      instructions: "Answer weather questions with the tool.",
      model: MODEL,
      tools: [
        agentTool({
          name: "get_weather",
          description: "Current weather for a city",
          parameters: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      ],
    });
    const result = await runner.run(agent, "Weather in Paris?");
    assert.equal(result.finalOutput, "Sunny in Paris.");
    const assistant = sentAssistant(mock, 1);
    assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
    assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
  });

  test("openai SDK, stateless (store: false): output items sent back as input carry the reasoning", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: reasonedToolCallStream() });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
    const tools = [
      {
        type: "function" as const,
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        strict: false,
      },
    ];
    const input = [{ role: "user" as const, content: "Weather in Paris?" }];
    const first = await client.responses
      .stream({ model: MODEL, input, tools, store: false, include: ["reasoning.encrypted_content"] })
      .finalResponse();
    const call = first.output.find((item) => item.type === "function_call");
    await client.responses.create({
      model: MODEL,
      tools,
      store: false,
      input: [
        ...input,
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { type: "function_call_output", call_id: call?.call_id ?? "", output: "sunny" },
      ],
    });
    const assistant = sentAssistant(mock, 1);
    assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
    assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
  });

  test("AI SDK Responses provider: the reasoning item_reference of a kept response resolves to its reasoning", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedToolCall() });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
    const result = await generateText({
      model: openai.responses(MODEL),
      prompt: "Weather in Paris?",
      tools: {
        get_weather: tool({
          description: "Current weather for a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      },
      stopWhen: stepCountIs(2),
    });
    assert.equal(result.text, "Sunny in Paris.");
    const assistant = sentAssistant(mock, 1);
    assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
  });
  for (const isStream of [false, true]) {
    test(`AI SDK Responses provider, store: false: the reasoning goes back by its encrypted_content${isStream ? " (streamed)" : ""}`, async (t) => {
      // Stateless, the AI SDK sends a reasoning item back only with an encrypted_content (it skips one without,
      // with a warning), so the gateway gives its reasoning items one when the request includes it.
      const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
      const sent: { input?: { type?: string; encrypted_content?: unknown }[] }[] = [];
      const openai = createOpenAI({
        baseURL: gateway.baseUrl,
        apiKey: "x",
        fetch: async (url, init) => {
          if (typeof init?.body === "string") sent.push(JSON.parse(init.body));
          return fetch(url, init);
        },
      });
      mock.enqueue(
        CHAT_ROUTE,
        isStream ? { kind: "sse", events: reasonedToolCallStream() } : { kind: "json", body: reasonedToolCall() },
      );
      mock.enqueue(
        CHAT_ROUTE,
        isStream
          ? { kind: "sse", events: chatStream(["Sunny in Paris."], UPSTREAM_ID, { usage: true }) }
          : { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) },
      );
      const settings = {
        model: openai.responses(MODEL),
        prompt: "Weather in Paris?",
        providerOptions: { openai: { store: false, include: ["reasoning.encrypted_content" as const] } },
        tools: {
          get_weather: tool({
            description: "Current weather for a city",
            inputSchema: z.object({ city: z.string() }),
            execute: async ({ city }) => `sunny in ${city}`,
          }),
        },
        stopWhen: stepCountIs(2),
      };
      const text = isStream ? await streamText(settings).text : (await generateText(settings)).text;
      assert.equal(text, "Sunny in Paris.");
      const reasoningItem = sent[1]?.input?.find((item) => item.type === "reasoning");
      assert.equal(typeof reasoningItem?.encrypted_content, "string", JSON.stringify(sent[1]?.input));
      const assistant = sentAssistant(mock, 1);
      assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
    });
  }
});

describe("Responses clients: an encrypted_content the gateway did not make", () => {
  test("only the gateway's own token reads back as reasoning: a malformed, empty or OpenAI one is no reasoning_content", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const token = `gateway-reasoning-v1:${Buffer.from(REASONING, "utf8").toString("base64")}`;
    const cases: [string, string | undefined][] = [
      [token, REASONING],
      // Not base64 (Node's decoder skips what it cannot read and decodes the rest into bytes).
      ["gateway-reasoning-v1:not base64, a client's own text!", undefined],
      // Base64, but of bytes that are no UTF-8 text (they read as U+FFFD).
      [`gateway-reasoning-v1:${Buffer.from([0xff, 0xfe, 0x00, 0x9f]).toString("base64")}`, undefined],
      // The gateway's token cut short by a client.
      [token.slice(0, -3), undefined],
      ["gateway-reasoning-v1:", undefined],
      ["gAAAAABpZ0vT3-an-openai-encrypted-reasoning-blob==", undefined],
      ["", undefined],
    ];
    for (const [encrypted, expected] of cases) {
      mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
      await client.responses.create({
        model: MODEL,
        store: false,
        input: [
          { role: "user", content: "Weather in Paris?" },
          { type: "reasoning", id: "rs_1", summary: [], encrypted_content: encrypted },
          { type: "function_call", call_id: "call_w1", name: "get_weather", arguments: '{"city":"Paris"}' },
          { type: "function_call_output", call_id: "call_w1", output: "sunny" },
        ],
      });
      const index = chatRequests(mock).length - 1;
      const assistant = sentAssistant(mock, index);
      assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
      assert.equal(
        assistant?.reasoning_content,
        expected,
        `${encrypted}: ${JSON.stringify(sentMessages(mock, index))}`,
      );
    }
  });
});

describe("Chat Completions: a client's own reasoning_content", () => {
  test("the AI SDK's OpenAI-compatible provider sends reasoning_content back; the gateway passes it on", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const provider = createOpenAICompatible({ name: "gateway", baseURL: gateway.baseUrl, apiKey: "x" });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedToolCall() });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
    const result = await generateText({
      model: provider.chatModel(MODEL),
      prompt: "Weather in Paris?",
      tools: {
        get_weather: tool({
          description: "Current weather for a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      },
      stopWhen: stepCountIs(2),
    });
    assert.equal(result.text, "Sunny in Paris.");
    assert.equal(result.steps[0]?.reasoningText, REASONING);
    const assistant = sentAssistant(mock, 1);
    assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
    assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
  });
});

describe("previous_response_id: the kept turn's reasoning", () => {
  test("a kept turn that called tools sends its reasoning with the calls (one that only answered: reasoning.test.ts)", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedToolCall() });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny in Paris.", UPSTREAM_ID) });
    const tools = [
      {
        type: "function" as const,
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        strict: false,
      },
    ];
    const first = await client.responses.create({ model: MODEL, input: "Weather in Paris?", tools });
    const call = first.output.find((item) => item.type === "function_call");
    await client.responses.create({
      model: MODEL,
      tools,
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call?.call_id ?? "", output: "sunny" }],
    });
    const assistant = sentAssistant(mock, 1);
    assert.equal(assistant?.reasoning_content, REASONING, JSON.stringify(sentMessages(mock, 1)));
    assert.equal(assistant?.tool_calls?.[0]?.id, "call_w1");
  });
});

describe("a host that refuses reasoning_content in messages", () => {
  test("Cerebras' 400: the same candidate is retried at once without it, and the lesson keeps it out", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const refusal =
      "messages.1.assistant.reasoning_content: property 'messages.1.assistant.reasoning_content' is unsupported";
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { message: refusal, type: "invalid_request_error", param: "validation_error", code: "wrong_api_format" },
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Still fine.", UPSTREAM_ID) });
    const messages = [
      { role: "user" as const, content: "Weather in Paris?" },
      {
        role: "assistant" as const,
        content: [
          { type: "thinking" as const, thinking: "Call the tool.", signature: "" },
          { type: "tool_use" as const, id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
        ],
      },
      { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: "toolu_1", content: "sunny" }] },
    ];
    const request = { model: MODEL, max_tokens: 100, tools: [WEATHER_TOOL], messages };
    const answer = await client.messages.create(request);
    assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Fine.");
    assert.equal(sentAssistant(mock, 0)?.reasoning_content, "Call the tool.");
    assert.equal(sentAssistant(mock, 1)?.tool_calls?.[0]?.id, "toolu_1");
    assert.equal(sentAssistant(mock, 1)?.reasoning_content, undefined, "retried without it");
    const learned = rowOf(await statsOf(gateway), "alpha/m").refused_features.map((refusal) => refusal.feature);
    assert.deepEqual(learned, ["message_order:reasoning_content"]);
    await client.messages.create(request);
    assert.equal(chatRequests(mock).length, 3, "the next request is sent without it at once");
    assert.equal(sentAssistant(mock, 2)?.reasoning_content, undefined);
  });
  test("a proxy's refusal of tools that quotes the messages it got teaches the tools refusal, not reasoning_content", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const echo =
      "litellm.BadRequestError: tools are not supported. Received Messages=[{'role': 'user', 'content': 'Weather in Paris?'}, {'role': 'assistant', 'content': None, 'reasoning_content': 'Call the tool.'}]";
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: echo, type: "invalid_request_error", param: null, code: "400" } },
    });
    const messages = [
      { role: "user" as const, content: "Weather in Paris?" },
      {
        role: "assistant" as const,
        content: [
          { type: "thinking" as const, thinking: "Call the tool.", signature: "" },
          { type: "tool_use" as const, id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
        ],
      },
      { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: "toolu_1", content: "sunny" }] },
    ];
    await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 100, tools: [WEATHER_TOOL], messages }));
    assert.equal(chatRequests(mock).length, 1, "not retried without the reasoning");
    const learned = rowOf(await statsOf(gateway), "alpha/m").refused_features.map((refusal) => refusal.feature);
    assert.deepEqual(learned, ["tools"]);
  });
  test("Gemini's 400 (\"Unknown name ... Cannot find field\") is a refusal of the field too, not the client's 400", async (t) => {
    // Google's OpenAI-compatible endpoint parses the body strictly (as `store` or `web_search_options` at the top):
    // classified as the client's 400, every thinking tool turn routed to it came back as an error, not retried.
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const refusal = `Invalid JSON payload received. Unknown name "reasoning_content" at 'messages[1]': Cannot find field.`;
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: [
        {
          error: {
            code: 400,
            message: refusal,
            status: "INVALID_ARGUMENT",
            details: [
              {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                fieldViolations: [{ field: "messages[1]", description: refusal }],
              },
            ],
          },
        },
      ],
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny.", UPSTREAM_ID) });
    const answer = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      tools: [WEATHER_TOOL],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Call the tool.", signature: "" },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
      ],
    });
    assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny.");
    assert.equal(sentAssistant(mock, 0)?.reasoning_content, "Call the tool.");
    assert.equal(sentAssistant(mock, 1)?.reasoning_content, undefined, "retried without it");
    const learned = rowOf(await statsOf(gateway), "alpha/m").refused_features.map((entry) => entry.feature);
    assert.deepEqual(learned, ["message_order:reasoning_content"]);
  });
});
