import assert from "node:assert/strict";
import { test } from "node:test";
import { JsonObjectPrefix } from "./json-object-prefix.ts";

/** `pieces` fed one after another: what each accepted. */
function accepted(...pieces: string[]): string[] {
  const prefix = new JsonObjectPrefix();
  return pieces.map((piece) => prefix.accept(piece));
}

test("json object prefix: every valid object is accepted whole, in any pieces", () => {
  const objects = [
    "{}",
    ' { "a" : 1 } \n',
    '{"a":[1,-2.5e+3,0,0.1,1E9,true,false,null,"x",{"b":[]},[]],"c":{"d":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}}',
    '{"emoji":"😀","text":"line"}',
  ];
  for (const text of objects) {
    // White space before the object is left out (below); after it, kept.
    assert.deepEqual(accepted(text), [text.trimStart()]);
    // One character at a time: a piece that ends mid-token is accepted too.
    assert.equal(accepted(...text).join(""), text.trimStart());
    JSON.parse(text);
  }
});

test("json object prefix: it stops at the first character no object can go on with, and accepts nothing after", () => {
  assert.deepEqual(accepted('{"city":"Paris"}}', ', "b": 2'), ['{"city":"Paris"}', ""]);
  assert.deepEqual(accepted("Paris"), [""]);
  assert.deepEqual(accepted("[1]"), [""]);
  assert.deepEqual(accepted("null"), [""]);
  assert.deepEqual(accepted('{"a":1}{"a":1}'), ['{"a":1}']);
  assert.deepEqual(accepted("{'a': 1}"), ["{"]);
  assert.deepEqual(accepted("{a: 1}"), ["{"]);
  assert.deepEqual(accepted('{"a" 1}'), ['{"a" ']);
  assert.deepEqual(accepted('{"a":01}'), ['{"a":0']);
  assert.deepEqual(accepted('{"a":-}'), ['{"a":-']);
  assert.deepEqual(accepted('{"a":1.}'), ['{"a":1.']);
  assert.deepEqual(accepted('{"a":tru}'), ['{"a":tru']);
  assert.deepEqual(accepted('{"a":[1,]}'), ['{"a":[1,']);
  assert.deepEqual(accepted('{"a":1,}'), ['{"a":1,']);
  assert.deepEqual(accepted('{"a":[1}'), ['{"a":[1']);
  assert.deepEqual(accepted('{"a":"\\x"}'), ['{"a":"\\']);
  assert.deepEqual(accepted('{"a":"\\u00g1"}'), ['{"a":"\\u00']);
  // White space before the object is not sent: the SDK's MessageStream threw at a tool_use block's input of " ".
  assert.deepEqual(accepted(" \n", "Paris"), ["", ""]);
  assert.deepEqual(accepted(" \n", '\t{"a":1} '), ["", '{"a":1} ']);
});

test("json object prefix: a control character inside a string is accepted as its escape", () => {
  const [kept = ""] = accepted('{"code":"a\n\tb\u0001"}');
  assert.equal(kept, '{"code":"a\\n\\tb\\u0001"}');
  assert.deepEqual(JSON.parse(kept), { code: "a\n\tb\u0001" });
  // Between tokens, a line break is white space, kept as it is.
  assert.deepEqual(accepted('{\n"a":\n1\n}'), ['{\n"a":\n1\n}']);
});

test("json object prefix: wholePrefix is what the SDK's MessageStream reads from what was sent", () => {
  const cases: [string, string][] = [
    ['{"a":1}}', '{"a":1}'],
    ['{"a":1,}', '{"a":1}'],
    ['{"a":"x" "b":2}', '{"a":"x"}'],
    // A key alone, a value cut off, a number the text ends with (more digits could follow) are left out.
    ['{"a":1,"b":x', '{"a":1}'],
    ['{"a":{"b":[1,"c",tru', '{"a":{"b":[1,"c"]}}'],
    ['{"a":[1.]', '{"a":[]}'],
    ['{"a":12x', "{}"],
    ['{"a":12 x', '{"a":12}'],
    ['{"a":[1]x', '{"a":[1]}'],
    ['{"a":"b\\u00x', "{}"],
    ["Paris", ""],
  ];
  for (const [sent, whole] of cases) {
    const prefix = new JsonObjectPrefix();
    assert.equal(prefix.wholePrefix(prefix.accept(sent)), whole, sent);
  }
});
