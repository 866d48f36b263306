// An answer no upstream reported usage for, outside the chat streams (test/e2e/stream-without-usage.test.ts): a JSON
// (non-streamed) chat answer without `usage`, a native Responses JSON answer (`responses_api: native`) without one, and
// a native Responses stream whose `response.completed` has none. Its provider billed the prompt and the answer all the same: every book counts the
// gateway's estimate (prompt + answer text), marked, and the deployment's token budget is charged it (never less than
// the reservation), as for a stream (docs/observability.md, docs/limits.md "Streams"). Before, the JSON answer's record
// had the estimate while its attempt, /stats and the tpm window counted only the prompt's reservation, and the native
// stream and JSON answer counted 0 everywhere.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { assertCountedByEstimate } from "../helpers/estimated-books.ts";
import { deploymentTpmUsed } from "../helpers/limits-scene.ts";
import { type ChatCompletionBody, chatCompletion } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const PROMPT = "Say hello to my friend, in a few words.";
const TEXT = "Hello there, my dear friend!";

interface Scene extends TwoProviders {
  readonly records: RequestRecord[];
}

async function scene(t: TestContext, primary: Readonly<Record<string, string | boolean>>): Promise<Scene> {
  // `count_max_tokens: false`: the reservation is the prompt alone, so the token window shows whether the answer was
  // charged.
  const started = await startTwoProviders(t, {
    primary: { count_max_tokens: false, ...primary },
    primaryModel: { limits: { tpm: 1_000_000 } },
  });
  const records: RequestRecord[] = [];
  started.gateway.runtime.onRecord((record) => records.push(record));
  return { ...started, records };
}

/**
 * A native Responses stream as a provider that reports no usage sends it: `response.completed` with `usage: null`.
 * `isItemRepeated`: its `response.output_item.done` comes twice for the one item (a provider's retry of the event).
 */
function nativeStreamWithoutUsage(isItemRepeated = false): { raw: string }[] {
  const message = (status: string, text: string) => ({
    id: "msg_1",
    type: "message",
    status,
    role: "assistant",
    content: text === "" ? [] : [{ type: "output_text", text, annotations: [] }],
  });
  const response = (status: string, output: unknown[]) => ({
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status,
    model: MODEL,
    output,
    usage: null,
  });
  const at = { item_id: "msg_1", output_index: 0, content_index: 0 };
  const events: Record<string, unknown>[] = [
    { type: "response.created", response: response("in_progress", []) },
    { type: "response.output_item.added", output_index: 0, item: message("in_progress", "") },
    { type: "response.content_part.added", ...at, part: { type: "output_text", text: "", annotations: [] } },
    { type: "response.output_text.delta", ...at, delta: TEXT },
    { type: "response.output_item.done", output_index: 0, item: message("completed", TEXT) },
    ...(isItemRepeated
      ? [{ type: "response.output_item.done", output_index: 0, item: message("completed", TEXT) }]
      : []),
    { type: "response.completed", response: response("completed", [message("completed", TEXT)]) },
  ];
  return events.map((event, index) => ({
    raw: `event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: index })}\n\n`,
  }));
}

/**
 * A native Responses JSON answer (`stream` not asked) from a provider that reports no usage: `usage: null`, a message
 * and a function call in its `output`.
 */
function nativeAnswerWithoutUsage(): Record<string, unknown> {
  return {
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status: "completed",
    error: null,
    incomplete_details: null,
    model: MODEL,
    output: [
      {
        id: "msg_1",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: TEXT, annotations: [] }],
      },
      { id: "fc_1", type: "function_call", status: "completed", call_id: "call_1", name: CALL, arguments: ARGS },
    ],
    usage: null,
    store: false,
  };
}

const CALL = "get_weather";
const ARGS = JSON.stringify({ city: "Paris", units: "celsius" });

