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

test("a long string's digest is taken in steps, and pieces of any size give the same digest (a pair cut in two too)", () => {
  const long = "😀".repeat(500_000);
  const strings = new DistinctStrings();
  const steps = strings.adding(long, { bytesLeft: 1001 }, 1001);
  let yields = 0;
  let step = steps.next();
  for (; step.done !== true; step = steps.next()) yields += 1;
  assert.equal(step.value, true);
  assert.ok(yields >= Math.floor(long.length / 1001) - 1, `${yields} yields`);
  // Pieces of an odd size cut every pair: the same text built anew is found all the same.
  assert.equal(strings.add(`${long.slice(0, 7)}${long.slice(7)}`), false);
});
