// The prompt estimate is the body actually sent, the same figure wherever a door shows it (docs/limits.md "Token
// estimation", docs/protocols.md "Estimated usage"):
// - after a host refused `reasoning_content` (lesson `message_order:reasoning_content`, the field removed before the
//   send), the estimate no longer counts the reasoning it is not sent. Before, it did: the reservation, the
//   calibration's estimate and the client's estimated usage were too high on every request of a long agent loop;
// - a Messages stream's `message_start` shows the prompt count its estimated final usage shows (calibrated for the
//   serving deployment from its provider's reports). Before, `message_start` showed the plain estimate.
import assert from "node:assert/strict";
import { test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { ManualClock } from "../../src/clock.ts";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, rowOf, statsOf } from "../helpers/e2e.ts";
import { startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { startTwoProviders, CHAT_ROUTE as TWO_CHAT_ROUTE, MODEL as TWO_MODEL } from "../helpers/two-providers.ts";

const UPSTREAM_ID = "vendor/m-think";
const MODEL = "m";
/** Long reasoning sent back: a few hundred estimated tokens, so counting it or not shows. */
const REASONING = Array.from({ length: 120 }, (_, index) => `step ${index}: check the weather tool's answer`).join(" ");
const WEATHER_TOOL = {
  type: "function" as const,
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};

function answerWithoutUsage(text: string): MockStep {
  const { usage: _reported, ...answer } = chatCompletion(text, UPSTREAM_ID);
  return { kind: "json", body: answer };
}

function sentPrompt(body: unknown): number {
  const { messages, tools } = body as { messages: unknown[]; tools?: unknown };
  return estimateChatPrompt(messages, tools).promptTokens;
}

test("after a host refused reasoning_content, the estimate is of the body sent without it", async (t) => {
  const { mock, gateway, client } = await oneProviderScene(t, { id: UPSTREAM_ID });
  const refusal =
    "messages.1.assistant.reasoning_content: property 'messages.1.assistant.reasoning_content' is unsupported";
  mock.enqueue(CHAT_ROUTE, {
    kind: "json",
    status: 400,
    body: { message: refusal, type: "invalid_request_error", param: "validation_error", code: "wrong_api_format" },
  });
  // No usage reported: nothing calibrates, so the estimate the client is told is the plain one.
  mock.enqueue(CHAT_ROUTE, answerWithoutUsage("Fine."));
  mock.enqueue(CHAT_ROUTE, answerWithoutUsage("Still fine."));
  const messages = [
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: null,
      reasoning_content: REASONING,
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_1", content: "sunny" },
  ];
  const request = { model: MODEL, tools: [WEATHER_TOOL], messages } as unknown as Parameters<
    typeof client.chat.completions.create
  >[0] & { stream?: false };
  await client.chat.completions.create(request);
  const learned = rowOf(await statsOf(gateway), "alpha/m").refused_features.map((entry) => entry.feature);
  assert.deepEqual(learned, ["message_order:reasoning_content"]);
  const answer = await client.chat.completions.create(request);
  const sent = chatRequests(mock)[2]?.body as { messages: { reasoning_content?: unknown }[] };
  assert.ok(
    sent.messages.every((message) => message.reasoning_content === undefined),
    "sent without it",
  );
  const withReasoning = estimateChatPrompt(messages, [WEATHER_TOOL]).promptTokens;
  const withoutReasoning = sentPrompt(sent);
  assert.ok(withReasoning - withoutReasoning > 100, `${withReasoning} vs ${withoutReasoning}`);
  assert.equal(answer.usage?.prompt_tokens, withoutReasoning, "the estimate of what was sent");
});

test("after the lesson, the deployment's tpm is charged the prompt it is sent, without the reasoning", async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  // Only the prompt is reserved (count_max_tokens: false); a success without usage is charged the estimate of the prompt
  // sent plus its answer (docs/limits.md "Reconciliation").
  const scene = await startScene(t, {
    clock,
    beta: false,
    alpha: { count_max_tokens: false },
    alphaModel: { limits: { tpm: 1_000_000 } },
  });
  const refusal = "messages.1.reasoning_content: Extra inputs are not permitted";
  scene.alpha.enqueue(CHAT_ROUTE, {
    kind: "json",
    status: 400,
    body: { error: { message: refusal, type: "invalid_request_error", param: null, code: null } },
  });
  scene.alpha.enqueue(CHAT_ROUTE, answerWithoutUsage("Fine."));
  scene.alpha.enqueue(CHAT_ROUTE, answerWithoutUsage("Still fine."));
  const messages = [
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: null,
      reasoning_content: REASONING,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
    },
    { role: "tool", tool_call_id: "call_1", content: "sunny" },
  ];
  assert.equal((await scene.chat({ messages })).status, 200);
  const usedBefore = windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute").used;
  assert.equal((await scene.chat({ messages })).status, 200);
  const usedAfter = windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute").used;
  const sent = chatRequests(scene.alpha)[2]?.body as { messages: { reasoning_content?: unknown }[] };
  assert.ok(
    sent.messages.every((message) => message.reasoning_content === undefined),
    "sent without it",
  );
  assert.equal(usedAfter - usedBefore, sentPrompt(sent) + countTextTokens("Still fine."), "charged what was sent");
});