describe("an answer without any usage report outside the chat streams is counted by the gateway's estimate", () => {
  test("a JSON chat answer without `usage` (openai SDK, no max_tokens): every book counts the estimate", async (t) => {
    const s = await scene(t, {});
    const { usage: _reported, ...answer }: ChatCompletionBody = chatCompletion(TEXT, MODEL);
    s.primary.enqueue(CHAT_ROUTE, { kind: "json", body: answer });
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.equal(completion.choices[0]?.message.content, TEXT);
    const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
    const expected = [estimateChatPrompt(body.messages, body.tools).promptTokens, countTextTokens(TEXT)] as const;
    assert.deepEqual(
      [completion.usage?.prompt_tokens, completion.usage?.completion_tokens],
      [...expected],
      "the client is told the same estimate",
    );
    await assertCountedByEstimate(s.gateway, s.records, "chat", expected);
  });

  for (const [label, reported] of [
    ["0 tokens in all", { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }],
    ["a prompt and 0 completion tokens", { prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 }],
  ] as const) {
    test(`a JSON chat answer with text whose usage states ${label} (a proxy's zeros): the estimate stands`, async (t) => {
      // As a stream's (stream-without-usage.test.ts 'a usage chunk stating 0 output tokens'): the provider billed the
      // text it generated. Before: the record, /stats and the metrics counted the zeros, the client was told them.
      const s = await scene(t, {});
      s.primary.enqueue(CHAT_ROUTE, { kind: "json", body: { ...chatCompletion(TEXT, MODEL), usage: reported } });
      const completion = await s.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: PROMPT }],
      });
      const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
      const expected = [estimateChatPrompt(body.messages, body.tools).promptTokens, countTextTokens(TEXT)] as const;
      assert.deepEqual([completion.usage?.prompt_tokens, completion.usage?.completion_tokens], [...expected]);
      await assertCountedByEstimate(s.gateway, s.records, "chat", expected);
    });
  }

  test("a JSON chat answer without text stating 0 completion tokens: its usage is believed", async (t) => {
    const s = await scene(t, {});
    const reported = { prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 };
    s.primary.enqueue(CHAT_ROUTE, { kind: "json", body: { ...chatCompletion("", MODEL), usage: reported } });
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.deepEqual([completion.usage?.prompt_tokens, completion.usage?.completion_tokens], [12, 0]);
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.deepEqual(
      [s.records[0]?.tokensIn, s.records[0]?.tokensOut, s.records[0]?.isUsageEstimated === true],
      [12, 0, false],
    );
  });

  test("a legacy completion that asked `echo` and ended at once (prompt scoring): its 0 completion tokens are believed", async (t) => {
    // Its text is the prompt echoed, not output: estimated, it would charge the prompt twice.
    const s = await scene(t, {});
    const reported = { prompt_tokens: 9, completion_tokens: 0, total_tokens: 9 };
    const choice = { text: PROMPT, index: 0, logprobs: null, finish_reason: "stop" };
    const answer = { id: "cmpl-1", object: "text_completion", created: 1767225600, model: MODEL, choices: [choice] };
    s.primary.enqueue("POST /v1/completions", { kind: "json", body: { ...answer, usage: reported } });
    const completion = await s.client.completions.create({ model: MODEL, prompt: PROMPT, echo: true, max_tokens: 1 });
    assert.deepEqual([completion.usage?.prompt_tokens, completion.usage?.completion_tokens], [9, 0]);
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.deepEqual(
      [s.records[0]?.tokensIn, s.records[0]?.tokensOut, s.records[0]?.isUsageEstimated === true],
      [9, 0, false],
    );
  });

  test("a JSON chat answer without `usage` under a counted max_tokens: the reservation stays the floor", async (t) => {
    const s = await scene(t, { count_max_tokens: true });
    const { usage: _reported, ...answer }: ChatCompletionBody = chatCompletion(TEXT, MODEL);
    s.primary.enqueue(CHAT_ROUTE, { kind: "json", body: answer });
    await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      max_tokens: 200,
    });
    const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
    const promptTokens = estimateChatPrompt(body.messages, body.tools).promptTokens;
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.deepEqual(
      [s.records[0]?.attempts[0]?.tokensOut, s.records[0]?.attempts[0]?.isUsageEstimated],
      [countTextTokens(TEXT), true],
    );
    // Without a report the gateway cannot tell what its provider counted of the `max_tokens` it was sent.
    assert.equal(await deploymentTpmUsed(s.gateway, "alpha"), promptTokens + 200, "the reservation, not the estimate");
  });

  test("a JSON tool call whose arguments came as an object (no usage): its arguments are counted", async (t) => {
    // A few providers send `function.arguments` as the object itself; the gateway writes it as the JSON string the
    // client gets (upstream/complete-tool-calls.ts), and the estimate counts that string, as it did when the pipeline
    // estimated the body after that completion (before 9e61ae02 moved the estimate ahead of it: arguments counted 0).
    const s = await scene(t, {});
    const args = { city: "Paris", units: "celsius", days: [1, 2, 3], note: "a longer note to make the count visible" };
    const { usage: _reported, ...answer }: ChatCompletionBody = chatCompletion("", MODEL);
    const message = {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }],
    };
    s.primary.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: { ...answer, choices: [{ index: 0, message, finish_reason: "tool_calls" }] },
    });
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    assert.equal(call?.type === "function" ? call.function.arguments : undefined, JSON.stringify(args));
    const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
    const expected = [
      estimateChatPrompt(body.messages, body.tools).promptTokens,
      countTextTokens("get_weather") + countTextTokens(JSON.stringify(args)),
    ] as const;
    assert.deepEqual([completion.usage?.prompt_tokens, completion.usage?.completion_tokens], [...expected]);
    await assertCountedByEstimate(s.gateway, s.records, "chat", expected);
  });

  test("a native Responses JSON answer without usage (openai SDK responses.create): every book counts the estimate", async (t) => {
    const s = await scene(t, { responses_api: "native" });
    s.primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeAnswerWithoutUsage() });
    const response = await s.client.responses.create({ model: MODEL, input: PROMPT });
    assert.equal(response.output_text, TEXT);
    // The native answer is the provider's own: the client is told no usage the provider did not report.
    assert.equal(response.usage ?? null, null);
    await waitUntil(() => s.records.length === 1, "the request's record");
    const promptTokens = s.records[0]?.tokensIn ?? 0;
    const outputTokens = countTextTokens(TEXT) + countTextTokens(CALL) + countTextTokens(ARGS);
    await assertCountedByEstimate(s.gateway, s.records, "responses", [promptTokens, outputTokens]);
  });

  test("a native Responses JSON answer without usage under a counted max_output_tokens: the reservation stays the floor", async (t) => {
    const s = await scene(t, { responses_api: "native", count_max_tokens: true });
    s.primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeAnswerWithoutUsage() });
    await s.client.responses.create({ model: MODEL, input: PROMPT, max_output_tokens: 300 });
    await waitUntil(() => s.records.length === 1, "the request's record");
    const attempt = s.records[0]?.attempts[0];
    const outputTokens = countTextTokens(TEXT) + countTextTokens(CALL) + countTextTokens(ARGS);
    assert.deepEqual([attempt?.tokensOut, attempt?.isUsageEstimated], [outputTokens, true]);
    const promptTokens = attempt?.tokensIn ?? 0;
    assert.ok(promptTokens > 0);
    assert.equal(await deploymentTpmUsed(s.gateway, "alpha"), promptTokens + 300, "the reservation, not the estimate");
  });

  test("a native Responses stream whose response.completed has no usage (openai SDK responses.stream)", async (t) => {
    const s = await scene(t, { responses_api: "native" });
    s.primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: nativeStreamWithoutUsage() });
    const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
    for await (const _event of stream) {
      // Read to the end.
    }
    assert.equal((await stream.finalResponse()).output_text, TEXT);
    // The prompt as the gateway estimated the client's input: the record's, held equal in every other book.
    await waitUntil(() => s.records.length === 1, "the request's record");
    const promptTokens = s.records[0]?.tokensIn ?? 0;
    await assertCountedByEstimate(s.gateway, s.records, "responses", [promptTokens, countTextTokens(TEXT)]);
  });

  test("a native Responses stream that repeats an item's response.output_item.done: the item is counted once", async (t) => {
    const s = await scene(t, { responses_api: "native" });
    s.primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: nativeStreamWithoutUsage(true) });
    const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
    for await (const _event of stream) {
      // Read to the end.
    }
    await waitUntil(() => s.records.length === 1, "the request's record");
    const promptTokens = s.records[0]?.tokensIn ?? 0;
    await assertCountedByEstimate(s.gateway, s.records, "responses", [promptTokens, countTextTokens(TEXT)]);
  });
});

