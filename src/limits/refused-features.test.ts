// The book of refused features: lessons per deployment, their end, what clears them, and its bound.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_REFUSALS_PER_DEPLOYMENT, RefusedFeatures } from "./refused-features.ts";

const HOUR_MS = 3_600_000;

test("a lesson holds for its lifetime, for that deployment and feature only", () => {
  const book = new RefusedFeatures(6 * HOUR_MS);
  book.learn("alpha/m", "tools", "HTTP 400: does not support tools", 1_000);
  assert.deepEqual(book.refusalOf("alpha/m", ["seed", "tools"], 2_000), {
    feature: "tools",
    reason: "HTTP 400: does not support tools",
    atMs: 1_000,
    untilMs: 1_000 + 6 * HOUR_MS,
  });
  assert.equal(book.refusalOf("alpha/m", ["seed"], 2_000), undefined, "a request without the feature");
  assert.equal(book.refusalOf("beta/m", ["tools"], 2_000), undefined, "another deployment");
  assert.equal(book.refusalOf("alpha/m", ["tools"], 1_000 + 6 * HOUR_MS), undefined, "over at its end");
});

test("a new lifetime applies to lessons learned from then on", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "tools", "r", 0);
  book.setLifetime(2 * HOUR_MS);
  book.learn("a", "seed", "r", 0);
  assert.equal(book.refusalOf("a", ["tools"], HOUR_MS), undefined);
  assert.equal(book.refusalOf("a", ["seed"], HOUR_MS)?.feature, "seed");
});

test("a success with the feature, a reload pointing the name elsewhere and the admin reset clear lessons", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "tools", "r", 0);
  book.learn("a", "seed", "r", 0);
  book.unlearn("a", ["tools", "temperature"]);
  assert.equal(book.refusalOf("a", ["tools"], 1), undefined);
  assert.equal(book.refusalOf("a", ["seed"], 1)?.feature, "seed");
  book.forget("a");
  assert.equal(book.refusalOf("a", ["seed"], 1), undefined);
  book.learn("b", "tools", "r", 0);
  book.reset();
  assert.equal(book.refusalOf("b", ["tools"], 1), undefined);
});

test("lessons per deployment are bounded: the oldest goes first", () => {
  const book = new RefusedFeatures(HOUR_MS);
  for (let index = 0; index <= MAX_REFUSALS_PER_DEPLOYMENT; index++) book.learn("a", `key${index}`, "r", index);
  assert.equal(book.refusalOf("a", ["key0"], 100), undefined);
  assert.equal(book.refusalOf("a", ["key1"], 100)?.feature, "key1");
  assert.equal(book.refusalsOf("a", 100).length, MAX_REFUSALS_PER_DEPLOYMENT);
  assert.equal(book.refusalsOf("a", HOUR_MS + 100).length, 0, "ended lessons are not shown");
  // Ended ones are dropped when the deployment learns again: only the new lesson is left.
  book.learn("a", "tools", "r", HOUR_MS + 100);
  assert.deepEqual(
    book.refusalsOf("a", HOUR_MS + 100).map((refusal) => refusal.feature),
    ["tools"],
  );
});

test("knows: whether a success has anything to clear (the failover reports accepted features only then)", () => {
  const book = new RefusedFeatures(HOUR_MS);
  assert.equal(book.knows("a"), false);
  book.learn("a", "tools", "r", 0);
  assert.equal(book.knows("a"), true);
  assert.equal(book.knows("b"), false);
  book.unlearn("a", ["tools"]);
  assert.equal(book.knows("a"), false, "its last lesson cleared");
  book.learn("a", "seed", "r", 0);
  book.forget("a");
  assert.equal(book.knows("a"), false);
});
