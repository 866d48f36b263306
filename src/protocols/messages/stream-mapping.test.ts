import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { MessageStream } from "@anthropic-ai/sdk/lib/MessageStream";
import type { ContentBlock, RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { Stream } from "@anthropic-ai/sdk/streaming";
import { StreamInterruptedError, UpstreamTimeoutError } from "../../errors/gateway-error.ts";
import { jsonLines, matchesGolden, parseSse, readChatChunks, sseResponse } from "../__fixtures__/fixtures.ts";
import { sequentialIds } from "../ids.ts";
import { MessagesStreamTranslator } from "./stream-mapping.ts";

const FIXTURES = join(import.meta.dirname, "__fixtures__");

function translate(fixture: string, stopSequences: string[] = []) {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences, promptTokensEstimate: 20 });
  let text = "";
  for (const chunk of readChatChunks(fixture)) text += translator.push(chunk);
  text += translator.finish();
  return { text, translator };
}

/** What the Anthropic SDK makes of the stream: its SSE parser (named events only), then its MessageStream. */
async function anthropicEvents(text: string): Promise<RawMessageStreamEvent[]> {
  const events: RawMessageStreamEvent[] = [];
  for await (const event of Stream.fromSSEResponse<RawMessageStreamEvent>(sseResponse(text), new AbortController())) {
    events.push(event);
  }
  return events;
}

async function finalMessage(text: string) {
  const events = await anthropicEvents(text);
  return { events, message: await MessageStream.fromReadableStream(jsonLines(events)).finalMessage() };
}

/** Each block's content as the SDK's MessageStream hands it over at the block's content_block_stop. */
async function completedBlocks(text: string): Promise<ContentBlock[]> {
  const stream = MessageStream.fromReadableStream(jsonLines(await anthropicEvents(text)));
  const blocks: ContentBlock[] = [];
  // A copy: the SDK goes on mutating the block if (wrongly) more deltas come for it.
  stream.on("contentBlock", (block) => blocks.push(structuredClone(block)));
  await stream.done();
  return blocks;
}

/** Anthropic's block contract: indexes 0, 1, 2... one block open at a time, deltas only to it, each stopped. */
function assertWholeBlocks(text: string): void {
  let nextIndex = 0;
  let openIndex: number | undefined;
  for (const { data } of parseSse(text)) {
    const where = JSON.stringify(data);
    if (data.type === "content_block_start") {
      assert.equal(openIndex, undefined, `a block starts while another is open: ${where}`);
      assert.equal(data.index, nextIndex, `blocks are numbered in order: ${where}`);
      openIndex = nextIndex;
      nextIndex += 1;
    } else if (data.type === "content_block_delta") {
      assert.equal(data.index, openIndex, `a delta goes to the open block only: ${where}`);
    } else if (data.type === "content_block_stop") {
      assert.equal(data.index, openIndex, `only the open block stops: ${where}`);
      openIndex = undefined;
    } else if (data.type === "message_delta") {
      assert.equal(openIndex, undefined, "every block stopped before message_delta");
    }
  }
}

const toolCallChunk = (...toolCalls: unknown[]) => ({
  model: "m-1",
  choices: [{ index: 0, delta: { tool_calls: toolCalls } }],
});

const GOLDEN_FIXTURES = [
  "text",
  "tool-call",
  "text-then-tools",
  "length",
  "quirky-tool-call",
  "indexless-tool-calls",
  "interleaved-tool-calls",
];

for (const fixture of GOLDEN_FIXTURES) {
  test(`messages stream: ${fixture} matches its recorded event sequence`, () => {
    const { text } = translate(fixture);
    for (const event of parseSse(text)) assert.equal(event.event, event.data.type, "every event is named");
    matchesGolden(join(FIXTURES, `${fixture}.events.txt`), text);
  });
}

test("messages stream: a text answer accumulates in the Anthropic SDK to the text, stop reason and usage", async () => {
  const { text, translator } = translate("text");
  const { events, message } = await finalMessage(text);
  assert.deepEqual(
    events.map((event) => event.type),
    [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ],
    "ping is sent and skipped by the SDK",
  );
  assert.deepEqual(message.content, [{ type: "text", text: "Hello, world!", citations: null }]);
  assert.equal(message.stop_reason, "end_turn");
  assert.equal(message.model, "llama-3.3-70b-versatile");
  assert.equal(message.id, "msg_1");
  assert.equal(message.usage.input_tokens, 17, "prompt tokens less the 4 cached ones");
  assert.equal(message.usage.cache_read_input_tokens, 4);
  assert.equal(message.usage.output_tokens, 9);
  assert.deepEqual(translator.result?.content, message.content);
});

