// Streams that survive failures, Chat Completions door, through the `openai` SDK's chat stream helper: alpha's stream
// is cut at every event boundary in turn (and stalls at a few), beta continues it; the client must get the uncut
// answer exactly (text, reasoning, tool calls), usage, one finish, and the record must say what happened. A cut
// inside a tool call cannot be continued: the client gets the protocol's error, never a truncated success.
import assert from "node:assert/strict";
import OpenAI from "openai";
import * as cut from "../helpers/cut-streams.ts";

const TOOLS = cut.TOOL_NAMES.map((name) => ({
  type: "function" as const,
  function: { name, parameters: { type: "object", properties: {} } },
}));

async function runOnce(scene: cut.CutScene, client: OpenAI, run: cut.Run): Promise<void> {
  const begun = cut.beginRun(scene, run, "chat");
  const { answer, requestId, context, expected } = begun;
  const fate = expected.fate;
  const stream = client.chat.completions.stream(
    {
      model: cut.MODEL,
      messages: [{ role: "user", content: "What is the weather in Zürich?" }],
      stream_options: { include_usage: true },
      ...(answer.finishReason === "tool_calls" ? { tools: TOOLS } : {}),
    },
    { headers: { "x-request-id": requestId } },
  );
  const { events: chunks, thrown } = await cut.drain(stream);
  await cut.assertRunRecord(scene, run, begun);
  if (fate === "error") {
    assert.ok(
      thrown instanceof OpenAI.APIError,
      `${context}: expected the stream's error event, got ${String(thrown)}`,
    );
    assert.equal(thrown.code, run.cut?.how === "stall" ? "upstream_timeout" : "stream_interrupted", context);
    return;
  }
  assert.equal(thrown, undefined, `${context}: ${String(thrown)}`);
  const completion = await stream.finalChatCompletion();
  const choice = completion.choices[0];
  assert.ok(choice !== undefined, context);
  assert.equal(choice.message.content ?? "", cut.textOf(answer), `${context}: the text, exactly once`);
  const reasoning = chunks
    .map((chunk) => (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? "")
    .join("");
  assert.equal(reasoning, cut.expectedReasoningOf(run, expected), `${context}: reasoning`);
  const expectedCalls = cut.toolCallsOf(answer);
  const calls = choice.message.tool_calls ?? [];
  assert.equal(calls.length, expectedCalls.length, context);
  for (const [index, call] of calls.entries()) {
    assert.equal(call.type, "function", context);
    if (call.type !== "function") continue;
    assert.equal(call.function.name, expectedCalls[index]?.name, context);
    assert.deepEqual(JSON.parse(call.function.arguments), JSON.parse(expectedCalls[index]?.arguments ?? ""), context);
  }
  assert.equal(new Set(calls.map((call) => call.id)).size, calls.length, `${context}: tool call ids are unique`);
  assert.equal(choice.finish_reason, answer.finishReason, context);
  const finishes = chunks.flatMap((chunk) => chunk.choices.filter((entry) => entry.finish_reason !== null));
  assert.equal(finishes.length, 1, `${context}: one finish_reason`);
  const usage = chunks.at(-1)?.usage;
  assert.ok(usage !== undefined && usage !== null, `${context}: the last chunk is the usage chunk`);
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, `${context}: ${JSON.stringify(usage)}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, context);
  const outputTokens = cut.expectedOutputTokensOf(run, expected);
  if (outputTokens !== undefined)
    assert.equal(usage.completion_tokens, outputTokens, `${context}: alpha's part and beta's`);
  assert.equal(new Set(chunks.map((chunk) => chunk.id)).size, 1, `${context}: one stream id`);
}

cut.testEveryCut(
  "chat stream",
  (gateway) => new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 }),
  runOnce,
);
