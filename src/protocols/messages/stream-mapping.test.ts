import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { MessageStream } from "@anthropic-ai/sdk/lib/MessageStream";
import type { RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
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

for (const fixture of ["text", "tool-call", "text-then-tools", "length", "quirky-tool-call", "indexless-tool-calls"]) {
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
  assert.deepEqual(message.content, [{ type: "text", text: "Hello, world!" }]);
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
    { type: "text", text: "Let me check both." },
    { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" } },
    { type: "tool_use", id: "call_b", name: "get_weather", input: { city: "Rome" } },
  ]);
  assert.equal(message.stop_reason, "tool_use");
});

test("messages stream: calls sent whole without an index (Gemini) are one tool_use block each", async () => {
  const { text } = translate("indexless-tool-calls");
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [
    { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
    { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" } },
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
    { type: "tool_use", id: "call_a", name: "lookup", input: { q: 1 } },
    { type: "tool_use", id: "call_b", name: "lookup", input: { q: 2 } },
  ]);
  assert.deepEqual(translator.result?.content, message.content);
});

test("messages stream: a name sent after the id still opens the tool_use block; no usage chunk keeps the estimate", async () => {
  const { text } = translate("quirky-tool-call");
  const { message } = await finalMessage(text);
  assert.deepEqual(message.content, [{ type: "tool_use", id: "call_q", name: "lookup", input: { q: 1 } }]);
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
