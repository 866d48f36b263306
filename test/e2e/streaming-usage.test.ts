// A chat stream whose client asked for usage (`stream_options.include_usage`) while its upstream sent none (several
// OpenAI-compatible providers ignore the option): the client gets one final usage chunk, the gateway's estimate,
// marked `x_gateway.usage_estimated` (docs/streaming.md "Usage chunks"). Read by the clients that ask for it: the
// openai SDK's final chunk, LangChain's `streamUsage` and the AI SDK's `usage`. Before, they read no usage at all.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { streamText } from "ai";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { toolCallStream } from "../helpers/chat-tool-calls.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const PROMPT = "Say hello to my friend.";
const MESSAGES = [{ role: "user" as const, content: PROMPT }];
const WORDS = ["Hello", " there,", " friend", "!"];
/** The gateway's estimate of the prompt (a fresh gateway has no calibration: its factor is 1). */
const PROMPT_TOKENS = estimateChatPrompt(MESSAGES, undefined).promptTokens;
/** Each streamed delta counted on its own, as the gateway counts the chunks it passed on. */
const COMPLETION_TOKENS = WORDS.reduce((sum, word) => sum + countTextTokens(word), 0);

/** The answer without any usage chunk, whatever the request asked for. */
function withoutUsage(words = WORDS, id = "chatcmpl-nousage"): MockStep {
  return { kind: "sse", events: chatStream(words, MODEL, { id }) };
}

function recordsOf(scene: TwoProviders): RequestRecord[] {
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  return records;
}

/** The chunks of a raw chat stream (its `[DONE]` checked and left out). */
async function rawChunks(scene: TwoProviders, payload: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const answer = await scene.postChat({ stream: true, messages: MESSAGES, ...payload });
  assert.equal(answer.statusCode, 200);
  const data = strictSseData(await answer.body.text());
  assert.equal(data.at(-1), "[DONE]");
  return data.slice(0, -1).map((payload) => JSON.parse(payload) as Record<string, unknown>);
}

function usageChunks(chunks: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return chunks.filter((chunk) => chunk.usage !== undefined && chunk.usage !== null);
}

describe("an upstream that ignores include_usage: the client still gets the usage it asked for", () => {
  test("the openai SDK's final chunk carries the estimate, marked; the record says it was estimated", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, withoutUsage());
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: Record<string, unknown>[] = [];
    let text = "";
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    assert.equal(text, WORDS.join(""));
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, [], "the usage chunk is the last one, with no choices");
    assert.deepEqual(last?.usage, {
      prompt_tokens: PROMPT_TOKENS,
      completion_tokens: COMPLETION_TOKENS,
      total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
    });
    assert.deepEqual(last?.x_gateway, { usage_estimated: true });
    assert.equal(last?.id, "chatcmpl-nousage", "the stream's own id");
    assert.equal(last?.object, "chat.completion.chunk");
    assert.equal(last?.model, MODEL);
    assert.equal(usageChunks(chunks).length, 1, "one usage chunk");
    assert.deepEqual(sentBody(scene.primary).stream_options, { include_usage: true }, "the client's option went on");

    await waitUntil(() => records.length === 1, "the request's record");
    const record = records[0] as RequestRecord;
    assert.equal(record.tokensIn, PROMPT_TOKENS);
    assert.equal(record.tokensOut, COMPLETION_TOKENS);
    assert.equal(record.isUsageEstimated, true);
  });

  test("the openai SDK's stream helper: finalChatCompletion() has the usage", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, withoutUsage());
    const final = await scene.client.chat.completions
      .stream({ model: MODEL, messages: MESSAGES, stream_options: { include_usage: true } })
      .finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, WORDS.join(""));
    assert.equal(final.usage?.prompt_tokens, PROMPT_TOKENS);
    assert.equal(final.usage?.completion_tokens, COMPLETION_TOKENS);
  });

  test("LangChain's streamUsage: the streamed message's usage_metadata", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, withoutUsage());
    const model = new ChatOpenAI({
      model: MODEL,
      apiKey: "x",
      configuration: { baseURL: scene.gateway.baseUrl },
      streamUsage: true,
      maxRetries: 0,
    });
    let text = "";
    const usages: { input_tokens: number; output_tokens: number; total_tokens: number }[] = [];
    for await (const chunk of await model.stream(PROMPT)) {
      if (typeof chunk.content === "string") text += chunk.content;
      if (chunk.usage_metadata !== undefined) usages.push(chunk.usage_metadata);
    }
    assert.equal(text, WORDS.join(""));
    assert.deepEqual(sentBody(scene.primary).stream_options, { include_usage: true }, "LangChain asked for usage");
    assert.deepEqual(
      usages.map(({ input_tokens, output_tokens, total_tokens }) => ({ input_tokens, output_tokens, total_tokens })),
      [
        {
          input_tokens: PROMPT_TOKENS,
          output_tokens: COMPLETION_TOKENS,
          total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
        },
      ],
    );
  });

  test("the AI SDK's chat provider: streamText's usage", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, withoutUsage());
    const openai = createOpenAI({ baseURL: scene.gateway.baseUrl, apiKey: "x" });
    const result = streamText({ model: openai.chat(MODEL), messages: MESSAGES, maxRetries: 0 });
    assert.equal(await result.text, WORDS.join(""));
    const usage = await result.usage;
    assert.equal(usage.inputTokens, PROMPT_TOKENS);
    assert.equal(usage.outputTokens, COMPLETION_TOKENS);
  });

  test("tool calls count: their names and arguments are the completion", async (t) => {
    const scene = await startTwoProviders(t);
    const call = { id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' };
    // The scripted call streams its arguments in two halves; its usage chunk is left off.
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(MODEL, [call]).slice(0, -1) });
    const half = Math.floor(call.arguments.length / 2);
    const expected =
      countTextTokens(call.name) +
      countTextTokens(call.arguments.slice(0, half)) +
      countTextTokens(call.arguments.slice(half));
    const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1);
    const counted = (usage[0]?.usage as { completion_tokens: number } | undefined)?.completion_tokens ?? 0;
    assert.equal(counted, expected);
    assert.deepEqual(usage[0]?.x_gateway, { usage_estimated: true });
  });
});

