// Gemini 3 (a reasoning model) through OpenRouter behind the doors that have no place for `reasoning_details`
// (docs/protocols.md "Thought signatures", its OpenRouter point): OpenRouter carries the model's reasoning and
// Gemini's signatures in the assistant message's `reasoning_details` and refuses the next turn of a tool loop whose
// assistant message lacks them. The Anthropic SDK (Claude Code) and the OpenAI Responses client (Codex) send back
// `tool_use` blocks and `function_call` items: the gateway keeps the array by the message's first call id and puts
// it back for OpenRouter deployments. The upstream here plays OpenRouter in front of Gemini 3.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import type { LookupFunction } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { Agent } from "undici";
import { CHAT_ROUTE, chatRequests, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockStep, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import {
  otherFirstYaml,
  redisLookUps,
  redisStateYaml,
  restartedBetween,
  twoReplicas,
} from "../helpers/replica-scenes.ts";
import { responsesToolLoop } from "../helpers/responses-tool-loop.ts";

const MODEL_ID = "google/gemini-3-pro-preview";
const CALL_ID = "tool_0_get_weather_Xk2fQ";
const SIGNATURE = "CiQB0e2Kb7uNsignedThoughtsOfTurnOne==";
const FORMAT = "google-gemini-v1";

/** The array as OpenRouter's JSON answer holds it (and as the pieces of its stream join into). */
const DETAILS = [
  { type: "reasoning.text", text: "Looking up the weather.", format: FORMAT, index: 0 },
  { type: "reasoning.encrypted", data: SIGNATURE, id: CALL_ID, format: FORMAT, index: 1 },
];

const CALL = { id: CALL_ID, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } };

/** OpenRouter's 400 for a Gemini turn whose assistant message lost its reasoning details. */
const REFUSAL = {
  error: {
    message:
      "Gemini models require OpenRouter reasoning details to be preserved in each request. Please refer to our docs: https://openrouter.ai/docs/guides/best-practices/reasoning-tokens#preserving-reasoning-blocks. Upstream error: Function call is missing a thought_signature in functionCall parts.",
    code: 400,
    metadata: { provider_name: "Google AI Studio" },
  },
};

function answeredWithCall(): unknown {
  return {
    id: "gen-1767225600-abc",
    provider: "Google AI Studio",
    object: "chat.completion",
    created: 1767225600,
    model: MODEL_ID,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: "",
          reasoning: "Looking up the weather.",
          reasoning_details: DETAILS,
          tool_calls: [CALL],
        },
        finish_reason: "tool_calls",
      },
    ],
    usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
  };
}

/** As OpenRouter streams it: the text in pieces of one entry (same index), the signature with the call. */
function streamedWithCall(): MockStep {
  const chunk = (delta: unknown, finishReason: string | null = null, usage?: unknown) => ({
    data: {
      id: "gen-1767225600-abc",
      provider: "Google AI Studio",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: MODEL_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...(usage === undefined ? {} : { usage }),
    },
  });
  const text = (piece: string) => ({ type: "reasoning.text", text: piece, format: FORMAT, index: 0 });
  return {
    kind: "sse",
    events: [
      chunk({ role: "assistant", content: "", reasoning: "Looking up ", reasoning_details: [text("Looking up ")] }),
      chunk({ role: "assistant", content: "", reasoning: "the weather.", reasoning_details: [text("the weather.")] }),
      chunk({
        role: "assistant",
        content: null,
        tool_calls: [{ index: 0, ...CALL }],
        reasoning_details: [DETAILS[1]],
      }),
      chunk({ role: "assistant", content: "" }, "tool_calls", {
        prompt_tokens: 40,
        completion_tokens: 12,
        total_tokens: 52,
      }),
    ],
  };
}

function firstTurn(isStream: boolean): MockStep {
  return isStream ? streamedWithCall() : { kind: "json", body: answeredWithCall() };
}

interface SentAssistant {
  role: string;
  reasoning_details?: unknown;
  tool_calls?: { id?: string }[];
}

