// Streams that survive failures, Anthropic Messages door, through `@anthropic-ai/sdk`'s `messages.stream` and its
// `finalMessage()`: alpha's stream is cut at every event boundary in turn (and stalls at a few), beta continues it.
// For every cut the client must get the uncut answer exactly (text, thinking, tool_use input), well-formed events
// (message_start first, content_block_start/stop pairs with increasing indexes, message_delta then message_stop
// last), usage, and a record saying what happened; a cut inside a tool call ends with `event: error`, which the SDK
// raises, never a truncated success.
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import type { RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import * as cut from "../helpers/cut-streams.ts";

const TOOLS = cut.TOOL_NAMES.map((name) => ({ name, input_schema: { type: "object" as const, properties: {} } }));

function assertWellFormed(events: readonly RawMessageStreamEvent[], context: string): void {
  const types = events.map((event) => event.type);
  assert.equal(types[0], "message_start", context);
  assert.deepEqual(types.slice(-2), ["message_delta", "message_stop"], `${context}: ${types.slice(-4).join(", ")}`);
  assert.equal(types.filter((type) => type === "message_delta").length, 1, context);
  let open: number | undefined;
  let nextIndex = 0;
  for (const event of events) {
    if (event.type === "content_block_start") {
      assert.equal(open, undefined, `${context}: block ${event.index} starts while ${open} is open`);
      assert.equal(event.index, nextIndex, `${context}: block indexes count up`);
      open = event.index;
      nextIndex++;
    } else if (event.type === "content_block_delta") {
      assert.equal(event.index, open, `${context}: a delta for block ${event.index}, open: ${open}`);
    } else if (event.type === "content_block_stop") {
      assert.equal(event.index, open, `${context}: stop of block ${event.index}, open: ${open}`);
      open = undefined;
    } else if (event.type === "message_delta" || event.type === "message_stop") {
      assert.equal(open, undefined, `${context}: ${event.type} with block ${open} open`);
    }
  }
}

async function runOnce(scene: cut.CutScene, client: Anthropic, run: cut.Run): Promise<void> {
  const begun = cut.beginRun(scene, run, "messages");
  const { answer, requestId, context, expected } = begun;
  const fate = expected.fate;
  const isThinking = cut.reasoningOf(answer) !== "";
  const stream = client.messages.stream(
    {
      model: cut.MODEL,
      max_tokens: 2000,
      messages: [{ role: "user", content: "What is the weather in Zürich?" }],
      ...(answer.finishReason === "tool_calls" ? { tools: TOOLS } : {}),
      ...(isThinking ? { thinking: { type: "enabled", budget_tokens: 1024 } } : {}),
    },
    { headers: { "x-request-id": requestId } },
  );
  const final = stream.finalMessage().then(
    (message) => ({ message, error: undefined }),
    (error: unknown) => ({ message: undefined, error }),
  );
  const { events, thrown } = await cut.drain(stream);
  await cut.assertRunRecord(scene, run, begun);
  const { message, error } = await final;
  if (fate === "error") {
    assert.ok(thrown instanceof Anthropic.APIError, `${context}: expected the SDK to raise, got ${String(thrown)}`);
    assert.ok(error instanceof Anthropic.APIError, `${context}: finalMessage() rejects, got ${String(error)}`);
    const type = (error.error as { error?: { type?: string } }).error?.type;
    assert.equal(type, run.cut?.how === "stall" ? "timeout_error" : "api_error", context);
    assert.ok(!events.some((event) => event.type === "message_stop"), `${context}: no message_stop`);
    return;
  }
  assert.equal(thrown, undefined, `${context}: ${String(thrown)}`);
  assert.ok(message !== undefined, `${context}: ${String(error)}`);
  assertWellFormed(events, context);
  const text = message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
  assert.equal(text, cut.textOf(answer), `${context}: the text, exactly once`);
  const thinking = message.content.map((block) => (block.type === "thinking" ? block.thinking : "")).join("");
  assert.equal(thinking, cut.expectedReasoningOf(run, expected), `${context}: thinking`);
  const calls = message.content.filter((block) => block.type === "tool_use");
  const expectedCalls = cut.toolCallsOf(answer);
  assert.equal(calls.length, expectedCalls.length, context);
  for (const [index, call] of calls.entries()) {
    assert.equal(call.name, expectedCalls[index]?.name, context);
    assert.deepEqual(call.input, JSON.parse(expectedCalls[index]?.arguments ?? ""), context);
  }
  assert.equal(new Set(calls.map((call) => call.id)).size, calls.length, `${context}: tool_use ids are unique`);
  assert.equal(message.stop_reason, answer.finishReason === "tool_calls" ? "tool_use" : "end_turn", context);
  assert.ok(
    message.usage.input_tokens > 0 && message.usage.output_tokens > 0,
    `${context}: ${JSON.stringify(message.usage)}`,
  );
  const outputTokens = cut.expectedOutputTokensOf(run, expected);
  if (outputTokens !== undefined)
    assert.equal(message.usage.output_tokens, outputTokens, `${context}: alpha's part and beta's`);
}

cut.testEveryCut(
  "messages.stream",
  (gateway) => new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }),
  runOnce,
);
