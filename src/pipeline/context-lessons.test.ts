import assert from "node:assert/strict";
import { test } from "node:test";
import { learnedLimitsOf } from "../limits/learned-context.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import type { Deployment } from "../providers/catalog.ts";
import { learnContextRefusal } from "./context-lessons.ts";

const deployment = { key: "alpha/m", contextTokens: 5000, maxOutputTokens: undefined } as unknown as Deployment;
const prompt = { estimate: 1000, maxOutputTokens: 0 };

test("a refusal stating a smaller window teaches the window, not a calibration; one stating none, a calibration", () => {
  const books = {
    refusedFeatures: new RefusedFeatures(3_600_000),
    promptCalibration: new PromptCalibration(),
    clock: { now: () => 10 },
  };
  learnContextRefusal(
    books,
    deployment,
    { statedContext: { limitTokens: 500, promptTokens: 1000 }, reason: "too long" },
    prompt,
  );
  assert.equal(learnedLimitsOf(deployment, books.refusedFeatures, "alpha/m", 11).contextTokens, 500);
  assert.equal(books.promptCalibration.hasEvidence("alpha/m"), false, "the same refusal counted twice");
  learnContextRefusal(books, { ...deployment, key: "beta/m" } as Deployment, { reason: "too long" }, prompt);
  assert.equal(books.promptCalibration.hasEvidence("beta/m"), true);
});

test("a stated window the request could not have exceeded, or one below any model's, is not learned: a calibration is", () => {
  const books = {
    refusedFeatures: new RefusedFeatures(3_600_000),
    promptCalibration: new PromptCalibration(),
    clock: { now: () => 10 },
  };
  const listed = { ...deployment, contextTokens: 128_000 } as Deployment;
  // A 300-token prompt refused as over 4,096 (an aggregator's message about another model's window): not this
  // deployment's window, which would leave it out of every prompt over 4,096 for hours.
  learnContextRefusal(
    books,
    listed,
    { statedContext: { limitTokens: 4096 }, reason: "another model's" },
    { estimate: 300, maxOutputTokens: 0 },
  );
  assert.equal(learnedLimitsOf(listed, books.refusedFeatures, "alpha/m", 11).contextTokens, 128_000);
  // "maximum context length is 1 tokens": no model's window; it would leave the deployment out of every request.
  learnContextRefusal(books, listed, { statedContext: { limitTokens: 1 }, reason: "buggy" }, prompt);
  assert.equal(learnedLimitsOf(listed, books.refusedFeatures, "alpha/m", 11).contextTokens, 128_000);
  assert.equal(books.promptCalibration.hasEvidence("alpha/m"), true, "taught the calibration as before");
});