function sentAssistant(request: RecordedRequest | undefined): SentAssistant | undefined {
  const messages = (request?.body as { messages?: SentAssistant[] } | undefined)?.messages;
  return messages?.find((message) => message.role === "assistant");
}

/** OpenRouter's next turn: refused with its 400 unless the assistant message holds the same array; else answered. */
function nextTurnChecked(): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const sent = sentAssistant(request)?.reasoning_details;
      if (JSON.stringify(sent) !== JSON.stringify(DETAILS)) {
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify(REFUSAL));
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("Sunny in Paris.", MODEL_ID)));
    },
  };
}

/**
 * The `openrouter` preset pointed at the mock (what tells the gateway the deployment is OpenRouter's); `limits`, the
 * provider's own instead of the preset's free tier (20 a minute, 50 a day).
 */
function openRouterYaml(mock: MockUpstream, state = "", limits = ""): string {
  return `providers:
  - preset: openrouter
    base_url: ${mock.baseUrl}
    api_key: or-test
    retries: 0
${limits === "" ? "" : `    limits: ${limits}\n`}    models:
      m: { id: ${MODEL_ID} }
${state}`;
}

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

const MESSAGES_REQUEST = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
const QUESTION = { role: "user" as const, content: "Weather in Paris?" };

/** The Anthropic SDK's first turn: the assistant's content blocks, as Claude Code keeps them. */
async function messagesFirstTurn(
  gateway: TestGateway,
  isStream: boolean,
  apiKey = "x",
): Promise<Anthropic.ContentBlock[]> {
  const client = new Anthropic({ baseURL: gateway.url, apiKey, maxRetries: 0 });
  const answered = isStream
    ? await client.messages.stream({ ...MESSAGES_REQUEST, messages: [QUESTION] }).finalMessage()
    : await client.messages.create({ ...MESSAGES_REQUEST, messages: [QUESTION] });
  const call = answered.content.find((block) => block.type === "tool_use");
  assert.equal(call?.id, CALL_ID);
  assert.equal(JSON.stringify(answered).includes("reasoning.encrypted"), false, "nothing of OpenRouter's leaks");
  return answered.content;
}

/** The Anthropic SDK's next turn: the tool's result after the assistant's blocks; the answer's text. */
async function messagesNextTurn(
  gateway: TestGateway,
  content: Anthropic.ContentBlock[],
  model = MESSAGES_REQUEST.model,
  apiKey = "x",
): Promise<string> {
  const answer = await new Anthropic({ baseURL: gateway.url, apiKey, maxRetries: 0 }).messages.create({
    ...MESSAGES_REQUEST,
    model,
    messages: [
      QUESTION,
      { role: "assistant", content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
    ],
  });
  return answer.content[0]?.type === "text" ? answer.content[0].text : "";
}

/** The Anthropic SDK's two-turn tool loop, the first turn on `first`, the tool's result sent on `second`. */
async function messagesToolLoop(first: TestGateway, second: TestGateway, isStream: boolean): Promise<string> {
  return messagesNextTurn(second, await messagesFirstTurn(first, isStream));
}

async function scene(t: TestContext, yaml = openRouterYaml): Promise<{ mock: MockUpstream; gateway: TestGateway }> {
  const mock = await useMock(t);
  return { mock, gateway: await useGateway(t, yaml(mock)) };
}

describe("Anthropic SDK (Claude Code) in front of Gemini 3 through OpenRouter: a two-turn tool loop", () => {
  for (const isStream of [false, true]) {
    test(`the message's reasoning_details go back on the next turn${isStream ? " (streamed first turn)" : ""}`, async (t) => {
      const { mock, gateway } = await scene(t);
      mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
      assert.equal(await messagesToolLoop(gateway, gateway, isStream), "Sunny in Paris.");
      assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
    });
  }
});

describe("OpenAI Responses client (Codex) in front of Gemini 3 through OpenRouter: a two-turn tool loop", () => {
  for (const isStream of [false, true]) {
    test(`the message's reasoning_details go back on the next turn${isStream ? " (streamed first turn)" : ""}`, async (t) => {
      const { mock, gateway } = await scene(t);
      mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
      assert.equal(await responsesToolLoop(gateway, isStream, CALL_ID), "Sunny in Paris.");
      assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
    });
  }
});

test("Responses: the whole first output sent back (its reasoning item too) gets the array back", async (t) => {
  // Codex with `store: false` sends the reasoning item back before the call: it joins the same assistant message.
  const { mock, gateway } = await scene(t);
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  const tools = [
    { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: {} }, strict: false },
  ];
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const first = await client.responses.create({ model: "m", store: false, tools, input: [question] });
  assert.ok(first.output.some((item) => item.type === "reasoning"));
  const answer = await client.responses.create({
    model: "m",
    store: false,
    tools,
    input: [
      question,
      ...(first.output as OpenAI.Responses.ResponseInputItem[]),
      { type: "function_call_output", call_id: CALL_ID, output: "sunny" },
    ],
  });
  assert.equal(answer.output_text, "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
});

for (const isStream of [false, true]) {
  test(`Responses background run${isStream ? " (streamed)" : ""}: the array is kept too`, async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
    assert.equal(await responsesToolLoop(gateway, isStream, CALL_ID, { isBackground: true }), "Sunny in Paris.");
    assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
  });
}

