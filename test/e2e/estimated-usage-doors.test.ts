// An upstream that reports no usage (several OpenAI-compatible providers leave it out of JSON answers and ignore
// `stream_options.include_usage`), behind every door that speaks tokens: the legacy completions stream's usage chunk,
// the Responses object's `usage` (JSON and `response.completed`), the Messages `usage` (JSON and `message_delta`),
// and a chat JSON answer's `usage` are the gateway's estimate, marked `x_gateway.usage_estimated`, and the record
// says `isUsageEstimated` (docs/streaming.md "Usage chunks", docs/protocols.md "Estimated usage"). Before, the
// Responses door answered `usage: null`, the Messages door `output_tokens: 0`, and the others no usage at all: the
// Agents SDK's usage, the AI SDK's, Claude Code's context meter (the Anthropic SDK's final message) read nothing.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { Agent, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { generateText, streamText } from "ai";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { type ChatCompletionBody, chatCompletion, chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const COMPLETIONS_ROUTE = "POST /v1/completions";
const PROMPT = "Say hello to my friend.";
const WORDS = ["Hello", " there,", " friend", "!"];
const TEXT = WORDS.join("");
/** A stream's deltas are counted one by one, as the gateway counts the chunks it passed on. */
const STREAMED_TOKENS = WORDS.reduce((sum, word) => sum + countTextTokens(word), 0);
/** A JSON answer's text is counted whole. */
const ANSWER_TOKENS = countTextTokens(TEXT);

function streamWithoutUsage(): MockStep {
  return { kind: "sse", events: chatStream(WORDS, MODEL, { id: "chatcmpl-nousage" }) };
}

function answerWithoutUsage(): MockStep {
  const { usage: _reported, ...answer }: ChatCompletionBody = chatCompletion(TEXT, MODEL);
  return { kind: "json", body: answer };
}

/** A legacy completions stream as OpenAI sends it, without the usage chunk the client asked for. */
function completionStreamWithoutUsage(): MockStep {
  const chunk = (text: string, finishReason: string | null) => ({
    data: {
      id: "cmpl-nousage",
      object: "text_completion",
      created: 1767225600,
      model: MODEL,
      choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
    },
  });
  return { kind: "sse", events: [...WORDS.map((word) => chunk(word, null)), chunk("", "stop")] };
}

async function scene(t: TestContext): Promise<TwoProviders & { records: RequestRecord[] }> {
  const started = await startTwoProviders(t);
  const records: RequestRecord[] = [];
  started.gateway.runtime.onRecord((record) => records.push(record));
  return { ...started, records };
}

/** The prompt as the gateway estimated it: the chat messages it sent (a fresh gateway's calibration factor is 1). */
function promptTokensSent(scene: TwoProviders): number {
  const body = sentBody(scene.primary) as { messages: unknown[]; tools?: unknown };
  return estimateChatPrompt(body.messages, body.tools).promptTokens;
}

async function estimatedRecord(records: RequestRecord[]): Promise<RequestRecord> {
  await waitUntil(() => records.length === 1, "the request's record");
  const record = records[0] as RequestRecord;
  assert.equal(record.isUsageEstimated, true, "the record says its tokens are an estimate");
  return record;
}

