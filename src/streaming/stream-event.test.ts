import assert from "node:assert/strict";
import { test } from "node:test";
import { inspectAudioEvent, inspectEvent, inspectResponsesEvent } from "./stream-event.ts";

const event = (data: unknown) => ({ data: typeof data === "string" ? data : JSON.stringify(data) });

test("chat chunks: reasoning and refusal deltas are content; nothing in chat is final (its end is [DONE])", () => {
  const reasoning = inspectEvent(event({ choices: [{ index: 0, delta: { reasoning_content: "hmm" } }] }));
  const refusal = inspectEvent(event({ choices: [{ index: 0, delta: { refusal: "no" } }] }));
  const role = inspectEvent(event({ choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }));
  assert.deepEqual([reasoning.hasContent, refusal.hasContent, role.hasContent], [true, true, false]);
  assert.equal(inspectEvent(event({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })).isFinal, false);
});

test("Responses events: preamble is not content, deltas are text, completed is final with usage, failures are errors", () => {
  assert.equal(inspectResponsesEvent(event({ type: "response.created", response: {} })).hasContent, false);
  assert.equal(inspectResponsesEvent(event({ type: "response.in_progress", response: {} })).hasContent, false);
  const added = inspectResponsesEvent(event({ type: "response.output_item.added", item: {} }));
  assert.deepEqual([added.hasContent, added.isFinal, added.text], [true, false, ""]);
  assert.equal(inspectResponsesEvent(event({ type: "response.output_text.delta", delta: "Hi" })).text, "Hi");
  const completed = inspectResponsesEvent(
    event({ type: "response.completed", response: { usage: { input_tokens: 5, output_tokens: 2 } } }),
  );
  assert.deepEqual(
    [completed.isFinal, completed.finishReason, completed.usage],
    [true, "stop", { promptTokens: 5, completionTokens: 2 }],
  );
  const incomplete = inspectResponsesEvent(event({ type: "response.incomplete", response: { usage: null } }));
  assert.deepEqual([incomplete.isFinal, incomplete.finishReason, incomplete.usage], [true, "length", undefined]);
  for (const type of ["error", "response.failed"]) {
    const failed = inspectResponsesEvent(event({ type, response: {} }));
    assert.deepEqual([failed.isError, failed.hasContent, failed.isFinal], [true, false, false], type);
  }
  assert.equal(inspectResponsesEvent(event("{not json")).isMalformed, true);
});

test("an event named `error` is an error event whatever its data, with the error in `json.error`", () => {
  const named = (data: string) => inspectEvent({ data, event: "error" });
  assert.deepEqual(named('{"message":"boom"}').json, { error: { message: "boom" } });
  assert.deepEqual(named('{"error":{"message":"boom"}}').json, { error: { message: "boom" } });
  assert.deepEqual(named("upstream overloaded").json, { error: { message: "upstream overloaded" } });
  for (const data of ['{"message":"boom"}', "upstream overloaded"]) {
    const info = named(data);
    assert.deepEqual([info.isError, info.isMalformed, info.hasContent, info.isDone], [true, false, false, false]);
  }
  // Unnamed, the same data is no error: a chunk without choices, or a malformed event.
  assert.equal(inspectEvent(event({ message: "boom" })).isError, false);
  assert.equal(inspectEvent(event("upstream overloaded")).isMalformed, true);
});

test("audio events: deltas are content (a transcript's text counted), done is final with its usage, errors are errors", () => {
  const audio = inspectAudioEvent(event({ type: "speech.audio.delta", audio: "AAEC" }));
  assert.deepEqual([audio.hasContent, audio.isFinal, audio.text], [true, false, ""]);
  const text = inspectAudioEvent(event({ type: "transcript.text.delta", delta: "Hel" }));
  assert.deepEqual([text.hasContent, text.text], [true, "Hel"]);
  const spoken = inspectAudioEvent(
    event({ type: "speech.audio.done", usage: { input_tokens: 7, output_tokens: 40, total_tokens: 47 } }),
  );
  assert.deepEqual([spoken.isFinal, spoken.usage], [true, { promptTokens: 7, completionTokens: 40 }]);
  // A per-minute model's usage is in seconds, not tokens: no token counts are made up from it.
  const transcribed = inspectAudioEvent(
    event({ type: "transcript.text.done", text: "Hello", usage: { type: "duration", seconds: 3 } }),
  );
  assert.deepEqual([transcribed.isFinal, transcribed.usage], [true, undefined]);
  for (const data of [{ type: "error", error: { message: "overloaded" } }, { error: { message: "bad" } }]) {
    const failed = inspectAudioEvent(event(data));
    assert.deepEqual([failed.isError, failed.hasContent], [true, false]);
  }
  assert.equal(inspectAudioEvent(event({ type: "speech.audio.unknown" })).hasContent, false);
  assert.equal(inspectAudioEvent(event("[DONE]")).isDone, true);
  assert.equal(inspectAudioEvent(event("{not json")).isMalformed, true);
});