describe("the estimate never stands beside a real usage, nor goes to a client that did not ask", () => {
  test("an upstream usage chunk is passed on as sent: one usage chunk, not marked", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS, MODEL, { usage: { prompt_tokens: 7, completion_tokens: 4 } }),
    });
    const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1);
    assert.equal((usage[0]?.usage as { prompt_tokens: number } | undefined)?.prompt_tokens, 7);
    assert.equal(usage[0]?.x_gateway, undefined);
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.tokensIn, 7);
    assert.equal(records[0]?.isUsageEstimated, undefined);
  });

  for (const options of [undefined, { include_usage: false }]) {
    test(`no usage chunk for a client that did not ask (stream_options: ${JSON.stringify(options)})`, async (t) => {
      const scene = await startTwoProviders(t);
      const records = recordsOf(scene);
      scene.primary.enqueue(CHAT_ROUTE, withoutUsage());
      const chunks = await rawChunks(scene, options === undefined ? {} : { stream_options: options });
      assert.equal(usageChunks(chunks).length, 0);
      assert.ok(chunks.every((chunk) => chunk.x_gateway === undefined));
      // Its books count the estimate all the same (test/e2e/stream-without-usage.test.ts; until 2026-12-07 they
      // counted 0), marked as one.
      await waitUntil(() => records.length === 1, "the request's record");
      assert.equal(records[0]?.tokensOut, COMPLETION_TOKENS);
      assert.equal(records[0]?.isUsageEstimated, true);
    });
  }

  test("a stream continued after a cut, neither upstream reporting usage: one estimated chunk for the whole answer", async (t) => {
    const scene = await startTwoProviders(t);
    const first = WORDS.slice(0, 2);
    // The role chunk and two words, no finish: then the connection breaks.
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(first, MODEL, { id: "chatcmpl-first" }).slice(0, 1 + first.length),
      end: "destroy",
    });
    scene.backup.enqueue(CHAT_ROUTE, withoutUsage(WORDS.slice(2), "chatcmpl-second"));
    const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
    const text = chunks
      .map((chunk) => (chunk.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? "")
      .join("");
    assert.equal(text, WORDS.join(""));
    assert.ok(
      chunks.some((chunk) => (chunk.x_gateway as { continuation?: unknown } | undefined)?.continuation !== undefined),
      "it was continued",
    );
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1);
    assert.deepEqual(usage[0]?.usage, {
      prompt_tokens: PROMPT_TOKENS,
      completion_tokens: COMPLETION_TOKENS,
      total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
    });
    assert.deepEqual(usage[0]?.x_gateway, { usage_estimated: true });
    assert.equal(usage[0]?.id, "chatcmpl-first");
  });

  test("a stream continued after a cut that ends with a tool call, no upstream reporting usage: the call counts", async (t) => {
    // The estimate counts what the client got, the continuation's tool call (name and arguments) too, as the
    // continuation's own charge does (pipeline/segment-usage.ts). A guard: it passed before 2026-12-07 too (the
    // estimate is one OutputTokenCount over every chunk the client got, continued or not; only the segment before a
    // continuation is counted as text and reasoning, and it can hold no tool call nor another choice: either ends
    // the answer's continuability).
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const first = WORDS.slice(0, 2);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(first, MODEL, { id: "chatcmpl-first" }).slice(0, 1 + first.length),
      end: "destroy",
    });
    const call = { id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' };
    const rest = chatStream(WORDS.slice(2), MODEL).slice(0, -1);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: [...rest, ...toolCallStream(MODEL, [call]).slice(1, -1)] });
    const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
    const half = Math.floor(call.arguments.length / 2);
    const callTokens =
      countTextTokens(call.name) +
      countTextTokens(call.arguments.slice(0, half)) +
      countTextTokens(call.arguments.slice(half));
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1);
    assert.deepEqual(usage[0]?.x_gateway, { usage_estimated: true });
    const counted = (usage[0]?.usage as { completion_tokens: number } | undefined)?.completion_tokens;
    assert.equal(counted, COMPLETION_TOKENS + callTokens);
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.tokensOut, COMPLETION_TOKENS + callTokens);
  });

  test("a stream continued after a cut whose continuation reports usage: only the merged real usage", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const first = WORDS.slice(0, 2);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(first, MODEL, { id: "chatcmpl-first" }).slice(0, 1 + first.length),
      end: "destroy",
    });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(2), MODEL, { usage: { prompt_tokens: 30, completion_tokens: 2 } }),
    });
    const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1, "one usage chunk");
    assert.equal(usage[0]?.x_gateway, undefined, "not an estimate");
    const merged = usage[0]?.usage as { prompt_tokens: number; completion_tokens: number } | undefined;
    // Prefill: the original prompt's estimate, the delivered part counted plus the continuation's own.
    assert.equal(merged?.prompt_tokens, PROMPT_TOKENS);
    assert.equal(merged?.completion_tokens, countTextTokens(first.join("")) + 2);
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.isUsageEstimated, undefined);
  });
});