test("a restart between turns: the embedded state file gives the array back", async (t) => {
  const mock = await useMock(t);
  mock.enqueue(CHAT_ROUTE, firstTurn(true), nextTurnChecked());
  const { after, first } = await restartedBetween(
    t,
    (state) => openRouterYaml(mock, state),
    (before) => messagesFirstTurn(before, true),
  );
  assert.equal(await messagesNextTurn(after, first), "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
});

test("another client sending the same call id gets none of the first client's reasoning", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:\n  port: 0\n  host: 127.0.0.1\n  api_keys: [{ key: key-a, name: a }, { key: key-b, name: b }]\n${openRouterYaml(mock)}`,
  );
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
  const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const first = await new Anthropic({ baseURL: gateway.url, apiKey: "key-a", maxRetries: 0 }).messages.create({
    ...request,
    messages: [question],
  });
  const asB = new Anthropic({ baseURL: gateway.url, apiKey: "key-b", maxRetries: 0 });
  await assert.rejects(
    asB.messages.create({
      ...request,
      messages: [
        question,
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
      ],
    }),
    (error: unknown) => error instanceof Anthropic.APIError && error.status === 400,
  );
  assert.equal(sentAssistant(chatRequests(mock)[1])?.reasoning_details, undefined);
});

test("a provider that is not OpenRouter is never sent the kept reasoning_details", async (t) => {
  // Another OpenAI-compatible host (a strict one refuses an unknown message field with a 400): the array the first
  // turn's answer carried is kept, but given back only to OpenRouter deployments.
  const { mock, gateway } = await scene(
    t,
    (mock) => `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: a-test
    retries: 0
    models:
      m: { id: vendor/reasoner }
`,
  );
  mock.enqueue(
    CHAT_ROUTE,
    { kind: "json", body: answeredWithCall() },
    { kind: "json", body: chatCompletion("Sunny in Paris.", "vendor/reasoner") },
  );
  assert.equal(await messagesToolLoop(gateway, gateway, false), "Sunny in Paris.");
  const sent = sentAssistant(chatRequests(mock)[1]);
  assert.deepEqual(
    sent?.tool_calls?.map((call) => call.id),
    [CALL_ID],
  );
  assert.equal(sent?.reasoning_details, undefined);
});

describe("with Redis: the next turn served by another replica gets the reasoning_details the first one kept", () => {
  for (const isStream of [false, true]) {
    test(`one Redis server${isStream ? " (streamed first turn)" : ""}`, {
      skip: isRedisInstalled() ? false : REDIS_MISSING,
    }, async (t) => {
      const mock = await useMock(t);
      const { a, b } = await twoReplicas(t, (state) => openRouterYaml(mock, state), "or-e2e:");
      mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
      assert.equal(await messagesToolLoop(a, b, isStream), "Sunny in Paris.");
      assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
    });
  }
  test("the shared look-up is made for an OpenRouter candidate only: none when another serves, one on a failover", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    // Replica B serves the next turn on another provider first, OpenRouter second: that provider takes no
    // reasoning_details, so no MGET; when it fails, the failover to OpenRouter makes the look-up then.
    const openRouter = await useMock(t);
    const other = await useMock(t);
    const redis = await useRedisServer(t);
    const { mgetCalls } = await redisLookUps(t, redis.url);
    const state = redisStateYaml(redis.url, "or-lazy:");
    const a = await useGateway(t, openRouterYaml(openRouter, state));
    const openRouterPreset = { name: "openrouter", mock: openRouter, apiKey: "or-test", modelId: MODEL_ID };
    const b = await useGateway(t, otherFirstYaml(other, openRouterPreset, state));
    openRouter.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    const content = await messagesFirstTurn(a, false);
    const before = await mgetCalls();
    other.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", "vendor/m-instruct") });
    // The other provider first, OpenRouter as the fallback (a comma list keeps its order).
    assert.equal(await messagesNextTurn(b, content, "o,m"), "Fine.");
    assert.equal(await mgetCalls(), before, "no look-up for a request served by a provider that is not OpenRouter");
    assert.equal(sentAssistant(chatRequests(other)[0])?.reasoning_details, undefined);

    other.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    assert.equal(await messagesNextTurn(b, content, "o,m"), "Sunny in Paris.");
    assert.deepEqual(sentAssistant(chatRequests(openRouter)[1])?.reasoning_details, DETAILS);
    assert.equal(await mgetCalls(), before + 1, "one look-up, for the OpenRouter attempt");
  });
});

test("Claude through OpenRouter, streamed: the signature that comes after an empty one goes back on the next turn", async (t) => {
  // As OpenRouter streams Claude's thinking (recorded anthropic/claude-sonnet-4 streams): the entry opens with
  // `"text":"","signature":""`, the text follows in pieces, the signature comes whole in a later piece of index 0.
  // Anthropic refuses a tool loop's next turn whose thinking block lost its signature.
  const claude = "anthropic/claude-sonnet-4";
  const signature = "EqQBCkgIARABGAIiQClaudeSignedThinking==";
  const format = "anthropic-claude-v1";
  const expected = [{ type: "reasoning.text", text: "Weather first.", signature, format, index: 0 }];
  const chunk = (delta: unknown, finishReason: string | null = null) => ({
    data: {
      id: "gen-1761052928-abc",
      provider: "Anthropic",
      object: "chat.completion.chunk",
      model: claude,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    },
  });
  const piece = (fields: Record<string, unknown>) =>
    chunk({
      role: "assistant",
      content: "",
      reasoning_details: [{ type: "reasoning.text", format, index: 0, ...fields }],
    });
  const { mock, gateway } = await scene(t);
  mock.enqueue(
    CHAT_ROUTE,
    {
      kind: "sse",
      events: [
        piece({ text: "", signature: "" }),
        piece({ text: "Weather " }),
        piece({ text: "first." }),
        piece({ text: "", signature }),
        chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, ...CALL }] }),
        chunk({ role: "assistant", content: "" }, "tool_calls"),
      ],
    },
    { kind: "json", body: chatCompletion("Sunny in Paris.", claude) },
  );
  assert.equal(await messagesToolLoop(gateway, gateway, true), "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, expected);
});

test("Vercel AI Gateway (its host, no preset): the kept reasoning_details go back there too", async (t) => {
  // Vercel's OpenAI-compatible chat API takes the same array back. The host is what tells the gateway: here a
  // dispatcher resolves `ai-gateway.vercel.sh` to the mock on loopback.
  const mock = await useMock(t);
  const port = new URL(mock.baseUrl).port;
  const toLoopback: LookupFunction = (_host, options, callback) => {
    if (options.all === true) callback(null, [{ address: "127.0.0.1", family: 4 }]);
    else (callback as (error: null, address: string, family: number) => void)(null, "127.0.0.1", 4);
  };
  const agent = new Agent({ connect: { lookup: toLoopback } });
  t.after(() => agent.close());
  const gateway = await useGateway(
    t,
    `providers:
  - name: vercel
    base_url: http://ai-gateway.vercel.sh:${port}/v1
    api_key: vck-test
    retries: 0
    models:
      m: { id: ${MODEL_ID} }
`,
    { dispatcher: agent },
  );
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
  assert.equal(await messagesToolLoop(gateway, gateway, false), "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock)[1])?.reasoning_details, DETAILS);
  assert.equal(chatRequests(mock)[1]?.headers.host, `ai-gateway.vercel.sh:${port}`);
});

/** Claude's long extended thinking as OpenRouter answers it: ~300 KB of text (far over 64 KiB) and its signature. */
const LONG_THINKING = [
  {
    type: "reasoning.text",
    text: "Let me think about the weather step by step. ".repeat(6_500),
    signature: `EqQBCkgIARAB${"Q".repeat(4_000)}==`,
    format: "anthropic-claude-v1",
    index: 0,
  },
];

/** The first turn with the long thinking: JSON whole, or streamed as OpenRouter does (the text in 1 KB pieces). */
function longThinkingTurn(isStream: boolean): MockStep {
  const [entry] = LONG_THINKING;
  const message = { role: "assistant", content: "", reasoning_details: LONG_THINKING, tool_calls: [CALL] };
  if (!isStream || entry === undefined) {
    const body = answeredWithCall() as { choices: [{ message: unknown }] };
    body.choices[0].message = message;
    return { kind: "json", body };
  }
  const chunk = (delta: unknown, finishReason: string | null = null) => ({
    data: {
      id: "gen-2",
      object: "chat.completion.chunk",
      model: MODEL_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    },
  });
  const piece = (fields: Record<string, unknown>) =>
    chunk({ reasoning_details: [{ type: "reasoning.text", format: entry.format, index: 0, ...fields }] });
  const pieces = entry.text.match(/[\s\S]{1,1024}/g) ?? [];
  return {
    kind: "sse",
    events: [
      piece({ text: "", signature: "" }),
      ...pieces.map((text) => piece({ text })),
      piece({ text: "", signature: entry.signature }),
      chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, ...CALL }] }),
      chunk({ role: "assistant", content: "" }, "tool_calls"),
    ],
  };
}

/** Anthropic's refusal (through OpenRouter) of a tool loop's turn whose thinking did not come back unchanged. */
function nextTurnNeedsThinking(): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const isSame = isDeepStrictEqual(sentAssistant(request)?.reasoning_details, LONG_THINKING);
      response.writeHead(isSame ? 200 : 400, { "content-type": "application/json" });
      response.end(
        JSON.stringify(
          isSame
            ? chatCompletion("Sunny in Paris.", MODEL_ID)
            : {
                error: { message: "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`", code: 400 },
              },
        ),
      );
    },
  };
}