describe("legacy completions: a stream that asked for usage gets the estimated usage chunk", () => {
  test("the openai SDK's last chunk: a text_completion usage chunk, marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(COMPLETIONS_ROUTE, completionStreamWithoutUsage());
    const stream = await s.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: Record<string, unknown>[] = [];
    let text = "";
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.text ?? "";
    }
    assert.equal(text, TEXT);
    const last = chunks.at(-1);
    const promptTokens = (await estimatedRecord(s.records)).tokensIn;
    assert.ok(promptTokens > 0);
    assert.deepEqual(last?.choices, []);
    assert.deepEqual(last?.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: STREAMED_TOKENS,
      total_tokens: promptTokens + STREAMED_TOKENS,
    });
    assert.deepEqual(last?.x_gateway, { usage_estimated: true });
    assert.equal(last?.object, "text_completion", "the legacy stream's own object");
    assert.equal(last?.id, "cmpl-nousage");
    assert.equal(last?.model, MODEL);
    assert.equal(s.records[0]?.tokensOut, STREAMED_TOKENS);
  });

  test("a JSON legacy completion without usage: the estimate, marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(COMPLETIONS_ROUTE, {
      kind: "json",
      body: {
        id: "cmpl-json",
        object: "text_completion",
        created: 1767225600,
        model: MODEL,
        choices: [{ text: TEXT, index: 0, logprobs: null, finish_reason: "stop" }],
      },
    });
    const completion = await s.client.completions.create({ model: MODEL, prompt: PROMPT });
    assert.equal(completion.choices[0]?.text, TEXT);
    const record = await estimatedRecord(s.records);
    assert.ok(record.tokensIn > 0);
    assert.deepEqual(completion.usage, {
      prompt_tokens: record.tokensIn,
      completion_tokens: ANSWER_TOKENS,
      total_tokens: record.tokensIn + ANSWER_TOKENS,
    });
    assert.deepEqual((completion as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
  });

  test("the AI SDK's completion model (it asks for usage): streamText's usage", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(COMPLETIONS_ROUTE, completionStreamWithoutUsage());
    const openai = createOpenAI({ baseURL: s.gateway.baseUrl, apiKey: "x" });
    const result = streamText({ model: openai.completion(MODEL), prompt: PROMPT, maxRetries: 0 });
    assert.equal(await result.text, TEXT);
    const usage = await result.usage;
    const record = await estimatedRecord(s.records);
    assert.equal(usage.inputTokens, record.tokensIn);
    assert.equal(usage.outputTokens, STREAMED_TOKENS);
  });
});

describe("chat JSON answers without usage get the estimate, marked", () => {
  test("the openai SDK: usage filled, x_gateway.usage_estimated beside it", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, answerWithoutUsage());
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.equal(completion.choices[0]?.message.content, TEXT);
    const promptTokens = promptTokensSent(s);
    assert.deepEqual(completion.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: ANSWER_TOKENS,
      total_tokens: promptTokens + ANSWER_TOKENS,
    });
    assert.deepEqual((completion as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
    const record = await estimatedRecord(s.records);
    assert.equal(record.tokensIn, promptTokens);
    assert.equal(record.tokensOut, ANSWER_TOKENS);
  });

  test("a reported usage is passed on as sent, not marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion(TEXT, MODEL, { prompt_tokens: 7, completion_tokens: 2 }),
    });
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.equal(completion.usage?.prompt_tokens, 7);
    assert.equal((completion as unknown as { x_gateway?: unknown }).x_gateway, undefined);
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.equal(s.records[0]?.isUsageEstimated, undefined);
    assert.equal(s.records[0]?.tokensOut, 2);
  });
});

