// Gemini 3's thought signatures through the doors that have no place for them (docs/protocols.md "Thought
// signatures"): Google's OpenAI-compatible API puts `extra_content.google.thought_signature` on each tool call it
// answers and refuses the next turn with a 400 when the assistant tool call comes back without it. The Anthropic SDK
// (Claude Code) and the OpenAI Responses client (Codex) send back `tool_use` blocks and `function_call` items: the
// gateway keeps the signature by call id and puts it back. The upstream here plays Gemini 3: it signs its calls and
// refuses a history whose call lacks the signature with Gemini's own 400 body.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI, { toFile } from "openai";
import { finished } from "../helpers/background-steps.ts";
import { CHAT_ROUTE, chatRequests, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import {
  chatCompletion,
  type MockStep,
  type MockUpstream,
  type RecordedRequest,
  type SseScript,
} from "../helpers/mock-upstream.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import {
  otherFirstYaml,
  redisLookUps,
  redisStateYaml,
  restartedBetween,
  stateFilePath,
  twoReplicas,
} from "../helpers/replica-scenes.ts";
import { responsesToolLoop } from "../helpers/responses-tool-loop.ts";

const GEMINI_ID = "gemini-3-pro-preview";
const SIGNATURE = "CiQB0e2Kb7uNsignedThoughtsOfTurnOne==";
const CALL_ID = "function-call-7781";
const FALLBACK = "skip_thought_signature_validator";

/** Gemini's 400 for a history whose function call lacks its signature (as its OpenAI-compatible API sends it). */
const MISSING_SIGNATURE_BODY = [
  {
    error: {
      code: 400,
      message:
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:get_weather` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
      status: "INVALID_ARGUMENT",
    },
  },
];

const SIGNED_CALL = {
  id: CALL_ID,
  type: "function",
  function: { name: "get_weather", arguments: '{"city":"Paris"}' },
  extra_content: { google: { thought_signature: SIGNATURE } },
};

function signedCallCompletion(): unknown {
  return {
    id: "gemini-1",
    object: "chat.completion",
    created: 1767225600,
    model: GEMINI_ID,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: null, tool_calls: [SIGNED_CALL] },
        finish_reason: "tool_calls",
      },
    ],
    usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
  };
}

/** As Gemini streams a call: whole, in one chunk, with its signature. */
function signedCallStream(): SseScript[] {
  const chunk = (delta: unknown, finishReason: string | null = null, usage?: unknown) => ({
    data: {
      id: "gemini-1",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: GEMINI_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...(usage === undefined ? {} : { usage }),
    },
  });
  return [
    chunk({ role: "assistant", tool_calls: [SIGNED_CALL] }),
    chunk({}, "tool_calls", { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 }),
  ];
}

function firstTurn(isStream: boolean): MockStep {
  return isStream ? { kind: "sse", events: signedCallStream() } : { kind: "json", body: signedCallCompletion() };
}

interface SentCall {
  id?: string;
  extra_content?: { google?: { thought_signature?: string } };
}

function sentCalls(request: RecordedRequest | undefined): SentCall[] {
  const messages = (request?.body as { messages?: { role: string; tool_calls?: SentCall[] }[] } | undefined)?.messages;
  return (messages ?? []).flatMap((message) => (message.role === "assistant" ? (message.tool_calls ?? []) : []));
}

/** Gemini 3's next turn: refused with its 400 unless the history's first call is signed; else the final answer. */
function nextTurnChecked(): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const signature = sentCalls(request)[0]?.extra_content?.google?.thought_signature;
      if (typeof signature !== "string" || signature === "") {
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify(MISSING_SIGNATURE_BODY));
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("Sunny in Paris.", GEMINI_ID)));
    },
  };
}

function geminiYaml(mock: MockUpstream, state = ""): string {
  // The `gemini` preset pointed at the mock: what tells the gateway the deployment is Gemini's.
  return `providers:
  - preset: gemini
    base_url: ${mock.baseUrl}
    api_key: g-test
    retries: 0
    models:
      m: { id: ${GEMINI_ID} }
${state}`;
}

async function geminiScene(t: TestContext): Promise<{ mock: MockUpstream; gateway: TestGateway }> {
  const mock = await useMock(t);
  return { mock, gateway: await useGateway(t, geminiYaml(mock)) };
}

/** The Anthropic SDK's tool loop: the first turn on `first`, the tool's result sent on `second`. */
async function toolLoop(first: TestGateway, second: TestGateway): Promise<string> {
  const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const answered = await new Anthropic({ baseURL: first.url, apiKey: "x", maxRetries: 0 }).messages.create({
    ...request,
    messages: [question],
  });
  const answer = await new Anthropic({ baseURL: second.url, apiKey: "x", maxRetries: 0 }).messages.create({
    ...request,
    messages: [
      question,
      { role: "assistant", content: answered.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
    ],
  });
  return answer.content[0]?.type === "text" ? answer.content[0].text : "";
}

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

describe("Anthropic SDK (Claude Code) in front of Gemini 3: a two-turn tool loop", () => {
  for (const isStream of [false, true]) {
    test(`the call's signature goes back on the next turn${isStream ? " (streamed first turn)" : ""}`, async (t) => {
      const { mock, gateway } = await geminiScene(t);
      mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
      const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
      const question = { role: "user" as const, content: "Weather in Paris?" };
      const first = isStream
        ? await client.messages.stream({ ...request, messages: [question] }).finalMessage()
        : await client.messages.create({ ...request, messages: [question] });
      const call = first.content.find((block) => block.type === "tool_use");
      assert.equal(call?.id, CALL_ID);
      assert.equal(
        JSON.stringify(first).includes("extra_content"),
        false,
        "nothing of Google's in the Anthropic answer",
      );
      const answer = await client.messages.create({
        ...request,
        messages: [
          question,
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
        ],
      });
      assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
      assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
    });
  }
});