describe("Claude's long extended thinking (~300 KB of reasoning_details) is kept too", () => {
  for (const isStream of [false, true]) {
    test(`in memory${isStream ? " (streamed first turn)" : ""}`, async (t) => {
      const { mock, gateway } = await scene(t);
      mock.enqueue(CHAT_ROUTE, longThinkingTurn(isStream), nextTurnNeedsThinking());
      assert.equal(await messagesToolLoop(gateway, gateway, isStream), "Sunny in Paris.");
    });
  }
  test("through the state file across a restart", async (t) => {
    const mock = await useMock(t);
    mock.enqueue(CHAT_ROUTE, longThinkingTurn(true), nextTurnNeedsThinking());
    const { after, first } = await restartedBetween(
      t,
      (state) => openRouterYaml(mock, state),
      (before) => messagesFirstTurn(before, true),
    );
    assert.equal(await messagesNextTurn(after, first), "Sunny in Paris.");
  });
  test("through Redis, the next turn on another replica", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const { a, b } = await twoReplicas(t, (state) => openRouterYaml(mock, state), "long:");
    mock.enqueue(CHAT_ROUTE, longThinkingTurn(false), nextTurnNeedsThinking());
    assert.equal(await messagesToolLoop(a, b, false), "Sunny in Paris.");
  });
});

