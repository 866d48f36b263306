import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  calibratingTokens,
  MIN_EVIDENCE_TOKENS,
  MIN_LEARNING_TOKENS,
  PromptCalibration,
  SAFETY_MARGIN,
} from "./prompt-calibration.ts";

describe("PromptCalibration", () => {
  it("leaves estimates alone until a deployment has evidence enough", () => {
    const calibration = new PromptCalibration();
    assert.equal(calibration.promptTokensFor({ key: "groq/llama" }, 10_000), 10_000);
    // Small prompts teach nothing (framing tokens drown the text).
    for (let index = 0; index < 50; index++) calibration.learn("groq/llama", MIN_LEARNING_TOKENS - 1, 10);
    assert.equal(calibration.factorOf("groq/llama"), 1);
    assert.equal(calibration.takeDirty(), false);
    // One large prompt below the evidence threshold is not enough either.
    calibration.learn("groq/llama", MIN_EVIDENCE_TOKENS - 1, 500);
    assert.equal(calibration.factorOf("groq/llama"), 1);
  });

  it("scales a deployment's estimates by what its provider reported, with the safety margin", () => {
    const calibration = new PromptCalibration();
    // The estimator over-counts this provider's tokenizer by 2x.
    for (let index = 0; index < 5; index++) calibration.learn("a/m", 4_000, 2_000);
    assert.ok(Math.abs(calibration.factorOf("a/m") - 0.5 * SAFETY_MARGIN) < 1e-9);
    assert.equal(calibration.promptTokensFor({ key: "a/m" }, 100_000), Math.ceil(100_000 * 0.5 * SAFETY_MARGIN));
    // Other deployments keep their own (none yet).
    assert.equal(calibration.promptTokensFor({ key: "b/m" }, 100_000), 100_000);
    // A provider that counts more than the estimate makes its estimates larger, never smaller.
    for (let index = 0; index < 5; index++) calibration.learn("b/m", 1_000, 1_500);
    assert.ok(calibration.promptTokensFor({ key: "b/m" }, 10_000) > 15_000);
    assert.equal(calibration.takeDirty(), true);
    assert.equal(calibration.takeDirty(), false);
  });

  it("follows a change (recent answers count most) and bounds the factor", () => {
    const calibration = new PromptCalibration();
    for (let index = 0; index < 10; index++) calibration.learn("a/m", 2_000, 2_000);
    for (let index = 0; index < 30; index++) calibration.learn("a/m", 2_000, 1_000);
    assert.ok(Math.abs(calibration.factorOf("a/m") - 0.5 * SAFETY_MARGIN) < 0.02);
    // Absurd reports cannot make every prompt look free or enormous.
    for (let index = 0; index < 50; index++) calibration.learn("tiny/m", 10_000, 1);
    assert.equal(calibration.factorOf("tiny/m"), 0.25);
    for (let index = 0; index < 50; index++) calibration.learn("huge/m", 1_000, 1_000_000);
    assert.equal(calibration.factorOf("huge/m"), 4);
    // Reports that are not positive finite numbers are ignored.
    calibration.learn("odd/m", 5_000, 0);
    calibration.learn("odd/m", 5_000, Number.NaN);
    calibration.learn("odd/m", 5_000, Number.POSITIVE_INFINITY);
    assert.equal(calibration.factorOf("odd/m"), 1);
  });

  it("a context-length refusal raises a factor that said the prompt fitted, and no other", () => {
    const calibration = new PromptCalibration();
    for (let index = 0; index < 2; index++) calibration.learn("a/m", 4_500, 2_250);
    // Calibrated at 0.6: 12,000 estimated looked like 7,200, under an 8,000 window; the provider refused it.
    assert.equal(calibration.promptTokensFor({ key: "a/m" }, 12_000), 7_200);
    const window = { contextTokens: 8_000, maxOutputTokens: undefined };
    calibration.learnTooLong("a/m", 12_000, window, 0);
    assert.ok(calibration.promptTokensFor({ key: "a/m" }, 12_000) > 8_000);
    // A refusal the calibrated estimate already foresaw teaches nothing.
    const before = calibration.factorOf("a/m");
    calibration.learnTooLong("a/m", 12_000, window, 3_000);
    assert.equal(calibration.factorOf("a/m"), before);
  });

  it("forget: a deployment pointed at another upstream model keeps neither its factor nor its shared window", () => {
    const calibration = new PromptCalibration();
    for (let index = 0; index < 2; index++) calibration.learn("a/m", 4_500, 2_250);
    calibration.learnTooLong("a/m", 6_000, { contextTokens: 8_000, maxOutputTokens: 2_000 }, 5_000);
    assert.ok(calibration.sharesWindow("a/m"));
    calibration.takeDirty();
    calibration.forget("b/m");
    assert.equal(calibration.takeDirty(), false, "nothing known of b/m: nothing to write");
    calibration.forget("a/m");
    assert.equal(calibration.factorOf("a/m"), 1);
    assert.equal(calibration.sharesWindow("a/m"), false);
    assert.equal(calibration.takeDirty(), true, "the state file is written without them");
    assert.deepEqual(calibration.export(), {});
  });

  it("exports and imports what it learned, skipping malformed entries", () => {
    const calibration = new PromptCalibration();
    for (let index = 0; index < 5; index++) calibration.learn("a/m", 3_000, 1_500);
    const restored = new PromptCalibration();
    const persisted = JSON.parse(JSON.stringify({ ...calibration.export(), "bad/m": { estimated: -1, reported: 3 } }));
    assert.equal(restored.import(persisted), 1);
    assert.equal(restored.factorOf("a/m"), calibration.factorOf("a/m"));
    assert.equal(restored.factorOf("bad/m"), 1);
    assert.equal(restored.import("not an object"), 0);
    assert.equal(restored.import({ "x/m": "text" }), 0);
  });

  it("tells its listener what a refusal taught, once; another process's lesson is adopted as it came", () => {
    const calibration = new PromptCalibration();
    const lessons: unknown[] = [];
    calibration.onLesson((lesson) => lessons.push(lesson));
    const separate = { contextTokens: 8_000, maxOutputTokens: 4_000 };
    // ~6,000 + 3,000 refused by a model listed 8,000 in: a shared window, and no larger prompt (6,000 >= 5,000).
    calibration.learnTooLong("a/m", 6_000, separate, 3_000);
    assert.deepEqual(lessons, [{ deploymentKey: "a/m", evidence: undefined, isSharedWindow: true }]);
    assert.equal(calibration.takeDirty(), true, "a shared window is written by the embedded store");
    // The same refusal again teaches nothing new: nothing to pass on.
    calibration.learnTooLong("a/m", 6_000, separate, 3_000);
    assert.equal(lessons.length, 1);
    // A prompt estimated at 3,000 refused by one 4,000 window less 100 out: it took 3,900 at least.
    calibration.learnTooLong("b/m", 3_000, { contextTokens: 4_000, maxOutputTokens: undefined }, 100);
    assert.deepEqual(lessons[1], {
      deploymentKey: "b/m",
      evidence: { estimated: 3_000, reported: 3_900 },
      isSharedWindow: false,
    });
    assert.deepEqual(calibration.exportSharedWindows(), ["a/m"]);

    const other = new PromptCalibration();
    for (const lesson of [{ deploymentKey: "a/m", evidence: undefined, isSharedWindow: true }, lessons[1]]) {
      other.adopt(lesson as Parameters<PromptCalibration["adopt"]>[0]);
    }
    assert.equal(other.sharesWindow("a/m"), true);
    assert.equal(other.factorOf("b/m"), calibration.factorOf("b/m"));
    assert.ok(
      other.promptTokensFor({ key: "b/m" }, 3_000) > 4_000 - 100,
      "the same prompt no longer looks as if it fits",
    );
    assert.equal(other.takeDirty(), false, "an adopted lesson is already stored where it came from");
    assert.equal(other.importSharedWindows(["c/m", 7, ""]), 1);
    assert.equal(other.importSharedWindows("not a list"), 0);

    // Another process forgot the deployments (a reload pointed them elsewhere): dropped here, told to no one.
    const forgotten: string[] = [];
    other.onForget((deploymentKey) => forgotten.push(deploymentKey));
    other.adoptForgotten("a/m");
    other.adoptForgotten("b/m");
    assert.equal(other.sharesWindow("a/m"), false);
    assert.equal(other.factorOf("b/m"), 1);
    assert.deepEqual(other.export(), {});
    assert.deepEqual(forgotten, [], "an adopted forget was told again (it would echo round the fleet)");
    assert.equal(other.sharesWindow("c/m"), true);
  });

  it("does not learn from prompts with images (the estimate counts them at a flat rate)", () => {
    assert.equal(calibratingTokens({ promptTokens: 2_000, hasImages: true }), undefined);
    assert.equal(calibratingTokens({ promptTokens: 2_000, hasImages: false }), 2_000);
  });
});