describe("OpenAI Responses client (Codex) in front of Gemini 3: a two-turn tool loop, items rebuilt", () => {
  for (const isStream of [false, true]) {
    test(`the call's signature goes back on the next turn${isStream ? " (streamed first turn)" : ""}`, async (t) => {
      const { mock, gateway } = await geminiScene(t);
      mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
      assert.equal(await responsesToolLoop(gateway, isStream, CALL_ID), "Sunny in Paris.");
      assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
    });
  }
});

test("Responses with previous_response_id: the kept answer's call goes back signed", async (t) => {
  const { mock, gateway } = await geminiScene(t);
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  const tools = [
    { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: {} }, strict: false },
  ];
  const first = await client.responses.create({ model: "m", tools, input: "Weather in Paris?" });
  const answer = await client.responses.create({
    model: "m",
    tools,
    previous_response_id: first.id,
    input: [{ type: "function_call_output", call_id: CALL_ID, output: "sunny" }],
  });
  assert.equal(answer.output_text, "Sunny in Paris.");
  assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
});

for (const isStream of [false, true]) {
  test(`Responses background run${isStream ? " (streamed)" : ""}: the call's signature is kept too`, async (t) => {
    const { mock, gateway } = await geminiScene(t);
    mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
    assert.equal(await responsesToolLoop(gateway, isStream, CALL_ID, { isBackground: true }), "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
  });
}

for (const isStream of [false, true]) {
  test(`a restart between turns: the embedded state file gives the call its real signature back${isStream ? " (streamed first turn)" : ""}`, async (t) => {
    // A gateway restarted (a deploy, a config change that needs one) while Claude Code runs a tool: the next turn
    // used to get the fallback, as the signatures lived in the process only.
    const mock = await useMock(t);
    mock.enqueue(CHAT_ROUTE, firstTurn(isStream), nextTurnChecked());
    const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
    const question = { role: "user" as const, content: "Weather in Paris?" };
    const { after, first } = await restartedBetween(
      t,
      (state) => geminiYaml(mock, state),
      (before) => {
        const onBefore = new Anthropic({ baseURL: before.url, apiKey: "x", maxRetries: 0 });
        return isStream
          ? onBefore.messages.stream({ ...request, messages: [question] }).finalMessage()
          : onBefore.messages.create({ ...request, messages: [question] });
      },
    );
    const answer = await new Anthropic({ baseURL: after.url, apiKey: "x", maxRetries: 0 }).messages.create({
      ...request,
      messages: [
        question,
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
      ],
    });
    assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
  });
}

test("a call the gateway never saw (a restart, an eviction) goes to Gemini with Google's fallback signature", async (t) => {
  const { mock, gateway } = await geminiScene(t);
  mock.enqueue(CHAT_ROUTE, nextTurnChecked());
  const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
  const answer = await client.messages.create({
    model: "m",
    max_tokens: 1000,
    tools: [WEATHER_TOOL],
    messages: [
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "toolu_old_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_old_2", name: "get_weather", input: { city: "Rome" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_old_1", content: "sunny" },
          { type: "tool_result", tool_use_id: "toolu_old_2", content: "rainy" },
        ],
      },
    ],
  });
  assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
  const calls = sentCalls(chatRequests(mock)[0]);
  assert.deepEqual(calls[0]?.extra_content, { google: { thought_signature: FALLBACK } });
  assert.equal(calls[1]?.extra_content, undefined, "Google signs the first call of a parallel step only");
});

