import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamedJsonValue, startsNewCall } from "./tool-call-boundary.ts";

function isComplete(...pieces: string[]): boolean {
  const value = new StreamedJsonValue();
  for (const piece of pieces) value.append(piece);
  return value.isComplete;
}

test("a JSON value streamed in pieces is whole only once its outermost object, array or string closes", () => {
  assert.equal(isComplete(), false, "nothing yet");
  assert.equal(isComplete("  "), false);
  assert.equal(isComplete('{"city":', '"Paris"'), false);
  assert.equal(isComplete('{"city":', '"Paris"}'), true);
  assert.equal(isComplete("{}"), true);
  assert.equal(isComplete(' {"a":[1,{"b":[]}]', "} \n"), true, "nested, whitespace around");
  assert.equal(isComplete('{"a":[1,{"b":[]}]'), false, "one still open");
  assert.equal(isComplete("[1,2]"), true);
  assert.equal(isComplete('"text"'), true);
});

test("brackets and quotes inside strings (escaped quotes and backslashes too) do not count", () => {
  assert.equal(isComplete('{"q":"}"'), false);
  assert.equal(isComplete('{"q":"a\\"}'), false, "an escaped quote keeps the string open");
  assert.equal(isComplete('{"q":"a\\', '"}'), false, "the escape split across pieces");
  assert.equal(isComplete('{"q":"a\\\\"}'), true, "an escaped backslash does not escape the quote");
  assert.equal(isComplete('{"q":"{[', '"}'), true);
});

test("a bare number or literal, or anything after a whole value, is never vouched for as whole", () => {
  assert.equal(isComplete("12"), false);
  assert.equal(isComplete("true"), false);
  assert.equal(isComplete('{"a":1}', '{"b":2}'), false, "two values run together");
  assert.equal(isComplete("{}}"), false);
});

const whole = (text: string) => {
  const value = new StreamedJsonValue();
  value.append(text);
  return value;
};

test("startsNewCall: ids decide when both have one; without, a name after a named call whose arguments are whole", () => {
  const named = { id: undefined, name: "f", arguments: whole('{"x":1}') };
  // The same index, no ids (vLLM/TGI/llama.cpp numbering every call 0): the arguments decide.
  assert.equal(startsNewCall(named, { index: 0, id: undefined, name: "f" }), true);
  assert.equal(startsNewCall({ ...named, arguments: whole('{"x":') }, { index: 0, id: undefined, name: "f" }), false);
  assert.equal(startsNewCall({ ...named, arguments: whole("") }, { index: 0, id: undefined, name: "f" }), false);
  assert.equal(startsNewCall(named, { index: 0, id: undefined, name: undefined }), false, "arguments only");
  // Ids: the same id is the same call even with a name again and whole arguments (a provider repeating both).
  assert.equal(startsNewCall({ ...named, id: "a" }, { index: 0, id: "a", name: "f" }), false);
  assert.equal(startsNewCall({ ...named, id: "a", arguments: whole("{") }, { index: 0, id: "b", name: "f" }), true);
  // Indexless (Gemini: each call whole): a name after a named call is the next call, whatever its arguments.
  assert.equal(
    startsNewCall({ ...named, arguments: whole("{") }, { index: undefined, id: undefined, name: "g" }),
    true,
  );
  assert.equal(startsNewCall({ ...named, name: undefined }, { index: undefined, id: undefined, name: "g" }), false);
});