/** A turn of Claude's longest thinking through OpenRouter, ~1 MB of reasoning_details (kept: under 1 MiB), its own call. */
function heavyThinkingTurn(turn: number): MockStep {
  const [entry] = LONG_THINKING;
  const text = "Let me think about the weather at length. ".repeat(23_800);
  const body = answeredWithCall() as { choices: [{ message: unknown }] };
  body.choices[0].message = {
    role: "assistant",
    content: "",
    reasoning_details: [{ ...entry, text }],
    tool_calls: [{ ...CALL, id: `toolu_heavy_${turn}` }],
  };
  return { kind: "json", body };
}

test("one client's long thinking, turn after turn, does not cost another client's next tool turn its reasoning_details", async (t) => {
  // The memory store (and the state file) hold 32 MiB for every client together: 40 turns of ~1 MB thinking of one
  // named client evicted the other client's array, whose next Gemini turn OpenRouter then refused with its 400.
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:\n  port: 0\n  host: 127.0.0.1\n  api_keys: [{ key: key-heavy, name: heavy }, { key: key-light, name: light }]\n${openRouterYaml(
      mock,
      "",
      "{ rpm: 1000, rpd: 1000 }",
    )}`,
  );
  mock.enqueue(CHAT_ROUTE, firstTurn(false));
  const light = await messagesFirstTurn(gateway, false, "key-light");
  const heavy = new Anthropic({ baseURL: gateway.url, apiKey: "key-heavy", maxRetries: 0 });
  for (let turn = 0; turn < 40; turn++) {
    mock.enqueue(CHAT_ROUTE, heavyThinkingTurn(turn));
    const answer = await heavy.messages.create({ ...MESSAGES_REQUEST, messages: [QUESTION] });
    assert.ok(answer.content.some((block) => block.type === "tool_use" && block.id === `toolu_heavy_${turn}`));
  }
  mock.enqueue(CHAT_ROUTE, nextTurnChecked());
  assert.equal(await messagesNextTurn(gateway, light, MESSAGES_REQUEST.model, "key-light"), "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock).at(-1))?.reasoning_details, DETAILS);
});

test("a Redis Cluster: each client's keys under its own hash tag (spread over the nodes); a look-up is one MGET", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const mock = await useMock(t);
  const cluster = await useRedisCluster(t);
  const admins = cluster.nodes.map((node) => new Redis(node.url, { lazyConnect: true }));
  for (const admin of admins) await admin.connect();
  // disconnect, not quit: the cluster's own cleanup (registered first) may have stopped the nodes by then, and a QUIT
  // queued for a node that is gone waits through ioredis's reconnections for ever, keeping the file from exiting.
  t.after(() => {
    for (const admin of admins) admin.disconnect();
  });
  const yaml = `server:\n  port: 0\n  host: 127.0.0.1\n  api_keys: [{ key: key-alice, name: alice }, { key: key-bob, name: bob }]\n${openRouterYaml(
    mock,
    redisStateYaml(cluster.url, "or-cluster:", { isCluster: true }),
  )}`;
  const [a, b] = [await useGateway(t, yaml), await useGateway(t, yaml)];
  const client = (gateway: TestGateway, apiKey: string) =>
    new Anthropic({ baseURL: gateway.url, apiKey, maxRetries: 0 });
  mock.enqueue(CHAT_ROUTE, firstTurn(false), firstTurn(false));
  const [alice, bob] = [client(a, "key-alice"), client(a, "key-bob")];
  const firstOfAlice = await alice.messages.create({ ...MESSAGES_REQUEST, messages: [QUESTION] });
  await bob.messages.create({ ...MESSAGES_REQUEST, messages: [QUESTION] });

  // A kept entry's write is awaited only so long (KEEP_WAIT_MS): on a loaded machine it can land just after the answer.
  // Each client's value keys (`}:` after the tag) and its budget's bookkeeping (`}#order`, `}#sizes`, `}#bytes`).
  const keptKeys = async () =>
    (await Promise.all(admins.map((admin) => admin.keys("or-cluster:{tool-call-extras*")))).flat().sort();
  let keys = await keptKeys();
  const valueKeys = () => keys.filter((key) => key.includes("}:"));
  for (const deadline = Date.now() + 5_000; valueKeys().length < 2 && Date.now() < deadline; keys = await keptKeys()) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(valueKeys().length, 2, keys.join(", "));
  const slotOf = async (key: string) => Number(await admins[0]?.call("CLUSTER", "KEYSLOT", key));
  const slots = await Promise.all(valueKeys().map(slotOf));
  assert.notEqual(slots[0], slots[1], `both clients' keys in slot ${slots[0]}: ${keys.join(", ")}`);
  for (const key of keys) {
    const isAlice = key.includes("alice");
    assert.ok(key.includes(isAlice ? "{tool-call-extras:c:alice}" : "{tool-call-extras:c:bob}"), key);
    assert.equal(await slotOf(key), isAlice ? slots[0] : slots[1], `${key} is in its client's slot`);
  }

  const mgetCalls = async (): Promise<number> => {
    let calls = 0;
    for (const admin of admins) {
      const stats = String(await admin.call("INFO", "commandstats"));
      calls += Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    }
    return calls;
  };
  const before = await mgetCalls();
  mock.enqueue(CHAT_ROUTE, nextTurnChecked());
  const answer = await client(b, "key-alice").messages.create({
    ...MESSAGES_REQUEST,
    messages: [
      QUESTION,
      { role: "assistant", content: firstOfAlice.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
    ],
  });
  assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
  assert.deepEqual(sentAssistant(chatRequests(mock)[2])?.reasoning_details, DETAILS);
  assert.equal(await mgetCalls(), before + 1, "the other replica's look-up is one MGET");
});

