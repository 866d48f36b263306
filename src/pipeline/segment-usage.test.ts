import assert from "node:assert/strict";
import { test } from "node:test";
import { countTextTokens } from "../limits/token-estimate.ts";
import type { SegmentEnd } from "../streaming/relay-types.ts";
import { segmentCharge } from "./segment-charge.ts";
import { estimatedContinuationUsage, estimatedSegmentUsage } from "./segment-usage.ts";

const success: SegmentEnd = { outcome: "success", reason: "", usage: undefined, text: " and the rest." };

test("a first segment's success without a report stays unknown; a continuation's is estimated", () => {
  assert.equal(estimatedSegmentUsage(success, 40), undefined);
  assert.deepEqual(estimatedContinuationUsage(success, 40), {
    promptTokens: 40,
    completionTokens: countTextTokens(" and the rest."),
  });
  // A replay generated the repeated start too.
  assert.deepEqual(estimatedContinuationUsage({ ...success, droppedText: "Start" }, 40), {
    promptTokens: 40,
    completionTokens: countTextTokens("Start and the rest."),
  });
});

test("a reported usage is never replaced by an estimate; a broken continuation is estimated as before", () => {
  const reported = { ...success, usage: { promptTokens: 7, completionTokens: 3 } };
  assert.equal(estimatedContinuationUsage(reported, 40), undefined);
  const cut: SegmentEnd = { outcome: "stream_cut", reason: "cut", usage: undefined, text: "half" };
  assert.deepEqual(estimatedContinuationUsage(cut, 40), estimatedSegmentUsage(cut, 40));
});

test("a continuation that finished without a report is charged its estimate, its reservation the floor", () => {
  const estimated = estimatedContinuationUsage(success, 40);
  const tokens = 40 + countTextTokens(" and the rest.");
  assert.equal(segmentCharge(success, 10, estimated, false), tokens, "the prefill's prompt was more than reserved");
  assert.equal(segmentCharge(success, 500, estimated, false), 500);
  assert.equal(segmentCharge(success, 500, undefined, false), undefined, "nothing estimated: the reservation stays");
});

test("what a segment generated and the gateway dropped is counted: a diverged replay, a cut repetition", () => {
  // A replay that repeated "The answer" and then went another way: it delivered nothing, yet its provider billed its
  // prompt and what it generated. Before, it counted nothing (no estimate: its reservation stayed, or nothing).
  const diverged: SegmentEnd = {
    outcome: "stream_diverged",
    reason: "the fresh answer does not start with the text already delivered",
    usage: undefined,
    text: "",
    droppedText: "The answer is 4",
  };
  assert.deepEqual(estimatedContinuationUsage(diverged, 40), {
    promptTokens: 40,
    completionTokens: countTextTokens("The answer is 4"),
  });
  // Cut while it was still repeating: what it repeated so far.
  const cut: SegmentEnd = { outcome: "stream_cut", reason: "cut", usage: undefined, text: "", droppedText: "The" };
  assert.deepEqual(estimatedContinuationUsage(cut, 40), { promptTokens: 40, completionTokens: countTextTokens("The") });
  // Nothing generated and not continued: unknown, the reservation stays.
  assert.equal(estimatedSegmentUsage({ ...cut, droppedText: "" }, 40), undefined);
});

test("a segment another continued is charged its estimate without the floor, the first one or a continuation", () => {
  const cut: SegmentEnd = { outcome: "stream_cut", reason: "cut", usage: undefined, text: " five more words here" };
  const estimated = estimatedContinuationUsage(cut, 40);
  const tokens = 40 + countTextTokens(" five more words here");
  assert.equal(segmentCharge(cut, 4_000, estimated, true), 4_000, "not continued: its reservation is the floor");
  assert.equal(
    segmentCharge({ ...cut, isContinued: true }, 4_000, estimated, true),
    tokens,
    "continued: what it produced",
  );
});

test("an abandoned segment is charged its estimate, its prompt when it generated nothing", () => {
  const left: SegmentEnd = { outcome: "client_aborted", reason: "client disconnected", usage: undefined, text: " two" };
  const estimated = estimatedContinuationUsage(left, 40);
  assert.equal(segmentCharge(left, 4_000, estimated, false), 40 + countTextTokens(" two"), "the client left");
  // The gateway hung up on it as on a continuation the client left: before 2026-12-07 it kept its reservation.
  const firstEstimate = estimatedSegmentUsage(left, 40);
  assert.equal(segmentCharge(left, 4_000, firstEstimate, true), 40 + countTextTokens(" two"), "a first segment too");
  // It opened (its upstream took the request), then diverged before generating anything (only a finish): its prompt
  // was counted as it arrived. Before, it was charged 0, as if never sent.
  const empty: SegmentEnd = {
    outcome: "stream_diverged",
    reason: "diverged",
    usage: undefined,
    text: "",
    hasAddedNothing: true,
  };
  const emptyEstimate = estimatedContinuationUsage(empty, 40);
  assert.deepEqual(emptyEstimate, { promptTokens: 40, completionTokens: 0 });
  assert.equal(segmentCharge(empty, 4_000, emptyEstimate, false), 40, "its prompt, not its reservation, not 0");
  assert.equal(segmentCharge(empty, 4_000, undefined, false), undefined, "nothing estimated: the reservation stays");
  // Its upstream broke it before its first output: the gateway did not hang up, so its reservation stays the floor.
  const cutEarly: SegmentEnd = { ...empty, outcome: "stream_cut", reason: "cut" };
  assert.equal(segmentCharge(cutEarly, 4_000, estimatedContinuationUsage(cutEarly, 40), false), 4_000);
});
