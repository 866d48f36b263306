import assert from "node:assert/strict";
import { test } from "node:test";
import { firstChoice, firstChunkChoice } from "./chat-choice.ts";

test("firstChoice: the first whose index is 0 or absent; entries that are not objects are skipped", () => {
  const zero = { index: 0, message: {} };
  const indexless = { message: {} };
  assert.equal(firstChoice([{ index: 1 }, zero]), zero);
  assert.equal(firstChoice([{ index: 1 }, indexless, zero]), indexless);
  assert.equal(firstChoice([null, "x", [zero], zero]), zero);
  assert.equal(firstChoice([{ index: 1 }, { index: "0" }]), undefined);
  assert.equal(firstChoice([]), undefined);
  assert.equal(firstChoice({ 0: zero }), undefined);
  assert.equal(firstChoice(undefined), undefined);
});

test("firstChunkChoice: firstChoice's, else position 0 unless a choice's index is a number above 0", () => {
  const zero = { index: 0, delta: {} };
  assert.equal(firstChunkChoice([{ index: 1 }, zero]), zero);
  for (const index of ["0", null, -1]) {
    const odd = { index, delta: {} };
    assert.equal(firstChunkChoice([odd]), odd, `index ${JSON.stringify(index)}`);
  }
  assert.equal(firstChunkChoice([{ index: 1, delta: {} }]), undefined, "the second choice alone");
  assert.equal(firstChunkChoice([{ index: "0" }, { index: 1 }]), undefined);
  assert.equal(firstChunkChoice([null, { index: "0" }]), undefined);
  assert.equal(firstChunkChoice({ 0: zero }), undefined);
  assert.equal(firstChunkChoice([]), undefined);
});
