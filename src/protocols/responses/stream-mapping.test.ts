import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { APIError } from "openai";
import { ResponseStream } from "openai/lib/responses/ResponseStream";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { Stream } from "openai/streaming";
import { StreamInterruptedError } from "../../errors/gateway-error.ts";
import {
  DEFAULT_ECHO,
  jsonLines,
  matchesGolden,
  parseSse,
  readChatChunks,
  sseResponse,
} from "../__fixtures__/fixtures.ts";
import { sequentialIds } from "../ids.ts";
import { ResponsesStreamTranslator } from "./stream-mapping.ts";

const FIXTURES = join(import.meta.dirname, "__fixtures__");

const echo = DEFAULT_ECHO;

function translate(fixture: string): { text: string; translator: ResponsesStreamTranslator } {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1767225600 });
  let text = "";
  for (const chunk of readChatChunks(fixture)) text += translator.push(chunk);
  text += translator.finish();
  return { text, translator };
}

/** What the openai SDK makes of the stream: its SSE parser, then its ResponseStream accumulator. */
async function openaiFinalResponse(text: string) {
  const events: ResponseStreamEvent[] = [];
  for await (const event of Stream.fromSSEResponse<ResponseStreamEvent>(sseResponse(text), new AbortController())) {
    events.push(event);
  }
  const final = await ResponseStream.fromReadableStream(jsonLines(events)).finalResponse();
  return { events, final };
}

/** The raw events the openai SDK's SSE parser yields (it does not throw on Responses error events). */
async function openaiEvents(text: string): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of Stream.fromSSEResponse<ResponseStreamEvent>(sseResponse(text), new AbortController())) {
    events.push(event);
  }
  return events;
}

function assertWellFormed(text: string): void {
  const events = parseSse(text);
  events.forEach((event, index) => {
    assert.equal(event.event, event.data.type, "the event line names the event's type");
    assert.equal(event.data.sequence_number, index, "sequence numbers count up from 0");
  });
}

for (const fixture of ["text", "tool-call", "text-then-tools", "length", "quirky-tool-call", "indexless-tool-calls"]) {
  test(`responses stream: ${fixture} matches its recorded event sequence`, () => {
    const { text } = translate(fixture);
    assertWellFormed(text);
    matchesGolden(join(FIXTURES, `${fixture}.events.txt`), text);
  });
}

test("responses stream: a text answer accumulates in the openai SDK to the text, usage and model", async () => {
  const { text, translator } = translate("text");
  const { events, final } = await openaiFinalResponse(text);
  assert.deepEqual(
    events.map((event) => event.type),
    [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ],
  );
  assert.equal(final.output_text, "Hello, world!");
  assert.equal(final.status, "completed");
  assert.equal(final.model, "llama-3.3-70b-versatile");
  assert.equal(final.id, "resp_1");
  assert.deepEqual(final.usage, {
    input_tokens: 21,
    input_tokens_details: { cached_tokens: 4 },
    output_tokens: 9,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 30,
  });
  const message = final.output[0];
  assert.ok(message?.type === "message");
  assert.equal(message.content.length, 1);
  assert.deepEqual(translator.result?.output_text, final.output_text);
});

test("responses stream: text then two calls gives a message and two function_call items in order", async () => {
  const { text } = translate("text-then-tools");
  const { final } = await openaiFinalResponse(text);
  assert.deepEqual(
    final.output.map((item) => (item.type === "function_call" ? [item.call_id, item.name, item.arguments] : item.type)),
    ["message", ["call_a", "get_weather", '{"city":"Paris"}'], ["call_b", "get_weather", '{"city":"Rome"}']],
  );
  assert.equal(final.output_text, "Let me check both.");
});

test("responses stream: calls sent whole without an index (Gemini) are one function_call each", async () => {
  const { text } = translate("indexless-tool-calls");
  const { final } = await openaiFinalResponse(text);
  assert.deepEqual(
    final.output.map((item) => (item.type === "function_call" ? [item.call_id, item.arguments] : item.type)),
    [
      ["call_1", '{"city":"Paris"}'],
      ["call_2", '{"city":"Rome"}'],
    ],
  );
});

