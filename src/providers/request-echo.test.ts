import assert from "node:assert/strict";
import { test } from "node:test";
import { hasImageParts, isEchoedPhrase, requestTextOf, sentenceAround } from "./request-echo.ts";

test("a phrase's sentence ends at a quote, a line break or a sentence's end, not at a version's dot", () => {
  const text = "Error: input 'the gpt-4.1 model is not supported here' was refused. Next sentence";
  const start = text.indexOf("not supported");
  assert.equal(sentenceAround(text, start, start + 13), "the gpt-4.1 model is not supported here");
  const plain = "First. Tools are not supported by this model. Last";
  const at = plain.indexOf("not supported");
  assert.equal(sentenceAround(plain, at, at + 13), "Tools are not supported by this model");
  const lines = "line one\nit is not supported\nline three";
  const inLines = lines.indexOf("not supported");
  assert.equal(sentenceAround(lines, inLines, inLines + 13), "it is not supported");
});

test("an echo is a sentence of the request's strings or JSON, long enough to be a quotation", () => {
  const request = { messages: [{ role: "user", content: 'He said "X is not supported on Linux at all", sadly' }] };
  const echo = "Blocked: 'X is not supported on Linux at all'";
  const start = echo.indexOf("not supported");
  assert.equal(isEchoedPhrase(echo, start, start + 13, request), true);
  assert.equal(isEchoedPhrase(echo, start, start + 13, undefined), false, "without the request, nothing is an echo");
  // The provider's own sentence around the same phrase.
  const own = "This model: X is not supported for tool calls.";
  const at = own.indexOf("not supported");
  assert.equal(isEchoedPhrase(own, at, at + 13, request), false);
  // Too short to tell: the provider's.
  assert.equal(isEchoedPhrase("'not supported'", 1, 14, { content: "not supported" }), false);
});

test("the request's text is built once per body", () => {
  const body = { messages: [{ content: "Hello" }] };
  assert.equal(requestTextOf(body), requestTextOf(body));
  assert.equal(requestTextOf(body).strings, "hello");
  assert.deepEqual(requestTextOf(undefined), { json: "", strings: "" });
});

test("image parts are found in chat, Responses and Messages bodies alike; documents are not images; a deep body is bounded", () => {
  assert.equal(
    hasImageParts({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "u" } }] }] }),
    true,
  );
  assert.equal(hasImageParts({ input: [{ role: "user", content: [{ type: "input_image", image_url: "u" }] }] }), true);
  // vLLM's untyped image part; its untyped audio is no image.
  assert.equal(hasImageParts({ messages: [{ role: "user", content: [{ image_url: "https://x/a.jpg" }] }] }), true);
  assert.equal(hasImageParts({ messages: [{ role: "user", content: [{ audio_url: "https://x/a.mp3" }] }] }), false);
  assert.equal(hasImageParts({ messages: [{ role: "user", content: [{ type: "image", source: {} }] }] }), true);
  assert.equal(hasImageParts({ input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] }), false);
  assert.equal(hasImageParts({ messages: [{ role: "user", content: [{ type: "document", source: {} }] }] }), false);
  assert.equal(hasImageParts({ input: "describe an image_url" }), false);
  // Only the prompt is read: a tool's schema is no image part.
  assert.equal(hasImageParts({ messages: [], tools: [{ type: "image" }] }), false);
  // Nor a tool call's arguments: data for a tool, not an image shown to the model.
  const toolUse = { type: "tool_use", id: "t", name: "draw", input: { type: "image", source: "cat.png" } };
  assert.equal(hasImageParts({ messages: [{ role: "assistant", content: [toolUse] }] }), false);
  const call = { id: "c", type: "function", function: { name: "draw", arguments: { type: "image_url" } } };
  assert.equal(hasImageParts({ messages: [{ role: "assistant", content: null, tool_calls: [call] }] }), false);
  // A tool result's and a Responses tool output's parts are content.
  const result = { type: "tool_result", tool_use_id: "t", content: [{ type: "image", source: {} }] };
  assert.equal(hasImageParts({ messages: [{ role: "user", content: [result] }] }), true);
  const output = { type: "function_call_output", call_id: "c", output: [{ type: "input_image", image_url: "u" }] };
  assert.equal(hasImageParts({ input: [output] }), true);
  let deep: unknown = { type: "image" };
  for (let depth = 0; depth < 300_000; depth++) deep = [deep];
  assert.equal(hasImageParts({ input: deep }), false, "given up past the bound, without a stack overflow");
});
