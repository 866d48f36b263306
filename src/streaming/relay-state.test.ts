import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RelayState } from "./relay-state.ts";
import { UsageMerge } from "./usage-merge.ts";

function state(maxRetainedChars: number): RelayState {
  return new RelayState({
    maxMalformedEvents: 3,
    isContinuable: true,
    maxRetainedChars,
    usage: new UsageMerge(undefined, undefined),
    redact: (text) => text.replaceAll("sk-secret", "[redacted]"),
  });
}

describe("RelayState retained text (upstream_limits.max_retained_stream_chars)", () => {
  test("under the cap every delivered character is kept and the answer may be continued", () => {
    const relay = state(100);
    for (let index = 0; index < 10; index++) relay.deliver("0123456789");
    assert.equal(relay.deliveredText().length, 100);
    assert.equal(relay.isContinuable, true);
    assert.equal(relay.isRetainingText, true);
  });

  test("past the cap nothing is kept, however much follows, and the answer is no longer continued", () => {
    const relay = state(100);
    for (let index = 0; index < 100_000; index++) relay.deliver("0123456789");
    assert.equal(relay.deliveredText(), "");
    assert.equal(relay.deliveredChars, 1_000_000, "what was delivered is still counted");
    assert.equal(relay.isContinuable, false);
    assert.equal(relay.isRetainingText, false);
  });

  test("redact is the relay's one redaction for upstream-derived text", () => {
    assert.equal(state(10).redact("key sk-secret"), "key [redacted]");
  });
});
