import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  clearOutgrownWindow,
  LEARNED_CONTEXT_TRUST_MS,
  learnedLimitsOf,
  learnedWindowOf,
  learnStatedWindow,
} from "./learned-context.ts";
import { RefusedFeatures } from "./refused-features.ts";

const HOUR = 3_600_000;
const KEY = "alpha/m";
const LISTED = { contextTokens: 5000, maxOutputTokens: undefined };

describe("a context window a refusal stated", () => {
  test("learned only when smaller than the listed one; read as the deployment's context until the lesson ends", () => {
    const book = new RefusedFeatures(6 * HOUR);
    assert.equal(learnStatedWindow(book, KEY, 5000, { limitTokens: 8000 }, "larger", 0), false);
    assert.deepEqual(learnedLimitsOf(LISTED, book, KEY, 0), LISTED);
    assert.equal(learnStatedWindow(book, KEY, 5000, { limitTokens: 500, promptTokens: 900 }, "too long", 1000), true);
    const learned = learnedLimitsOf(LISTED, book, KEY, 2000);
    assert.equal(learned.contextTokens, 500);
    assert.deepEqual(learned.learnedWindow, { limitTokens: 500, reason: "too long", atMs: 1000 });
    assert.deepEqual(learnedLimitsOf(LISTED, book, KEY, 1000 + 6 * HOUR), LISTED, "ended with its lifetime");
    // Unknown context: whatever the refusal states is smaller.
    assert.equal(learnStatedWindow(book, "beta/m", undefined, { limitTokens: 700 }, "too long", 0), true);
    assert.equal(
      learnedLimitsOf({ contextTokens: undefined, maxOutputTokens: undefined }, book, "beta/m", 1).contextTokens,
      700,
    );
  });

  test("applied for LEARNED_CONTEXT_TRUST_MS from its refusal, then tried again: refused again, learned afresh", () => {
    const book = new RefusedFeatures(6 * HOUR);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 500 }, "too long", 0);
    assert.equal(LEARNED_CONTEXT_TRUST_MS, HOUR);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, HOUR - 1).contextTokens, 500);
    // The fit keeps every longer prompt from the deployment, so no success could end it: past its hour the listed
    // window is read again, and the next longer prompt is the re-trial (before, the window held for the whole 6 h).
    assert.deepEqual(learnedLimitsOf(LISTED, book, KEY, HOUR), LISTED);
    // The lesson is kept (shown, shared) until its own end; the refusal of the re-trial restarts its hour.
    assert.equal(learnedWindowOf(book, KEY, HOUR)?.limitTokens, 500);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 500 }, "too long again", HOUR + 10);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, 2 * HOUR).contextTokens, 500);
    assert.deepEqual(learnedLimitsOf(LISTED, book, KEY, 2 * HOUR + 10), LISTED);
  });

  test("a re-trial's refusal stating a larger window than the lesson's replaces it (the provider raised it)", () => {
    const book = new RefusedFeatures(6 * HOUR);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 500 }, "too long", 0);
    // Within its hour a refusal stating more (a prompt sent before the lesson) keeps the smaller window.
    learnStatedWindow(book, KEY, 5000, { limitTokens: 1000 }, "in flight", 10);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, 20).contextTokens, 500);
    // Past it, the re-trial (a prompt of 3,000) is refused stating 1,000: before, 500 was kept for another hour, and
    // prompts of 501 to 1,000 tokens the deployment takes were kept from it at each re-trial by a longer prompt.
    learnStatedWindow(book, KEY, 5000, { limitTokens: 1000 }, "raised", HOUR + 20);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, HOUR + 30).contextTokens, 1000);
    assert.equal(learnedWindowOf(book, KEY, HOUR + 30)?.reason, "raised");
  });

  test("two refusals keep the smaller window; an output limit as large as the window makes it shared", () => {
    const book = new RefusedFeatures(6 * HOUR);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 800 }, "first", 0);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 500 }, "second", 1);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 900 }, "third", 2);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, 3).contextTokens, 500);
    const separate = learnedLimitsOf({ contextTokens: 5000, maxOutputTokens: 1000 }, book, KEY, 3);
    assert.equal(separate.maxOutputTokens, undefined);
    const smallOutput = learnedLimitsOf({ contextTokens: 5000, maxOutputTokens: 100 }, book, KEY, 3);
    assert.equal(smallOutput.maxOutputTokens, 100);
  });

  test("a success whose reported prompt is larger than the window clears it; one within it, or sent before the refusal, does not", () => {
    const book = new RefusedFeatures(6 * HOUR);
    learnStatedWindow(book, KEY, 5000, { limitTokens: 500 }, "too long", 1000);
    clearOutgrownWindow(book, KEY, 500, 2000);
    assert.equal(learnedLimitsOf(LISTED, book, KEY, 3000).contextTokens, 500, "a prompt of 500 fits 500");
    clearOutgrownWindow(book, KEY, 4000, 999);
    assert.equal(
      learnedLimitsOf(LISTED, book, KEY, 3000).contextTokens,
      500,
      "sent before the refusal: older evidence",
    );
    clearOutgrownWindow(book, KEY, 501, 2000);
    assert.deepEqual(learnedLimitsOf(LISTED, book, KEY, 3000), LISTED, "the provider took more than it stated");
  });
});