test("a Messages stream's message_start shows the calibrated prompt count its estimated usage ends with", async (t) => {
  const { mock, gateway, client } = await oneProviderScene(t, { id: UPSTREAM_ID });
  // Teach alpha's factor: a prompt of ~1,500 estimated tokens its provider counts as half.
  const long = Array.from({ length: 500 }, (_, index) => `word${index % 7 === 0 ? "s" : ""} of text`).join(" ");
  const teaching = [{ role: "user" as const, content: long }];
  const halved = Math.round(estimateChatPrompt(teaching, undefined).promptTokens / 2);
  mock.enqueue(CHAT_ROUTE, {
    kind: "json",
    body: chatCompletion("ok", UPSTREAM_ID, { prompt_tokens: halved, completion_tokens: 1 }),
  });
  await client.chat.completions.create({ model: MODEL, messages: teaching });
  const factor = (rowOf(await statsOf(gateway), "alpha/m") as unknown as { prompt_token_factor: number })
    .prompt_token_factor;
  assert.ok(factor < 0.9, `factor ${factor}`);

  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hello", " there"], UPSTREAM_ID) });
  const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
  const stream = anthropic.messages.stream({
    model: MODEL,
    max_tokens: 100,
    messages: [{ role: "user", content: long }],
  });
  let startTokens: number | undefined;
  let deltaTokens: number | undefined;
  stream.on("streamEvent", (event) => {
    if (event.type === "message_start") startTokens = event.message.usage.input_tokens;
    if (event.type === "message_delta") deltaTokens = event.usage.input_tokens ?? undefined;
  });
  const final = await stream.finalMessage();
  const plain = sentPrompt(chatRequests(mock)[1]?.body);
  assert.ok(startTokens !== undefined && deltaTokens !== undefined);
  assert.equal(final.usage.input_tokens, deltaTokens);
  assert.ok(deltaTokens < plain, `calibrated ${deltaTokens} below the plain ${plain}`);
  assert.equal(startTokens, deltaTokens, "message_start and the estimated final usage agree");
});