test("a history naming one kept call id many times is given its array once, not once per message", async (t) => {
  // Each assistant message naming the call got the kept array (~300 KB) again: 200 copies of one small turn made the
  // upstream request 60 MB, and with Redis an MGET of 200 equal keys read the value 200 times. A hostile client could
  // so turn one kept array into a request of gigabytes.
  const { mock, gateway } = await scene(t);
  let sentBytes = 0;
  let sentArrays = 0;
  mock.enqueue(CHAT_ROUTE, longThinkingTurn(false), {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      sentBytes = request.bodyBytes.length;
      const messages = (request.body as { messages: SentAssistant[] }).messages;
      sentArrays = messages.filter((message) => message.reasoning_details !== undefined).length;
      const isLastGiven = isDeepStrictEqual(
        messages.findLast((m) => m.role === "assistant")?.reasoning_details,
        LONG_THINKING,
      );
      response.writeHead(isLastGiven ? 200 : 400, { "content-type": "application/json" });
      response.end(JSON.stringify(isLastGiven ? chatCompletion("Sunny in Paris.", MODEL_ID) : REFUSAL));
    },
  });
  const content = await messagesFirstTurn(gateway, false);
  const turns = Array.from({ length: 200 }, () => [
    { role: "assistant" as const, content },
    { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: CALL_ID, content: "sunny" }] },
  ]).flat();
  const answer = await new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }).messages.create({
    ...MESSAGES_REQUEST,
    messages: [QUESTION, ...turns],
  });
  assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
  assert.equal(sentArrays, 1, "the array goes back once, with the latest message naming the call");
  assert.ok(sentBytes < 2_000_000, `the upstream request is ${sentBytes} bytes`);
});