test("a running count on the first chunks, then text without one: the client's last usage adds that text", async (t) => {
  // vLLM's continuous usage stats stop, or a proxy keeps only some chunks' usage: the last count predates text the
  // client got. Before 2026-12-07 that count was the client's last usage and the charge, the later text in neither.
  const scene = await startTwoProviders(t);
  const records = recordsOf(scene);
  const events = chatStream(WORDS, MODEL, { id: "chatcmpl-running" });
  const counted = (index: number) => {
    const event = events[index] as { data: Record<string, unknown> };
    event.data = { ...event.data, usage: { prompt_tokens: 21, completion_tokens: index, total_tokens: 21 + index } };
  };
  // The role chunk and the first two words carry the count so far; the last two words and the finish none.
  for (const index of [0, 1, 2]) counted(index);
  scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events });
  const chunks = await rawChunks(scene, { stream_options: { include_usage: true } });
  const last = usageChunks(chunks).at(-1);
  const output = 2 + countTextTokens(WORDS[2] ?? "") + countTextTokens(WORDS[3] ?? "");
  assert.deepEqual(last?.usage, { prompt_tokens: 21, completion_tokens: output, total_tokens: 21 + output });
  assert.deepEqual([last?.id, last?.model, last?.x_gateway], ["chatcmpl-running", MODEL, undefined]);
  await waitUntil(() => records.length === 1, "the request's record");
  assert.deepEqual(
    [records[0]?.tokensIn, records[0]?.tokensOut, records[0]?.isUsageEstimated],
    [21, output, undefined],
  );
});
