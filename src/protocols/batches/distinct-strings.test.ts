import assert from "node:assert/strict";
import { test } from "node:test";
import { DistinctStrings } from "./distinct-strings.ts";

test("a set of strings as Set is one, either side of V8's hashed length: equal ones once, a digest collision kept apart", () => {
  const strings = new DistinctStrings();
  const values = [
    "a",
    "",
    "x".repeat(16_383),
    "x".repeat(16_384),
    `${"y".repeat(20_000)}\ud800`,
    `${"y".repeat(20_000)}\ufffd`,
  ];
  for (const value of values) assert.equal(strings.add(value), true, `${value.length} characters, added`);
  // The same texts again, built anew (not the same string objects): each is there already.
  for (const value of values) assert.equal(strings.add(`${value.slice(0, 1)}${value.slice(1)}`), false);
  assert.equal(strings.size, values.length);
  assert.equal(strings.first, "a");
  assert.equal(new DistinctStrings().first, undefined);
});
