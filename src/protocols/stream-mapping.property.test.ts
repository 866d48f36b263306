// Property: however a provider splits an answer into chunks (text, then tool calls whose id, name and arguments
// arrive in any pieces; or text and calls interleaved in any order, as OpenAI interleaves parallel calls), both
// stream translators deliver exactly that answer, as the SDKs accumulate it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageStream } from "@anthropic-ai/sdk/lib/MessageStream";
import type { RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { Stream as AnthropicStream } from "@anthropic-ai/sdk/streaming";
import fc from "fast-check";
import { ResponseStream } from "openai/lib/responses/ResponseStream";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { Stream as OpenAiStream } from "openai/streaming";
import { jsonLines, sseResponse } from "./__fixtures__/fixtures.ts";
import { sequentialIds } from "./ids.ts";
import { MessagesStreamTranslator } from "./messages/stream-mapping.ts";
import { toChatRequest } from "./responses/request-mapping.ts";
import { ResponsesStreamTranslator } from "./responses/stream-mapping.ts";

interface Call {
  id: string;
  name: string;
  args: Record<string, string | number>;
}

interface Answer {
  text: string;
  calls: Call[];
}

const answerArbitrary: fc.Arbitrary<Answer> = fc.record({
  text: fc.string({ unit: "grapheme", maxLength: 60 }),
  calls: fc.array(
    fc.record({
      id: fc.stringMatching(/^call_[a-z0-9]{1,8}$/),
      name: fc.stringMatching(/^[a-z_]{1,12}$/),
      args: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.oneof(fc.string({ maxLength: 12 }), fc.integer()), {
        maxKeys: 3,
      }),
    }),
    { maxLength: 3 },
  ),
});