test("a provider that is not Gemini gets no extra_content, even from a chat client that sent it", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: vendor/m-instruct }
`,
  );
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", "vendor/m-instruct") });
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  await client.chat.completions.create({
    model: "m",
    messages: [
      { role: "user", content: "Weather in Paris?" },
      // The OpenAI SDK's types have no extra_content: a client talking to Gemini through the gateway sends it back.
      { role: "assistant", content: null, tool_calls: [SIGNED_CALL as OpenAI.ChatCompletionMessageToolCall] },
      { role: "tool", tool_call_id: CALL_ID, content: "sunny" },
    ],
  });
  const sent = chatRequests(mock)[0];
  assert.equal(sentCalls(sent)[0]?.id, CALL_ID);
  assert.equal(sent?.bodyText.includes("extra_content"), false, sent?.bodyText);
});

test("a chat client's own signature reaches Gemini as it sent it", async (t) => {
  const { mock, gateway } = await geminiScene(t);
  mock.enqueue(CHAT_ROUTE, nextTurnChecked());
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  const answer = await client.chat.completions.create({
    model: "m",
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [SIGNED_CALL as OpenAI.ChatCompletionMessageToolCall] },
      { role: "tool", tool_call_id: CALL_ID, content: "sunny" },
    ],
  });
  assert.equal(answer.choices[0]?.message.content, "Sunny in Paris.");
  assert.deepEqual(sentCalls(chatRequests(mock)[0])[0]?.extra_content, SIGNED_CALL.extra_content);
});

describe("with Redis: the next turn served by another replica gets the signature the first one kept", () => {
  test("one Redis server", { skip: isRedisInstalled() ? false : REDIS_MISSING }, async (t) => {
    const mock = await useMock(t);
    const { a, b } = await twoReplicas(t, (state) => geminiYaml(mock, state), "sig-e2e:");
    mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    assert.equal(await toolLoop(a, b), "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
  });

  for (const isStream of [false, true]) {
    test(`the answer waits for the shared write: a next turn at once on the other replica finds it${isStream ? " (streamed first turn)" : ""}`, {
      skip: isRedisInstalled() ? false : REDIS_MISSING,
    }, async (t) => {
      // The answer used to go out before its SET landed: an agent's next turn sent to another replica at once (a
      // quick tool) looked first and got the fallback. Redis's writes are held here (CLIENT PAUSE ... WRITE, reads
      // still served) from the moment the upstream answers turn 1, for less than the gateway's bound: the answer
      // must wait for them, and replica B must then read the real signature.
      const mock = await useMock(t);
      const { redis, a, b } = await twoReplicas(t, (state) => geminiYaml(mock, state), "sig-wait:");
      const { admin } = await redisLookUps(t, redis.url);
      const answered = firstTurn(isStream);
      const pausedFirstTurn: MockStep = {
        kind: "handler",
        handle: async (_request, response) => {
          await admin.call("CLIENT", "PAUSE", "80", "WRITE");
          if (answered.kind === "sse") {
            response.writeHead(200, { "content-type": "text/event-stream" });
            for (const event of answered.events)
              response.write(`data: ${JSON.stringify((event as { data: unknown }).data)}\n\n`);
            response.end("data: [DONE]\n\n");
          } else if (answered.kind === "json") {
            response.writeHead(200, { "content-type": "application/json" });
            response.end(JSON.stringify(answered.body));
          }
        },
      };
      mock.enqueue(CHAT_ROUTE, pausedFirstTurn, nextTurnChecked());
      const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
      const question = { role: "user" as const, content: "Weather in Paris?" };
      const onA = new Anthropic({ baseURL: a.url, apiKey: "x", maxRetries: 0 });
      const first = isStream
        ? await onA.messages.stream({ ...request, messages: [question] }).finalMessage()
        : await onA.messages.create({ ...request, messages: [question] });
      const onB = new Anthropic({ baseURL: b.url, apiKey: "x", maxRetries: 0 });
      const answer = await onB.messages.create({
        ...request,
        messages: [
          question,
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: "sunny" }] },
        ],
      });
      assert.equal(answer.content[0]?.type === "text" ? answer.content[0].text : "", "Sunny in Paris.");
      assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
    });
  }

  test("the shared look-up is made for a Gemini candidate only: none when another serves, one on a failover to Gemini", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    // Replica B serves the request on another provider first, Gemini second. A Claude Code turn whose call B
    // never answered used to cost an MGET whoever served it; the other provider takes no signature, so none is
    // needed. When that provider fails, the failover to Gemini makes the look-up then and sends the real signature.
    const gemini = await useMock(t);
    const other = await useMock(t);
    const redis = await useRedisServer(t);
    const { mgetCalls } = await redisLookUps(t, redis.url);
    const state = redisStateYaml(redis.url, "sig-lazy:");
    const a = await useGateway(t, geminiYaml(gemini, state));
    const geminiPreset = { name: "gemini", mock: gemini, apiKey: "g-test", modelId: GEMINI_ID };
    const b = await useGateway(t, otherFirstYaml(other, geminiPreset, state));
    gemini.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
    const question = { role: "user" as const, content: "Weather in Paris?" };
    const first = await new Anthropic({ baseURL: a.url, apiKey: "x", maxRetries: 0 }).messages.create({
      ...request,
      messages: [question],
    });
    const history = [
      question,
      { role: "assistant" as const, content: first.content },
      { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: CALL_ID, content: "sunny" }] },
    ];
    const onB = new Anthropic({ baseURL: b.url, apiKey: "x", maxRetries: 0 });
    // The other provider first, Gemini as the fallback (a comma list keeps its order).
    const onBRequest = { ...request, model: "o,m", messages: history };
    const before = await mgetCalls();
    other.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", "vendor/m-instruct") });
    const served = await onB.messages.create(onBRequest);
    assert.equal(served.content[0]?.type === "text" ? served.content[0].text : "", "Fine.");
    assert.equal(await mgetCalls(), before, "no look-up for a request served by a provider that is not Gemini");
    assert.equal(chatRequests(other)[0]?.bodyText.includes("extra_content"), false);

    other.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const failedOver = await onB.messages.create(onBRequest);
    assert.equal(failedOver.content[0]?.type === "text" ? failedOver.content[0].text : "", "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(gemini)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
    assert.equal(await mgetCalls(), before + 1, "one look-up, for the Gemini attempt");
  });

  test("Redis down: the loop still works, the other replica sends the fallback", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    const { redis, a, b } = await twoReplicas(t, (state) => geminiYaml(mock, state), "sig-down:");
    await redis.kill();
    mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    assert.equal(await toolLoop(a, b), "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, { google: { thought_signature: FALLBACK } });
    // The replica that answered the call still has it in memory.
    mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    assert.equal(await toolLoop(a, a), "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[3])[0]?.extra_content, SIGNED_CALL.extra_content);
  });

  test("a Redis Cluster", { skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING }, async (t) => {
    const mock = await useMock(t);
    const cluster = await useRedisCluster(t);
    const yaml = geminiYaml(mock, redisStateYaml(cluster.url, "sig-e2e:", { isCluster: true }));
    const [a, b] = [await useGateway(t, yaml), await useGateway(t, yaml)];
    mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
    assert.equal(await toolLoop(a, b), "Sunny in Paris.");
    assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
  });
});

test("a call id is the client's own: another client sending the same id does not get its signature", async (t) => {
  // Call ids come back from the client: one that sends another's (seen in a shared log) must not have that
  // session's signature (its encrypted reasoning) sent with its own history. It gets the fallback, as for a call the
  // gateway never saw; the owner still gets its own.
  const mock = await useMock(t);
  const keys = `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: alice-key-0001, name: alice }
    - { key: mallory-key-0001, name: mallory }
