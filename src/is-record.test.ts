import assert from "node:assert/strict";
import { test } from "node:test";
import { isRecord, parseJsonRecord } from "./is-record.ts";

test("isRecord: objects, including class instances and null-prototype objects; not null, arrays or primitives", () => {
  for (const value of [{}, { a: 1 }, Object.create(null), new Date(0)]) assert.equal(isRecord(value), true);
  for (const value of [null, undefined, [], [{}], "x", 1, true, () => ({})]) assert.equal(isRecord(value), false);
});

test("parseJsonRecord: the object a JSON text holds, whitespace around it allowed", () => {
  assert.deepEqual(parseJsonRecord('{"a":1,"b":{"c":[2]}}'), { a: 1, b: { c: [2] } });
  assert.deepEqual(parseJsonRecord(' \n{"a":"x"}\t'), { a: "x" });
  assert.deepEqual(parseJsonRecord("{}"), {});
  // The last of a repeated name, as JSON.parse keeps it.
  assert.deepEqual(parseJsonRecord('{"a":1,"a":2}'), { a: 2 });
});

test("parseJsonRecord: undefined for JSON that is not an object, and for text that is not JSON", () => {
  for (const text of ["[]", '[{"a":1}]', "null", "1", '"{}"', "true", "false"]) {
    assert.equal(parseJsonRecord(text), undefined, text);
  }
  for (const text of ["", " ", "{", '{"a":1', "{'a':1}", '{"a":1}}', "undefined", "NaN", '{"a":1} x']) {
    assert.equal(parseJsonRecord(text), undefined, text);
  }
});

test("parseJsonRecord: a __proto__ key stays an own key and sets no prototype, as JSON.parse reads it", () => {
  const parsed = parseJsonRecord('{"__proto__":{"isAdmin":true},"a":1}');
  assert.ok(parsed !== undefined);
  assert.equal(Object.hasOwn(parsed, "__proto__"), true);
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  assert.equal((parsed as { isAdmin?: unknown }).isAdmin, undefined);
  assert.deepEqual(Object.keys(parsed), ["__proto__", "a"]);
});