test("responses stream: a new id at an index already used starts a new call; deltas without an id continue it", async () => {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1767225600 });
  const calls = (...toolCalls: unknown[]) => ({
    model: "m-1",
    choices: [{ index: 0, delta: { tool_calls: toolCalls } }],
  });
  let text = "";
  text += translator.push(calls({ index: 0, id: "call_a", function: { name: "lookup", arguments: '{"q":' } }));
  text += translator.push(calls({ index: 0, function: { arguments: "1}" } }));
  // Some providers number every call 0; only the id tells the next one apart.
  text += translator.push(calls({ index: 0, id: "call_b", function: { name: "lookup", arguments: '{"q":2}' } }));
  // Two whole calls in one chunk, without indexes.
  text += translator.push(
    calls(
      { id: "call_c", function: { name: "lookup", arguments: '{"q":3}' } },
      { id: "call_d", function: { name: "lookup", arguments: '{"q":4}' } },
    ),
  );
  text += translator.finish();
  assertWellFormed(text);
  const { final } = await openaiFinalResponse(text);
  assert.deepEqual(
    final.output.map((item) => (item.type === "function_call" ? [item.call_id, item.arguments] : item.type)),
    [
      ["call_a", '{"q":1}'],
      ["call_b", '{"q":2}'],
      ["call_c", '{"q":3}'],
      ["call_d", '{"q":4}'],
    ],
  );
});

test("responses stream: a whole call that came without arguments gets `{}` (a last delta, .done and the item agree)", async () => {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1767225600 });
  const chunk = (delta: unknown, finishReason: string | null = null) => ({
    model: "m-1",
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
  let text = translator.push(chunk({ tool_calls: [{ index: 0, id: "call_now", function: { name: "now" } }] }));
  text += translator.push(chunk({}, "tool_calls"));
  text += translator.finish();
  assertWellFormed(text);
  const { events, final } = await openaiFinalResponse(text);
  const deltas = events.flatMap((event) =>
    event.type === "response.function_call_arguments.delta" ? [event.delta] : [],
  );
  assert.deepEqual(deltas, ["{}"]);
  const done = events.find((event) => event.type === "response.function_call_arguments.done");
  assert.equal(done?.type === "response.function_call_arguments.done" ? done.arguments : undefined, "{}");
  assert.deepEqual(
    final.output.map((item) => (item.type === "function_call" ? item.arguments : item.type)),
    ["{}"],
  );
});

test("responses stream: a name sent after the id still opens the call with its buffered arguments", async () => {
  const { text, translator } = translate("quirky-tool-call");
  const { events, final } = await openaiFinalResponse(text);
  const added = events.find((event) => event.type === "response.output_item.added");
  assert.ok(added?.type === "response.output_item.added" && added.item.type === "function_call");
  assert.equal(added.item.name, "lookup");
  assert.equal(added.item.call_id, "call_q");
  const call = final.output[0];
  assert.ok(call?.type === "function_call");
  assert.equal(call.arguments, '{"q":1}');
  assert.equal(translator.result?.usage, null, "no usage chunk came: usage is null, not invented");
});

test("responses stream: finish_reason length ends with response.incomplete and max_output_tokens", async () => {
  const { text } = translate("length");
  const { events, final } = await openaiFinalResponse(text);
  assert.equal(events.at(-1)?.type, "response.incomplete");
  assert.equal(final.status, "incomplete");
  assert.deepEqual(final.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(final.output_text, "The answer is long");
});

test("responses stream: fail() after some text sends error then response.failed with the partial output", async () => {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1767225600 });
  const chunks = readChatChunks("text");
  let text = translator.push(chunks[0]) + translator.push(chunks[1]);
  text += translator.fail(new StreamInterruptedError("The upstream stream broke and no candidate could continue it."));
  assert.equal(translator.finish(), "", "nothing after the end");
  assertWellFormed(text);
  const message = "The upstream stream broke and no candidate could continue it.";
  // The `error` event: the documented top-level fields, and OpenAI's nested `error` the openai SDK raises.
  assert.deepEqual(parseSse(text).at(-2)?.data, {
    type: "error",
    sequence_number: 5,
    code: "stream_interrupted",
    message,
    param: null,
    error: { type: "upstream_error", code: "stream_interrupted", message, param: null },
  });
  await assert.rejects(openaiEvents(text), (thrown: unknown) => {
    assert.ok(thrown instanceof APIError, String(thrown));
    assert.equal(thrown.code, "stream_interrupted");
    assert.equal(thrown.message, message);
    return true;
  });
  const events = parseSse(text).map((event) => event.data as unknown as ResponseStreamEvent);
  const failed = events.at(-1);
  assert.ok(failed?.type === "response.failed");
  assert.equal(failed.response.status, "failed");
  // response.error.code is one of OpenAI's ResponseError codes; the gateway's own is on the `error` event.
  assert.deepEqual(failed.response.error, {
    code: "server_error",
    message: "The upstream stream broke and no candidate could continue it.",
  });
  assert.equal(translator.result?.output_text, "Hello", "the partial text is kept in the failed response");
  // The SDK's stream helper turns the in-band error into a rejection, as with OpenAI's own service.
  await assert.rejects(ResponseStream.fromReadableStream(jsonLines(events)).finalResponse(), (thrown: unknown) => {
    assert.equal((thrown as { code?: unknown }).code, "stream_interrupted");
    return true;
  });
});