`;
  const gateway = await useGateway(t, keys + geminiYaml(mock));
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked(), nextTurnChecked());
  const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const alice = new Anthropic({ baseURL: gateway.url, apiKey: "alice-key-0001", maxRetries: 0 });
  const first = await alice.messages.create({ ...request, messages: [question] });
  const history = [
    question,
    { role: "assistant" as const, content: first.content },
    { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: CALL_ID, content: "sunny" }] },
  ];
  const mallory = new Anthropic({ baseURL: gateway.url, apiKey: "mallory-key-0001", maxRetries: 0 });
  await mallory.messages.create({ ...request, messages: history });
  assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, {
    google: { thought_signature: FALLBACK },
  });
  await alice.messages.create({ ...request, messages: history });
  assert.deepEqual(sentCalls(chatRequests(mock)[2])[0]?.extra_content, SIGNED_CALL.extra_content);
});

test("a Gemini model behind a proxy (a custom provider, not Google's host) still gets a chat client's own signature", async (t) => {
  // LiteLLM, Cloudflare AI Gateway, a company proxy: Gemini 3 refuses the turn without the signature the chat client
  // sent back, so a `gemini` model id elsewhere keeps the client's `extra_content` as it came (no fallback added).
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: proxy
    base_url: ${mock.baseUrl}
    api_key: p-test
    retries: 0
    models:
      m: { id: ${GEMINI_ID} }
`,
  );
  mock.enqueue(CHAT_ROUTE, nextTurnChecked());
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  const answer = await client.chat.completions.create({
    model: "m",
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [SIGNED_CALL as OpenAI.ChatCompletionMessageToolCall] },
      { role: "tool", tool_call_id: CALL_ID, content: "sunny" },
    ],
  });
  assert.equal(answer.choices[0]?.message.content, "Sunny in Paris.");
  assert.deepEqual(sentCalls(chatRequests(mock)[0])[0]?.extra_content, SIGNED_CALL.extra_content);
});

