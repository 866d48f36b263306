import assert from "node:assert/strict";
import { test } from "node:test";
import { MissingRoles } from "./missing-roles.ts";

function chunk(delta: Record<string, unknown>, index = 0) {
  return { choices: [{ index, delta, finish_reason: null }] };
}

test("each choice's first delta gets role assistant when it has none; later deltas and named ones are left alone", () => {
  const roles = new MissingRoles();
  const first = chunk({ content: "Hi" });
  assert.equal(roles.fill(first), true);
  assert.deepEqual(first.choices[0]?.delta, { content: "Hi", role: "assistant" });
  const second = chunk({ content: " there" });
  assert.equal(roles.fill(second), false);
  assert.deepEqual(second.choices[0]?.delta, { content: " there" });
  const otherChoice = chunk({ role: "assistant", content: "Yo" }, 1);
  assert.equal(roles.fill(otherChoice), false);
  assert.equal(roles.fill({ choices: [] }), false);
});