test("messages stream: text then two calls gives a text block and two tool_use blocks with parsed input", async () => {
  const { text } = translate("text-then-tools");
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [
    { type: "text", text: "Let me check both.", citations: null },
    { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
    { type: "tool_use", id: "call_b", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
  ]);
  assert.equal(message.stop_reason, "tool_use");
});

test("messages stream: calls sent whole without an index (Gemini) are one tool_use block each", async () => {
  const { text } = translate("indexless-tool-calls");
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [
    { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
    { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
  ]);
  assert.equal(message.stop_reason, "tool_use");
});

test("messages stream: a new id at an index already used starts a new tool_use block", async () => {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  const calls = (...toolCalls: unknown[]) => ({
    model: "m-1",
    choices: [{ index: 0, delta: { tool_calls: toolCalls } }],
  });
  let text = "";
  text += translator.push(calls({ index: 0, id: "call_a", function: { name: "lookup", arguments: '{"q":' } }));
  text += translator.push(calls({ index: 0, function: { arguments: "1}" } }));
  // Some providers number every call 0; only the id tells the next one apart.
  text += translator.push(calls({ index: 0, id: "call_b", function: { name: "lookup", arguments: '{"q":2}' } }));
  text += translator.finish();
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [
    { type: "tool_use", id: "call_a", name: "lookup", input: { q: 1 }, caller: { type: "direct" } },
    { type: "tool_use", id: "call_b", name: "lookup", input: { q: 2 }, caller: { type: "direct" } },
  ]);
  assert.deepEqual(translator.result?.content, message.content);
});

test("messages stream: a name sent after the id still opens the tool_use block; no usage chunk keeps the estimate", async () => {
  const { text } = translate("quirky-tool-call");
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [
    { type: "tool_use", id: "call_q", name: "lookup", input: { q: 1 }, caller: { type: "direct" } },
  ]);
  assert.equal(message.stop_reason, "tool_use");
  assert.equal(message.usage.input_tokens, 20);
});

test("messages stream: length is max_tokens; a named stop string the client asked for is stop_sequence", async () => {
  assert.equal((await finalMessage(translate("length").text)).message.stop_reason, "max_tokens");
  const stopped = (await finalMessage(translate("stop-sequence", ["END"]).text)).message;
  assert.equal(stopped.stop_reason, "stop_sequence");
  assert.equal(stopped.stop_sequence, "END");
  const unasked = (await finalMessage(translate("stop-sequence", []).text)).message;
  assert.equal(unasked.stop_reason, "end_turn");
});

test("messages stream: fail() is an `event: error` the SDK raises as its typed error", async () => {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  const chunks = readChatChunks("text");
  const text = translator.push(chunks[1]) + translator.fail(new UpstreamTimeoutError("The stream stalled."));
  assert.equal(translator.finish(), "", "nothing after the end");
  const last = parseSse(text).at(-1);
  assert.deepEqual(last, {
    event: "error",
    data: { type: "error", error: { type: "timeout_error", message: "The stream stalled." } },
  });
  await assert.rejects(anthropicEvents(text), (error: unknown) => {
    assert.equal((error as { type?: unknown }).type, "timeout_error");
    return true;
  });
  const interrupted = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  assert.match(interrupted.fail(new StreamInterruptedError("cut")), /"type":"api_error"/);
});