/** Splits `text` at the given cut points (fractions of its length). */
function split(text: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.map((cut) => Math.floor(cut * text.length)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let start = 0;
  for (const point of points) {
    if (point <= start || point >= text.length) continue;
    pieces.push(text.slice(start, point));
    start = point;
  }
  pieces.push(text.slice(start));
  return pieces.filter((piece) => piece !== "");
}

function chunk(delta: Record<string, unknown>, finishReason: string | null = null): unknown {
  return { object: "chat.completion.chunk", model: "m", choices: [{ index: 0, delta, finish_reason: finishReason }] };
}

/** The answer as chat chunks: text in pieces, then each call (id first, the name maybe later, arguments in pieces). */
function chunksOf(answer: Answer, cuts: readonly number[], isNameLate: boolean): unknown[] {
  const chunks: unknown[] = [chunk({ role: "assistant", content: "" })];
  for (const piece of split(answer.text, cuts)) chunks.push(chunk({ content: piece }));
  for (const [index, call] of answer.calls.entries()) {
    const first = isNameLate
      ? { index, id: call.id, function: { arguments: "" } }
      : { index, id: call.id, function: { name: call.name, arguments: "" } };
    chunks.push(chunk({ tool_calls: [first] }));
    const pieces = split(JSON.stringify(call.args), cuts);
    pieces.forEach((piece, position) => {
      const fn = isNameLate && position === 0 ? { name: call.name, arguments: piece } : { arguments: piece };
      chunks.push(chunk({ tool_calls: [{ index, function: fn }] }));
    });
    if (pieces.length === 0 && isNameLate)
      chunks.push(chunk({ tool_calls: [{ index, function: { name: call.name } }] }));
  }
  chunks.push(chunk({}, answer.calls.length > 0 ? "tool_calls" : "stop"));
  chunks.push({
    object: "chat.completion.chunk",
    model: "m",
    choices: [],
    usage: { prompt_tokens: 5, completion_tokens: 7 },
  });
  return chunks;
}

/**
 * The answer as chat chunks with text pieces and the calls' deltas interleaved: each call starts with its id and
 * name, and `schedule` picks, chunk by chunk, which of the pieces still to send goes next (each keeps its own order).
 */
function interleavedChunksOf(answer: Answer, cuts: readonly number[], schedule: readonly number[]): unknown[] {
  const queues: unknown[][] = [split(answer.text, cuts).map((piece) => chunk({ content: piece }))];
  for (const [index, call] of answer.calls.entries()) {
    queues.push([
      chunk({ tool_calls: [{ index, id: call.id, function: { name: call.name, arguments: "" } }] }),
      ...split(JSON.stringify(call.args), cuts).map((piece) =>
        chunk({ tool_calls: [{ index, function: { arguments: piece } }] }),
      ),
    ]);
  }
  const chunks: unknown[] = [chunk({ role: "assistant", content: "" })];
  for (let step = 0; ; step += 1) {
    const pending = queues.filter((queue) => queue.length > 0);
    if (pending.length === 0) break;
    const pick = schedule.length === 0 ? 0 : (schedule[step % schedule.length] ?? 0);
    chunks.push(pending[pick % pending.length]?.shift());
  }
  chunks.push(chunk({}, answer.calls.length > 0 ? "tool_calls" : "stop"));
  return chunks;
}

/** Calls in id order: interleaved calls may come out in another order than they started, each whole. */
function byCallId(answer: Answer): Answer {
  return { text: answer.text, calls: [...answer.calls].sort((left, right) => left.id.localeCompare(right.id)) };
}

const { echo } = toChatRequest({ model: "m", input: "x" }, { get: () => undefined, findItem: () => undefined });

async function viaResponses(chunks: readonly unknown[]): Promise<Answer> {
  const translator = new ResponsesStreamTranslator({ echo, ids: sequentialIds(), createdAtSeconds: 1 });
  let text = "";
  for (const item of chunks) text += translator.push(item);
  text += translator.finish();
  const events: ResponseStreamEvent[] = [];
  for await (const event of OpenAiStream.fromSSEResponse<ResponseStreamEvent>(
    sseResponse(text),
    new AbortController(),
  )) {
    events.push(event);
  }
  const final = await ResponseStream.fromReadableStream(jsonLines(events)).finalResponse();
  return {
    text: final.output_text,
    calls: final.output.flatMap((item) =>
      item.type === "function_call" ? [{ id: item.call_id, name: item.name, args: JSON.parse(item.arguments) }] : [],
    ),
  };
}

async function viaMessages(chunks: readonly unknown[]): Promise<Answer> {
  const translator = new MessagesStreamTranslator({ ids: sequentialIds(), stopSequences: [] });
  let text = "";
  for (const item of chunks) text += translator.push(item);
  text += translator.finish();
  const events: RawMessageStreamEvent[] = [];
  for await (const event of AnthropicStream.fromSSEResponse<RawMessageStreamEvent>(
    sseResponse(text),
    new AbortController(),
  )) {
    events.push(event);
  }
  const message = await MessageStream.fromReadableStream(jsonLines(events)).finalMessage();
  return {
    text: message.content.map((block) => (block.type === "text" ? block.text : "")).join(""),
    calls: message.content.flatMap((block) =>
      block.type === "tool_use" ? [{ id: block.id, name: block.name, args: block.input as Call["args"] }] : [],
    ),
  };
}

test("stream translators: any chunking of text and tool calls accumulates, in both SDKs, to the same answer", async () => {
  await fc.assert(
    fc.asyncProperty(
      answerArbitrary,
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
      fc.boolean(),
      async (answer, cuts, isNameLate) => {
        const chunks = chunksOf(answer, cuts, isNameLate);
        // fast-check builds some objects without a prototype; compare plain JSON values.
        const expected: unknown = JSON.parse(JSON.stringify(answer));
        assert.deepEqual(await viaResponses(chunks), expected);
        assert.deepEqual(await viaMessages(chunks), expected);
      },
    ),
    { numRuns: 150 },
  );
});

test("stream translators: text and parallel calls interleaved in any order accumulate, in both SDKs, to the same answer", async () => {
  const distinctCalls = answerArbitrary.map((answer) => ({
    text: answer.text,
    calls: answer.calls.filter((call, index) => answer.calls.findIndex((other) => other.id === call.id) === index),
  }));
  await fc.assert(
    fc.asyncProperty(
      distinctCalls,
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      async (answer, cuts, schedule) => {
        const chunks = interleavedChunksOf(answer, cuts, schedule);
        const expected = byCallId(JSON.parse(JSON.stringify(answer)));
        assert.deepEqual(byCallId(await viaResponses(chunks)), expected);
        assert.deepEqual(byCallId(await viaMessages(chunks)), expected);
      },
    ),
    { numRuns: 300 },
  );
});
