import assert from "node:assert/strict";
import { test } from "node:test";
import { firstChoice } from "./chat-choice.ts";

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