test("a continued Messages stream: the final prompt count is the calibrated one message_start showed", async (t) => {
  // A prefill continuation's usage is combined with the original prompt (docs/streaming.md "Usage"): when the cut
  // stream never reported it, the gateway's estimate. Before, that was the plain estimate while message_start showed
  // the calibrated one: the Anthropic SDK's final message (Claude Code's context meter) contradicted message_start.
  const scene = await startTwoProviders(t);
  const long = Array.from({ length: 500 }, (_, index) => `word${index % 7 === 0 ? "s" : ""} of text`).join(" ");
  const teaching = [{ role: "user" as const, content: long }];
  const halved = Math.round(estimateChatPrompt(teaching, undefined).promptTokens / 2);
  scene.primary.enqueue(TWO_CHAT_ROUTE, {
    kind: "json",
    body: chatCompletion("ok", TWO_MODEL, { prompt_tokens: halved, completion_tokens: 1 }),
  });
  await scene.client.chat.completions.create({ model: TWO_MODEL, messages: teaching });
  const factor = (rowOf(await statsOf(scene.gateway), "alpha/m") as unknown as { prompt_token_factor: number })
    .prompt_token_factor;
  assert.ok(factor < 0.9, `factor ${factor}`);

  const words = ["Hello", " there", " friend", "."];
  // Alpha is cut after two words, without a usage; beta continues the prefill and reports its own usage.
  scene.primary.enqueue(TWO_CHAT_ROUTE, {
    kind: "sse",
    events: chatStream(words.slice(0, 2), TWO_MODEL).slice(0, 3),
    end: "destroy",
  });
  scene.backup.enqueue(TWO_CHAT_ROUTE, {
    kind: "sse",
    events: chatStream(words.slice(2), TWO_MODEL, { usage: { prompt_tokens: 9999, completion_tokens: 2 } }),
  });
  const anthropic = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
  const stream = anthropic.messages.stream({
    model: TWO_MODEL,
    max_tokens: 100,
    messages: [{ role: "user", content: long }],
  });
  let startTokens: number | undefined;
  stream.on("streamEvent", (event) => {
    if (event.type === "message_start") startTokens = event.message.usage.input_tokens;
  });
  const final = await stream.finalMessage();
  assert.equal(final.content[0]?.type === "text" ? final.content[0].text : "", words.join(""));
  assert.equal(scene.backup.requests.length, 1, "beta continued it");
  const plain = sentPrompt(chatRequests(scene.primary)[1]?.body);
  assert.ok(startTokens !== undefined && startTokens < plain, `calibrated ${startTokens} below the plain ${plain}`);
  assert.equal(final.usage.input_tokens, startTokens, "message_start and the final usage agree");
});

test("failover from a host that refused reasoning_content to one that takes it: each reserves its own body", async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const tpm = { limits: { tpm: 1_000_000 } };
  const scene = await startScene(t, {
    clock,
    alpha: { count_max_tokens: false },
    alphaModel: tpm,
    beta: { count_max_tokens: false },
    betaModel: tpm,
  });
  const messages = [
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: null,
      reasoning_content: REASONING,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
    },
    { role: "tool", tool_call_id: "call_1", content: "sunny" },
  ];
  // Alpha refuses the field (learned) and answers without it.
  scene.alpha.enqueue(CHAT_ROUTE, {
    kind: "json",
    status: 400,
    body: {
      error: {
        message: "messages.1.reasoning_content: Extra inputs are not permitted",
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    },
  });
  scene.alpha.enqueue(CHAT_ROUTE, answerWithoutUsage("Fine."));
  assert.equal((await scene.chat({ messages })).status, 200);
  const tokensUsed = async (provider: "alpha" | "beta"): Promise<number> =>
    windowOf(await scene.stats(provider), `deployment:${provider}/m`, "tokens", "minute").used;
  const alphaBefore = await tokensUsed("alpha");
  // Now alpha fails (it was sent the body without the reasoning), and beta, which takes it, answers.
  scene.alpha.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
  scene.beta.enqueue(CHAT_ROUTE, answerWithoutUsage("Still fine."));
  const response = await scene.chat({ messages });
  assert.equal(response.status, 200, response.text);
  const alphaSent = chatRequests(scene.alpha)[2]?.body as { messages: { reasoning_content?: unknown }[] };
  const betaSent = chatRequests(scene.beta)[0]?.body as { messages: { reasoning_content?: unknown }[] };
  assert.ok(alphaSent.messages.every((message) => message.reasoning_content === undefined));
  assert.equal(betaSent.messages[1]?.reasoning_content, REASONING, "beta is sent the reasoning");
  assert.equal(await tokensUsed("alpha"), alphaBefore, "alpha's failed attempt charges nothing");
  const full = sentPrompt(betaSent);
  assert.ok(full - sentPrompt(alphaSent) > 100);
  assert.equal(
    await tokensUsed("beta"),
    full + countTextTokens("Still fine."),
    "beta is charged the body it was sent, reasoning included, and its answer",
  );
  const usage = (JSON.parse(response.text) as { usage: { prompt_tokens: number } }).usage;
  assert.equal(usage.prompt_tokens, full, "the estimate the client is told is of beta's body");
});
