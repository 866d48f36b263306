import assert from "node:assert/strict";
import { test } from "node:test";
import { isJsonDeeperThan, jsonShapeOverBounds } from "./json-shape.ts";

test("depth counts objects and arrays, not brackets inside strings or after escapes", () => {
  assert.equal(isJsonDeeperThan('{"a":[1,{"b":2}]}', 3), false);
  assert.equal(isJsonDeeperThan('{"a":[1,{"b":2}]}', 2), true);
  assert.equal(isJsonDeeperThan(`{"a":"${"[".repeat(1000)}"}`, 1), false);
  assert.equal(isJsonDeeperThan(`{"a":"\\"${"{".repeat(10)}"}`, 1), false);
  assert.equal(isJsonDeeperThan(`${"[".repeat(10_000)}${"]".repeat(10_000)}`, 64), true);
  assert.equal(isJsonDeeperThan(`[${"[],".repeat(100_000)}[]]`, 2), false);
  assert.equal(isJsonDeeperThan(`["a\\\\",[[1]]]`, 2), true, "an escaped backslash ends before the quote");
  assert.equal(isJsonDeeperThan(`["a\\"[[[",1]`, 1), false, "an escaped quote does not end the string");
});

test("width counts one object's own members, not its nested objects', an array's elements or colons in strings", () => {
  assert.equal(jsonShapeOverBounds('{"a":1,"b":2,"c":3}', 64, 3), undefined);
  assert.equal(jsonShapeOverBounds('{"a":1,"b":2,"c":3,"d":4}', 64, 3), "wide");
  assert.equal(jsonShapeOverBounds('{"a":{"x":1,"y":2},"b":{"x":1,"y":2},"c":[1,2,3,4,5]}', 64, 3), undefined);
  assert.equal(jsonShapeOverBounds('[{"a":1},{"a":1},{"a":1},{"a":1}]', 64, 1), undefined);
  assert.equal(jsonShapeOverBounds('{"a":"b:c:d:e:f","g:h":1}', 64, 2), undefined);
  assert.equal(jsonShapeOverBounds('{"a":[{"x":1,"y":2,"z":3}]}', 64, 2), "wide");
  assert.equal(jsonShapeOverBounds(`${"[".repeat(100)}${"]".repeat(100)}`, 64, 3), "deep");
});
