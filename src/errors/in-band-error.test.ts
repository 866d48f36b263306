import assert from "node:assert/strict";
import { test } from "node:test";
import { inBandErrorStatus, inBandUpstreamError } from "./in-band-error.ts";

test("in-band error status: a numeric code or status, else a known name; nothing for the rest", () => {
  assert.equal(inBandErrorStatus({ code: 429, message: "rate limited" }), 429);
  assert.equal(inBandErrorStatus({ code: "503" }), 503);
  assert.equal(inBandErrorStatus({ status: 529 }), 529);
  assert.equal(inBandErrorStatus({ code: "rate_limit_exceeded" }), 429);
  assert.equal(inBandErrorStatus({ type: "overloaded_error", message: "Overloaded" }), 529);
  assert.equal(inBandErrorStatus({ code: 200 }), undefined);
  assert.equal(inBandErrorStatus({ code: "server_error" }), undefined);
  assert.equal(inBandErrorStatus({ type: "toString" }), undefined);
  assert.equal(inBandErrorStatus("Rate limited"), undefined);
  assert.equal(inBandErrorStatus(undefined), undefined);
});

test("in-band upstream error: 429 a rate limit, 503 and 529 an overload (503 upstream_overloaded), the rest an interruption", () => {
  const codeOf = (status: number | undefined) => {
    const error = inBandUpstreamError("m", status);
    return [error.status, error.code];
  };
  assert.deepEqual(codeOf(429), [429, "rate_limit_exceeded"]);
  assert.deepEqual(codeOf(529), [503, "upstream_overloaded"]);
  assert.deepEqual(codeOf(503), [503, "upstream_overloaded"]);
  assert.deepEqual(codeOf(500), [502, "stream_interrupted"]);
  assert.deepEqual(codeOf(undefined), [502, "stream_interrupted"]);
});