describe("the Responses door: usage is the estimate, not null", () => {
  test("JSON (openai SDK responses.create): usage and x_gateway.usage_estimated", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, answerWithoutUsage());
    const response = await s.client.responses.create({ model: MODEL, input: PROMPT });
    assert.equal(response.output_text, TEXT);
    const promptTokens = promptTokensSent(s);
    assert.equal(response.usage?.input_tokens, promptTokens);
    assert.equal(response.usage?.output_tokens, ANSWER_TOKENS);
    assert.equal(response.usage?.total_tokens, promptTokens + ANSWER_TOKENS);
    assert.deepEqual((response as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
    const record = await estimatedRecord(s.records);
    assert.equal(record.tokensOut, ANSWER_TOKENS);
  });

  test("a stream (openai SDK responses.stream): response.completed carries the estimate, marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWithoutUsage());
    const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
    let completed: Record<string, unknown> | undefined;
    for await (const event of stream) {
      if (event.type === "response.completed") completed = event.response as unknown as Record<string, unknown>;
    }
    const final = await stream.finalResponse();
    assert.equal(final.output_text, TEXT);
    const promptTokens = promptTokensSent(s);
    assert.equal(final.usage?.input_tokens, promptTokens);
    assert.equal(final.usage?.output_tokens, STREAMED_TOKENS);
    assert.deepEqual(completed?.x_gateway, { usage_estimated: true });
    const record = await estimatedRecord(s.records);
    assert.equal(record.tokensIn, promptTokens);
    assert.equal(record.tokensOut, STREAMED_TOKENS);
  });

  test("the Agents SDK's usage tracking, streamed and not", async (t) => {
    const s = await scene(t);
    setTracingDisabled(true);
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: s.gateway.baseUrl }) });
    const agent = new Agent({ name: "Greeter", instructions: "Greet.", model: MODEL });
    s.primary.enqueue(CHAT_ROUTE, answerWithoutUsage());
    const result = await runner.run(agent, PROMPT);
    assert.equal(result.finalOutput, TEXT);
    assert.equal(result.state.usage.outputTokens, ANSWER_TOKENS);
    assert.equal(result.state.usage.inputTokens, promptTokensSent(s));

    s.primary.enqueue(CHAT_ROUTE, streamWithoutUsage());
    const streamed = await runner.run(agent, PROMPT, { stream: true });
    for await (const _event of streamed) {
      // Read to the end: the usage is added at response.completed.
    }
    await streamed.completed;
    assert.equal(streamed.finalOutput, TEXT);
    assert.equal(streamed.state.usage.outputTokens, STREAMED_TOKENS);
    assert.ok(streamed.state.usage.inputTokens > 0);
  });

  test("the AI SDK's default (Responses) provider: generateText and streamText usage", async (t) => {
    const s = await scene(t);
    const openai = createOpenAI({ baseURL: s.gateway.baseUrl, apiKey: "x" });
    s.primary.enqueue(CHAT_ROUTE, answerWithoutUsage());
    const generated = await generateText({ model: openai(MODEL), prompt: PROMPT, maxRetries: 0 });
    assert.equal(generated.text, TEXT);
    assert.equal(generated.usage.outputTokens, ANSWER_TOKENS);
    assert.equal(generated.usage.inputTokens, promptTokensSent(s));

    s.primary.enqueue(CHAT_ROUTE, streamWithoutUsage());
    const streamed = streamText({ model: openai(MODEL), prompt: PROMPT, maxRetries: 0 });
    assert.equal(await streamed.text, TEXT);
    assert.equal((await streamed.usage).outputTokens, STREAMED_TOKENS);
  });
});

describe("the Messages door: output_tokens is the estimate, not 0", () => {
  function anthropic(s: TwoProviders): Anthropic {
    return new Anthropic({ baseURL: s.gateway.url, apiKey: "x", maxRetries: 0 });
  }

  test("JSON (messages.create): usage and x_gateway.usage_estimated", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, answerWithoutUsage());
    const message = await anthropic(s).messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: "user", content: PROMPT }],
    });
    const promptTokens = promptTokensSent(s);
    assert.equal(message.usage.input_tokens, promptTokens);
    assert.equal(message.usage.output_tokens, ANSWER_TOKENS);
    assert.deepEqual((message as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
    const record = await estimatedRecord(s.records);
    assert.equal(record.tokensOut, ANSWER_TOKENS);
  });

  test("a stream (messages.stream, as Claude Code reads it): message_delta's usage and the final message's", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWithoutUsage());
    const stream = anthropic(s).messages.stream({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: "user", content: PROMPT }],
    });
    let delta: Record<string, unknown> | undefined;
    stream.on("streamEvent", (event) => {
      if (event.type === "message_delta") delta = event as unknown as Record<string, unknown>;
    });
    const final = await stream.finalMessage();
    const promptTokens = promptTokensSent(s);
    assert.equal(final.content[0]?.type === "text" ? final.content[0].text : "", TEXT);
    assert.equal(final.usage.output_tokens, STREAMED_TOKENS);
    assert.equal(final.usage.input_tokens, promptTokens);
    assert.equal((delta?.usage as { output_tokens?: number } | undefined)?.output_tokens, STREAMED_TOKENS);
    assert.deepEqual(delta?.x_gateway, { usage_estimated: true });
    const record = await estimatedRecord(s.records);
    assert.equal(record.tokensIn, promptTokens);
    assert.equal(record.tokensOut, STREAMED_TOKENS);
  });

  test("a reported usage is passed on, not marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS, MODEL, { usage: { prompt_tokens: 9, completion_tokens: 4 } }),
    });
    const stream = anthropic(s).messages.stream({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: "user", content: PROMPT }],
    });
    let delta: Record<string, unknown> | undefined;
    stream.on("streamEvent", (event) => {
      if (event.type === "message_delta") delta = event as unknown as Record<string, unknown>;
    });
    const final = await stream.finalMessage();
    assert.equal(final.usage.output_tokens, 4);
    assert.equal(delta?.x_gateway, undefined);
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.equal(s.records[0]?.isUsageEstimated, undefined);
  });
});
