import assert from "node:assert/strict";
import { test } from "node:test";
import { isJsonDeeperThan } from "./json-body.ts";

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