test("a native Responses stream of a function call whose response.completed states 0 output tokens: not believed", async (t) => {
  // As a chat stream's tool call (stream-without-usage.test.ts): the provider generated the call. Before: the
  // stream was recorded and charged 12 prompt / 0 output tokens (only a text delta counted as output).
  const s = await scene(t, { responses_api: "native" });
  const call = { id: "fc_1", type: "function_call", call_id: "call_1", name: CALL };
  const response = (status: string, output: unknown[], usage: unknown) => ({
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status,
    model: MODEL,
    output,
    usage,
  });
  const done = { ...call, status: "completed", arguments: ARGS };
  const events: Record<string, unknown>[] = [
    { type: "response.created", response: response("in_progress", [], null) },
    { type: "response.output_item.added", output_index: 0, item: { ...call, status: "in_progress", arguments: "" } },
    { type: "response.function_call_arguments.delta", item_id: "fc_1", output_index: 0, delta: ARGS },
    { type: "response.function_call_arguments.done", item_id: "fc_1", output_index: 0, arguments: ARGS },
    { type: "response.output_item.done", output_index: 0, item: done },
    {
      type: "response.completed",
      response: response("completed", [done], { input_tokens: 12, output_tokens: 0, total_tokens: 12 }),
    },
  ];
  const raw = events.map((event, index) => ({
    raw: `event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: index })}\n\n`,
  }));
  s.primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: raw });
  const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
  for await (const _event of stream) {
    // Read to the end.
  }
  await waitUntil(() => s.records.length === 1, "the request's record");
  const record = s.records[0];
  assert.deepEqual(
    [record?.tokensOut, record?.isUsageEstimated],
    [countTextTokens(CALL) + countTextTokens(ARGS), true],
  );
  assert.notEqual(record?.tokensIn, 12, "the prompt is the gateway's estimate");
});
