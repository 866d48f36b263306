import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import { KnownForgets, MAX_FORGETS_PER_SCOPE } from "./known-forgets.ts";

const KEEP_MS = 24 * 3_600_000;

test("a known forget is known until its marker would have expired, then pruned", () => {
  const clock = new ManualClock();
  const known = new KnownForgets(clock, KEEP_MS);
  known.note("deployment:a/x", "f1");
  assert.equal(known.isKnown("deployment:a/x", "f1"), true);
  assert.equal(known.isKnown("deployment:a/x", "f2"), false, "another forget of the same scope is not known");
  clock.advance(KEEP_MS - 1);
  known.note("deployment:b/y", "f3");
  assert.equal(known.isKnown("deployment:a/x", "f1"), true);
  clock.advance(1);
  assert.equal(known.isKnown("deployment:a/x", "f1"), false, "pruned once its marker has expired");
  assert.equal(known.size, 1);
  assert.equal(known.isKnown("deployment:b/y", "f3"), true);
  clock.advance(KEEP_MS);
  assert.equal(known.isKnown("deployment:b/y", "f3"), false);
  assert.equal(known.size, 0, "nothing is kept for good");
});

test("noted again, a forget is kept from then on; beyond the count the oldest noted go first", () => {
  const clock = new ManualClock();
  const known = new KnownForgets(clock, KEEP_MS, 3);
  for (const scope of ["a", "b", "c"]) {
    known.note(scope, `${scope}1`);
    clock.advance(1_000);
  }
  known.note("a", "a2"); // moves `a` to the end
  known.note("d", "d1");
  assert.equal(known.size, 3);
  assert.equal(known.isKnown("b", "b1"), false, "the oldest noted went");
  assert.deepEqual(
    ["a2", "c1", "d1"].map((id) => known.isKnown(id[0] ?? "", id)),
    [true, true, true],
  );
  clock.advance(KEEP_MS - 500); // c was noted 1 s before a's second note: past its keep, a not yet
  assert.equal(known.isKnown("c", "c1"), false);
  assert.equal(known.isKnown("a", "a2"), true);
});

test("several forgets of one scope are known at once (a rolling reload: each replica's, heard in any order), a bounded number", () => {
  const clock = new ManualClock();
  const known = new KnownForgets(clock, KEEP_MS);
  known.note("deployment:a/x", "own");
  known.note("deployment:a/x", "heard");
  assert.equal(known.isKnown("deployment:a/x", "own"), true, "its own forget, noted before one heard, forgotten");
  assert.equal(known.isKnown("deployment:a/x", "heard"), true);
  assert.equal(known.isKnown("deployment:a/x", "other"), false);
  for (let index = 0; index < MAX_FORGETS_PER_SCOPE; index++) known.note("deployment:a/x", `f${index}`);
  assert.equal(known.isKnown("deployment:a/x", "own"), false, "the oldest noted go beyond the bound");
  assert.equal(known.isKnown("deployment:a/x", "f0"), true);
  assert.equal(known.size, 1);
});
