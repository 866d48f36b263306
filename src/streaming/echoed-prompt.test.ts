import assert from "node:assert/strict";
import { test } from "node:test";
import { EchoedPrompt } from "./echoed-prompt.ts";

function texts(json: Record<string, unknown>): unknown[] {
  return (json.choices as { text: unknown }[]).map((choice) => choice.text);
}

test("each choice's echo is taken off as it streams, prompt by prompt, n choices each", () => {
  const echo = EchoedPrompt.of({ echo: true, prompt: ["Ab", "Cd"], n: 2 }) as EchoedPrompt;
  const chunk = { choices: [0, 1, 2, 3].map((index) => ({ index, text: ["A", "A", "C", "Cd x"][index] })) };
  const first = echo.generated(chunk, "A");
  assert.deepEqual([texts(first.json), first.firstText], [["", "", "", " x"], ""]);
  assert.deepEqual(texts(chunk), ["A", "A", "C", "Cd x"], "the client's chunk is left as it came");
  const next = { choices: [0, 1, 2].map((index) => ({ index, text: ["b y", "Z", "d"][index] })) };
  // Choice 1 stopped matching its prompt: from there on everything is output.
  assert.deepEqual(texts(echo.generated(next, "b y").json), [" y", "Z", ""]);
});

test("no echo asked, or a prompt of tokens: nothing taken off", () => {
  assert.equal(EchoedPrompt.of({ prompt: "Ab" }), undefined);
  const tokens = EchoedPrompt.of({ echo: true, prompt: [1, 2, 3] }) as EchoedPrompt;
  const chunk = { choices: [{ index: 0, text: "Ab" }] };
  assert.equal(tokens.generated(chunk, "Ab").json, chunk);
});
