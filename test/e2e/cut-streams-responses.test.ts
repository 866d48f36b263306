// Streams that survive failures, Responses door, through the `openai` SDK's `responses.stream`: alpha's stream is cut
// at every event boundary in turn (and stalls at a few), beta continues it. For every cut the client must get the
// uncut answer exactly and a well-formed event sequence (sequence_number increasing, each item added before its
// deltas and done once, no delta after its done, `response.completed` last), usage, and a record saying what
// happened; a cut inside a tool call ends with the in-band `error` event the SDK raises (an APIError with the
// gateway's code and message), never a truncated success.
import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import * as cut from "../helpers/cut-streams.ts";

const TOOLS = cut.TOOL_NAMES.map((name) => ({
  type: "function" as const,
  name,
  parameters: { type: "object", properties: {} },
  strict: false,
}));

/** The event sequence rules the SDK's accumulator and a careful client rely on. */
function assertWellFormed(events: readonly ResponseStreamEvent[], context: string): void {
  const types = events.map((event) => event.type);
  assert.equal(types[0], "response.created", context);
  assert.equal(types.at(-1), "response.completed", `${context}: completed last (${types.slice(-3).join(", ")})`);
  assert.equal(types.filter((type) => type === "response.completed").length, 1, context);
  for (const [index, event] of events.entries()) {
    if (index > 0) {
      assert.ok(
        event.sequence_number > (events[index - 1]?.sequence_number ?? -1),
        `${context}: sequence_number increases at ${index} (${event.type})`,
      );
    }
  }
  const added: number[] = [];
  const doneItems = new Set<number>();
  const doneParts = new Set<string>();
  for (const event of events) {
    const at = event as { output_index?: number; content_index?: number; summary_index?: number };
    if (event.type === "response.output_item.added") {
      assert.equal(event.output_index, added.length, `${context}: items are added in output_index order`);
      added.push(event.output_index);
      continue;
    }
    if (at.output_index === undefined) continue;
    assert.ok(at.output_index < added.length, `${context}: ${event.type} for an item not added yet`);
    assert.ok(!doneItems.has(at.output_index), `${context}: ${event.type} after output_item.done of its item`);
    if (event.type === "response.output_item.done") {
      doneItems.add(at.output_index);
      continue;
    }
    const part = `${at.output_index}/${at.content_index ?? at.summary_index ?? 0}/${event.type.replace(/\.(delta|done)$/, "")}`;
    if (event.type.endsWith(".delta")) assert.ok(!doneParts.has(part), `${context}: ${event.type} after its .done`);
    if (event.type.endsWith(".done")) {
      assert.ok(!doneParts.has(part), `${context}: ${event.type} twice`);
      doneParts.add(part);
    }
  }
  assert.equal(doneItems.size, added.length, `${context}: every item added is done`);
}

async function runOnce(scene: cut.CutScene, client: OpenAI, run: cut.Run): Promise<void> {
  const begun = cut.beginRun(scene, run, "responses");
  const { answer, requestId, context, expected } = begun;
  const fate = expected.fate;
  const stream = client.responses.stream(
    {
      model: cut.MODEL,
      input: "What is the weather in Zürich?",
      ...(answer.finishReason === "tool_calls" ? { tools: TOOLS } : {}),
    },
    { headers: { "x-request-id": requestId } },
  );
  // Asked for before iterating: the SDK rejects it with the in-band `error` event, unhandled if nobody waits for it.
  const final = stream.finalResponse().then(
    (response) => ({ response, error: undefined }),
    (error: unknown) => ({ response: undefined, error }),
  );
  const { events, thrown } = await cut.drain(stream);
  await cut.assertRunRecord(scene, run, begun);
  if (fate === "error") {
    // The SDK raises OpenAI's in-band `error` event as an APIError with its code and message (it throws for the
    // event's nested `error`, as OpenAI sends it); the gateway's `response.failed` after it is not seen.
    // `finalResponse()` rejects with it.
    assert.ok(thrown instanceof APIError, `${context}: ${String(thrown)}`);
    assert.equal(thrown.code, run.cut?.how === "stall" ? "upstream_timeout" : "stream_interrupted", context);
    assert.match(thrown.message, /^The upstream stream failed after it had started: /, context);
    assert.ok(!events.some((event) => event.type === "response.completed"), `${context}: no completed response`);
    const { error } = await final;
    const failedId = (events.find((event) => event.type === "response.created") as { response?: { id?: string } })
      ?.response?.id;
    if (failedId !== undefined) {
      const kept = await client.responses.retrieve(failedId).catch(() => undefined);
      assert.notEqual(kept?.status, "completed", `${context}: a broken answer is not kept as completed`);
    }
    assert.equal((error as { code?: unknown } | undefined)?.code, thrown.code, `${context}: finalResponse() rejects`);
    return;
  }
  assert.equal(thrown, undefined, `${context}: ${String(thrown)}`);
  assertWellFormed(events, context);
  const { response, error } = await final;
  assert.ok(response !== undefined, `${context}: ${String(error)}`);
  assert.equal(response.status, "completed", context);
  assert.equal(response.output_text, cut.textOf(answer), `${context}: the text, exactly once`);
  const reasoning = response.output
    .flatMap((item) => (item.type === "reasoning" ? item.summary.map((part) => part.text) : []))
    .join("");
  assert.equal(reasoning, cut.expectedReasoningOf(run, expected), `${context}: reasoning`);
  const calls = response.output.filter((item) => item.type === "function_call");
  const expectedCalls = cut.toolCallsOf(answer);
  assert.equal(calls.length, expectedCalls.length, context);
  for (const [index, call] of calls.entries()) {
    assert.equal(call.name, expectedCalls[index]?.name, context);
    assert.deepEqual(JSON.parse(call.arguments), JSON.parse(expectedCalls[index]?.arguments ?? ""), context);
  }
  assert.equal(new Set(calls.map((call) => call.call_id)).size, calls.length, `${context}: call ids are unique`);
  assert.equal(new Set(response.output.map((item) => item.id)).size, response.output.length, `${context}: item ids`);
  // The kept response (`store` defaults to true) is the answer the client streamed, not the broken segment's.
  const kept = await client.responses.retrieve(response.id);
  assert.equal(kept.status, "completed", context);
  assert.equal(kept.output_text, response.output_text, `${context}: the kept response's text`);
  assert.deepEqual(
    kept.output.map((item) => item.type),
    response.output.map((item) => item.type),
    `${context}: the kept response's items`,
  );
  const usage = response.usage;
  assert.ok(usage !== undefined && usage !== null, `${context}: usage`);
  assert.ok(usage.input_tokens > 0 && usage.output_tokens > 0, `${context}: ${JSON.stringify(usage)}`);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens, context);
  const outputTokens = cut.expectedOutputTokensOf(run, expected);
  if (outputTokens !== undefined)
    assert.equal(usage.output_tokens, outputTokens, `${context}: alpha's part and beta's`);
}

cut.testEveryCut(
  "responses.stream",
  (gateway) => new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 }),
  runOnce,
);