test("OpenRouter's reasoning_details (its Gemini signatures) go both ways through the chat door as they are", async (t) => {
  // OpenRouter puts a Gemini model's signatures in the assistant message's `reasoning_details` and wants them back
  // unmodified (docs/protocols.md "Thought signatures"): a chat client that keeps them must find them in the answer,
  // and its next turn must reach the upstream with them.
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: openrouter-like
    base_url: ${mock.baseUrl}
    api_key: or-test
    retries: 0
    models:
      m: { id: google/gemini-3-pro-preview }
`,
  );
  const details = [{ type: "reasoning.encrypted", data: SIGNATURE, id: CALL_ID, format: "google-gemini-v1", index: 0 }];
  const answered = signedCallCompletion() as { choices: { message: Record<string, unknown> }[] };
  const message = answered.choices[0]?.message ?? {};
  const { extra_content: _google, ...call } = SIGNED_CALL;
  message.tool_calls = [call];
  message.reasoning_details = details;
  mock.enqueue(
    CHAT_ROUTE,
    { kind: "json", body: answered },
    {
      kind: "json",
      body: chatCompletion("Sunny in Paris.", "google/gemini-3-pro-preview"),
    },
  );
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const first = await client.chat.completions.create({ model: "m", messages: [question] });
  const kept = first.choices[0]?.message as unknown as { reasoning_details?: unknown };
  assert.deepEqual(kept.reasoning_details, details);
  await client.chat.completions.create({
    model: "m",
    messages: [
      question,
      first.choices[0]?.message as OpenAI.ChatCompletionAssistantMessageParam,
      { role: "tool", tool_call_id: CALL_ID, content: "sunny" },
    ],
  });
  const sent = chatRequests(mock)[1]?.body as
    | { messages?: { role: string; reasoning_details?: unknown }[] }
    | undefined;
  const assistant = sent?.messages?.find((entry) => entry.role === "assistant");
  assert.deepEqual(assistant?.reasoning_details, details);
});

test("with Redis, a Gemini model behind a proxy gets the signature another replica kept", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  // LiteLLM, Cloudflare AI Gateway, a company proxy: the history goes there as it is, `extra_content` included and no
  // fallback (it may be Gemini underneath, which refuses the turn without the signature). The shared look-up must be
  // made for such a deployment too: replica B never answered the call, only Redis holds its signature.
  const mock = await useMock(t);
  const proxyYaml = (state: string) => `providers:
  - name: proxy
    base_url: ${mock.baseUrl}
    api_key: p-test
    retries: 0
    models:
      m: { id: ${GEMINI_ID} }
${state}`;
  const { a, b } = await twoReplicas(t, proxyYaml, "sig-proxy:");
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked());
  assert.equal(await toolLoop(a, b), "Sunny in Paris.");
  assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
});

test("with Redis, a background run and a batch line on the other replica get the signature the first one kept, one look-up each", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  // The shared look-up is made inside the attempts now (ForwardRequest.recallToolCallExtras): a background run and a
  // batch line of the Responses door reach the pipeline by their own paths, which must carry it too.
  const mock = await useMock(t);
  const redis = await useRedisServer(t);
  const { mgetCalls } = await redisLookUps(t, redis.url);
  // Each replica its own: one that looked a call up in Redis keeps it in memory, and would not look again.
  const replica = () =>
    useGateway(t, geminiYaml(mock, redisStateYaml(redis.url, "sig-paths:", { path: stateFilePath("sig-paths") })));
  const [a, b, c] = [await replica(), await replica(), await replica()];
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked(), nextTurnChecked());
  const tools = [
    { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: {} }, strict: false },
  ];
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const first = await new OpenAI({ baseURL: a.baseUrl, apiKey: "x", maxRetries: 0 }).responses.create({
    model: "m",
    store: false,
    tools,
    input: [question],
  });
  const call = first.output.find((item) => item.type === "function_call");
  assert.equal(call?.call_id, CALL_ID);
  const input = [
    question,
    { type: "function_call" as const, call_id: CALL_ID, name: "get_weather", arguments: call?.arguments ?? "{}" },
    { type: "function_call_output" as const, call_id: CALL_ID, output: "sunny" },
  ];
  const onB = new OpenAI({ baseURL: b.baseUrl, apiKey: "x", maxRetries: 0 });
  const before = await mgetCalls();
  const run = await onB.responses.create({ model: "m", tools, input, background: true });
  const done = await finished(onB, run.id);
  assert.equal(done.output_text, "Sunny in Paris.", JSON.stringify(done.output));
  assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, SIGNED_CALL.extra_content);
  assert.equal(await mgetCalls(), before + 1);

  const onC = new OpenAI({ baseURL: c.baseUrl, apiKey: "x", maxRetries: 0 });
  const line = JSON.stringify({
    custom_id: "l1",
    method: "POST",
    url: "/v1/responses",
    body: { model: "m", tools, input },
  });
  const file = await onC.files.create({ file: await toFile(Buffer.from(line), "input.jsonl"), purpose: "batch" });
  const batch = await onC.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/responses",
    completion_window: "24h",
  });
  for (const deadline = Date.now() + 15_000; ; ) {
    const status = (await onC.batches.retrieve(batch.id)).status;
    if (status === "completed") break;
    assert.ok(Date.now() < deadline && !["failed", "expired", "cancelled"].includes(status), status);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(sentCalls(chatRequests(mock)[2])[0]?.extra_content, SIGNED_CALL.extra_content);
  assert.equal(await mgetCalls(), before + 2);
});

test("a call id is the client's own after a restart too: the state file keeps each client's signatures apart", async (t) => {
  // The embedded file gives the kept calls back after a restart: under their client's scope, as memory held them.
  const mock = await useMock(t);
  const yamlWith = (state: string) => `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: alice-key-0001, name: alice }
    - { key: mallory-key-0001, name: mallory }
${geminiYaml(mock, state)}`;
  mock.enqueue(CHAT_ROUTE, firstTurn(false), nextTurnChecked(), nextTurnChecked());
  const request = { model: "m", max_tokens: 1000, tools: [WEATHER_TOOL] };
  const question = { role: "user" as const, content: "Weather in Paris?" };
  const { after, first } = await restartedBetween(t, yamlWith, (before) =>
    new Anthropic({ baseURL: before.url, apiKey: "alice-key-0001", maxRetries: 0 }).messages.create({
      ...request,
      messages: [question],
    }),
  );
  const history = [
    question,
    { role: "assistant" as const, content: first.content },
    { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: CALL_ID, content: "sunny" }] },
  ];
  const mallory = new Anthropic({ baseURL: after.url, apiKey: "mallory-key-0001", maxRetries: 0 });
  await mallory.messages.create({ ...request, messages: history });
  assert.deepEqual(sentCalls(chatRequests(mock)[1])[0]?.extra_content, { google: { thought_signature: FALLBACK } });
  const alice = new Anthropic({ baseURL: after.url, apiKey: "alice-key-0001", maxRetries: 0 });
  await alice.messages.create({ ...request, messages: history });
  assert.deepEqual(sentCalls(chatRequests(mock)[2])[0]?.extra_content, SIGNED_CALL.extra_content);
});
