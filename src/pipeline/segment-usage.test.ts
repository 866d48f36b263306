import assert from "node:assert/strict";
import { test } from "node:test";
import { countTextTokens } from "../limits/token-estimate.ts";
import type { SegmentEnd } from "../streaming/relay-types.ts";
import { segmentCharge } from "./segment-charge.ts";
import { estimatedContinuationUsage, estimatedSegmentUsage } from "./segment-usage.ts";

const success: SegmentEnd = { outcome: "success", reason: "", usage: undefined, text: " and the rest." };

test("a first segment's success without a report stays unknown; a continuation's is estimated", () => {
  assert.equal(estimatedSegmentUsage(success, 40), undefined);
  assert.deepEqual(estimatedContinuationUsage(success, 40, ""), {
    promptTokens: 40,
    completionTokens: countTextTokens(" and the rest."),
  });
  // A replay generated the repeated start too.
  assert.deepEqual(estimatedContinuationUsage(success, 40, "Start"), {
    promptTokens: 40,
    completionTokens: countTextTokens("Start and the rest."),
  });
});

test("a reported usage is never replaced by an estimate; a broken continuation is estimated as before", () => {
  const reported = { ...success, usage: { promptTokens: 7, completionTokens: 3 } };
  assert.equal(estimatedContinuationUsage(reported, 40, ""), undefined);
  const cut: SegmentEnd = { outcome: "stream_cut", reason: "cut", usage: undefined, text: "half" };
  assert.deepEqual(estimatedContinuationUsage(cut, 40, ""), estimatedSegmentUsage(cut, 40));
});

test("a continuation that finished without a report is charged its estimate, its reservation the floor", () => {
  const estimated = estimatedContinuationUsage(success, 40, "");
  const tokens = 40 + countTextTokens(" and the rest.");
  assert.equal(segmentCharge(success, 10, estimated), tokens, "the prefill's prompt was more than reserved");
  assert.equal(segmentCharge(success, 500, estimated), 500);
  assert.equal(segmentCharge(success, 500, undefined), undefined, "nothing estimated: the reservation stays");
});