test("responses stream: fail() before any chunk still starts the response so SDKs can read the failure", async () => {
  const translator = new ResponsesStreamTranslator({
    echo,
    ids: sequentialIds(),
    createdAtSeconds: 1767225600,
    fallbackModel: "m",
  });
  const events = parseSse(translator.fail(new StreamInterruptedError("cut"))).map(
    (event) => event.data as unknown as ResponseStreamEvent,
  );
  assert.deepEqual(
    events.map((event) => event.type),
    ["response.created", "response.in_progress", "error", "response.failed"],
  );
  const failed = events.at(-1);
  assert.ok(failed?.type === "response.failed");
  assert.equal(failed.response.model, "m");
});

test("responses stream: reasoning, then text, then a refusal: three parts in two items, accumulated by the SDK", async () => {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1767225600 });
  const delta = (fields: Record<string, unknown>, finishReason: string | null = null) => ({
    model: "m-1",
    choices: [{ index: 0, delta: fields, finish_reason: finishReason }],
  });
  let text = "";
  text += translator.push(delta({ reasoning_content: "Think" }));
  text += translator.push(delta({ reasoning_content: "ing." }));
  text += translator.push(delta({ content: "Partly" }));
  text += translator.push(delta({ refusal: "but no." }, "stop"));
  text += translator.finish();
  assertWellFormed(text);
  const { events, final } = await openaiFinalResponse(text);
  const refusalDelta = events.find((event) => event.type === "response.refusal.delta");
  assert.deepEqual(
    refusalDelta?.type === "response.refusal.delta" ? [refusalDelta.output_index, refusalDelta.content_index] : [],
    [1, 1],
    "the refusal is the message item's second part",
  );
  assert.deepEqual(
    final.output.map((item) => item.type),
    ["reasoning", "message"],
  );
  const [reasoning, message] = final.output;
  assert.equal(reasoning?.type === "reasoning" ? reasoning.summary[0]?.text : "", "Thinking.");
  assert.deepEqual(
    message?.type === "message"
      ? message.content.map((part) => (part.type === "refusal" ? part.refusal : part.text))
      : [],
    ["Partly", "but no."],
  );
  assert.equal(final.output_text, "Partly");
  assert.deepEqual(
    translator.result?.output.map((item) => item.id),
    final.output.map((item) => item.id),
    "the kept response has the items the client accumulated",
  );
});

test("responses stream: a call of a namespace's custom tool is a custom_tool_call naming its namespace, as the SDK reads it", async () => {
  const translator = new ResponsesStreamTranslator({
    echo: {
      ...echo,
      tools: [
        { type: "namespace", name: "editor", description: "Editing.", tools: [{ type: "custom", name: "patch" }] },
      ],
    },
    ids: sequentialIds(),
    createdAtSeconds: 1767225600,
  });
  const chunk = (delta: unknown, finish: string | null = null) => ({
    id: "c",
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  let text = translator.push(
    chunk({
      tool_calls: [{ index: 0, id: "call_e", type: "function", function: { name: "editor__patch", arguments: "" } }],
    }),
  );
  text += translator.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"input":"fix"}' } }] }));
  text += translator.push(chunk({}, "tool_calls"));
  text += translator.finish();
  assertWellFormed(text);
  const { final } = await openaiFinalResponse(text);
  assert.deepEqual(final.output, [
    {
      id: "ctc_1",
      type: "custom_tool_call",
      status: "completed",
      call_id: "call_e",
      name: "patch",
      namespace: "editor",
      input: "fix",
    },
  ]);
});