test("messages stream: interleaved parallel calls (OpenAI) become whole blocks, one after another, each input final at its stop", async () => {
  const { text, translator } = translate("interleaved-tool-calls");
  assertWholeBlocks(text);
  const expected = [
    { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
    { type: "tool_use", id: "call_b", name: "get_time", input: { tz: "CET" }, caller: { type: "direct" } },
  ];
  assert.deepEqual(await completedBlocks(text), expected, "the SDK's contentBlock events");
  assert.deepEqual((await finalMessage(text)).message.content, expected);
  assert.deepEqual(translator.result?.content, expected);
});

test("messages stream: a call's arguments go out as they come while its block is open; a complete call gives way at once", () => {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  translator.push(toolCallChunk({ index: 0, id: "call_a", function: { name: "lookup", arguments: "" } }));
  translator.push(toolCallChunk({ index: 1, id: "call_b", function: { name: "lookup", arguments: '{"q":' } }));
  const first = parseSse(translator.push(toolCallChunk({ index: 0, function: { arguments: '{"q":1}' } })));
  // Call a is whole now, so call b (held back) starts in the same write, with what it had so far.
  assert.deepEqual(
    first.map(({ data }) => [data.type, data.index]),
    [
      ["content_block_delta", 0],
      ["content_block_stop", 0],
      ["content_block_start", 1],
      ["content_block_delta", 1],
    ],
  );
  const second = parseSse(translator.push(toolCallChunk({ index: 1, function: { arguments: "2}" } })));
  assert.deepEqual(
    second.map(({ data }) => [data.type, data.index]),
    [["content_block_delta", 1]],
  );
  // Calls sent one after another are not held back either: the next one starts as soon as it is named.
  const sequential = translate("text-then-tools").translator;
  assert.equal(sequential.result?.content.length, 3);
  const replay = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  const chunks = readChatChunks("text-then-tools");
  for (const chunk of chunks.slice(0, 2)) replay.push(chunk);
  assert.match(replay.push(chunks[2]), /"type":"content_block_start","index":2/);
});

test("messages stream: calls held back behind an open call that never completes are not lost, before text or at the end", async () => {
  // A provider may send "" for a call without arguments, which is never a whole object: the calls behind it
  // wait for what ends the open block.
  const beforeText = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  let text = beforeText.push(toolCallChunk({ index: 0, id: "call_a", function: { name: "now", arguments: "" } }));
  text += beforeText.push(toolCallChunk({ index: 1, id: "call_b", function: { name: "lookup", arguments: '{"q":' } }));
  text += beforeText.push(toolCallChunk({ index: 1, function: { arguments: "2}" } }));
  text += beforeText.push({ model: "m-1", choices: [{ index: 0, delta: { content: "Done." } }] });
  text += beforeText.finish();
  assertWholeBlocks(text);
  const withText = [
    { type: "tool_use", id: "call_a", name: "now", input: {}, caller: { type: "direct" } },
    { type: "tool_use", id: "call_b", name: "lookup", input: { q: 2 }, caller: { type: "direct" } },
    { type: "text", text: "Done.", citations: null },
  ];
  assert.deepEqual(await completedBlocks(text), withText);
  assert.deepEqual(beforeText.result?.content, withText);

  // Cut by max_tokens while the first call's arguments were still coming: the calls behind it come out at the end.
  const atEnd = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  text = atEnd.push(
    toolCallChunk({ index: 0, id: "call_a", function: { name: "get_weather", arguments: '{"city":' } }),
  );
  text += atEnd.push(
    toolCallChunk({ index: 1, id: "call_b", function: { name: "get_weather", arguments: '{"city":"Rome"}' } }),
  );
  text += atEnd.push(
    toolCallChunk({ index: 2, id: "call_c", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }),
  );
  text += atEnd.push({
    model: "m-1",
    choices: [
      { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Par' } }] }, finish_reason: "length" },
    ],
  });
  text += atEnd.finish();
  assertWholeBlocks(text);
  const calls = [
    { type: "tool_use", id: "call_a", name: "get_weather", input: {}, caller: { type: "direct" } },
    { type: "tool_use", id: "call_b", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
    { type: "tool_use", id: "call_c", name: "get_weather", input: { city: "Oslo" }, caller: { type: "direct" } },
  ];
  assert.deepEqual(await completedBlocks(text), calls);
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, calls);
  assert.equal(message.stop_reason, "max_tokens");
  assert.deepEqual(atEnd.result?.content, calls);
  assert.match(text, /"partial_json":"\\"Par"/, "the open call's own arguments still went out");
});

test("messages stream: text between interleaved calls: the call held back meanwhile keeps all its arguments, after the text", async () => {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  let text = translator.push(
    toolCallChunk({ index: 0, id: "call_a", function: { name: "lookup", arguments: '{"q":' } }),
  );
  text += translator.push(toolCallChunk({ index: 1, id: "call_b", function: { name: "lookup", arguments: '{"q":' } }));
  text += translator.push({ model: "m-1", choices: [{ index: 0, delta: { content: "Looking up." } }] });
  text += translator.push(toolCallChunk({ index: 0, function: { arguments: "1}" } }));
  // Had call b's block started and stopped before the text, it would have taken none of this.
  text += translator.push(toolCallChunk({ index: 1, function: { arguments: "2}" } }));
  text += translator.finish();
  assertWholeBlocks(text);
  const expected = [
    { type: "tool_use", id: "call_a", name: "lookup", input: { q: 1 }, caller: { type: "direct" } },
    { type: "text", text: "Looking up.", citations: null },
    { type: "tool_use", id: "call_b", name: "lookup", input: { q: 2 }, caller: { type: "direct" } },
  ];
  assert.deepEqual(await completedBlocks(text), expected, "the SDK's contentBlock events");
  assert.deepEqual((await finalMessage(text)).message.content, expected);
  assert.deepEqual(translator.result?.content, expected);
});

test("a long tool call in small pieces is translated in time linear in its arguments (a file a model writes)", () => {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  const call = (fn: Record<string, string>, id?: string) => ({
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...(id === undefined ? {} : { id }), function: fn }] } }],
  });
  const args = JSON.stringify({ path: "big.txt", content: "x".repeat(300_000) });
  const started = performance.now();
  translator.push(call({ name: "write", arguments: "" }, "call_1"));
  // 4 characters a piece, as providers stream. Parsing the arguments so far at each piece took minutes.
  for (let at = 0; at < args.length; at += 4) translator.push(call({ arguments: args.slice(at, at + 4) }));
  translator.finish();
  const elapsedMs = performance.now() - started;
  assert.ok(elapsedMs < 15_000, `${Math.round(elapsedMs)} ms`);
  const [block] = translator.result?.content ?? [];
  assert.deepEqual(block?.type === "tool_use" ? block.input : undefined, JSON.parse(args));
});
