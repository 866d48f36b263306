import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NOW_MS } from "../../test/fixtures/provider-fixtures.ts";
import { parseNumber, parseResetAtMs } from "./reset-time.ts";

describe("parseResetAtMs", () => {
  it("delay: Go durations and bare seconds from now", () => {
    assert.equal(parseResetAtMs("6m0s", "delay", NOW_MS), NOW_MS + 360_000);
    assert.equal(parseResetAtMs("11.382867097854614", "delay", NOW_MS), NOW_MS + 11_383);
    assert.equal(parseResetAtMs("-3s", "delay", NOW_MS), NOW_MS);
    assert.equal(parseResetAtMs("soon", "delay", NOW_MS), undefined);
  });

  it("delay: a bare number past 1e9 is an epoch instant (seconds or milliseconds), not 31 years from now", () => {
    const inAnHourS = String(Math.round(NOW_MS / 1_000) + 3_600);
    assert.equal(parseResetAtMs(inAnHourS, "delay", NOW_MS), Math.round(NOW_MS / 1_000) * 1_000 + 3_600_000);
    assert.equal(parseResetAtMs(String(NOW_MS + 60_000), "delay", NOW_MS), NOW_MS + 60_000);
    // Just below: still seconds from now (bounded by the longest wait taken).
    assert.equal(parseResetAtMs("86400", "delay", NOW_MS), NOW_MS + 86_400_000);
  });

  it("timestamp: epoch milliseconds, epoch seconds, or small seconds from now", () => {
    assert.equal(parseResetAtMs("1767312000000", "timestamp", NOW_MS), 1_767_312_000_000);
    assert.equal(parseResetAtMs("1767312000", "timestamp", NOW_MS), 1_767_312_000_000);
    assert.equal(parseResetAtMs("1767312000.5", "timestamp", NOW_MS), 1_767_312_000_500);
    assert.equal(parseResetAtMs("30", "timestamp", NOW_MS), NOW_MS + 30_000);
    assert.equal(parseResetAtMs("-1", "timestamp", NOW_MS), undefined);
    assert.equal(parseResetAtMs("1m", "timestamp", NOW_MS), undefined);
  });
});

describe("parseNumber", () => {
  it("reads plain decimals only", () => {
    assert.equal(parseNumber("12"), 12);
    assert.equal(parseNumber(" 0.5 "), 0.5);
    assert.equal(parseNumber("-1"), -1);
    assert.equal(parseNumber(".5"), 0.5);
    assert.equal(parseNumber("5."), 5);
    for (const text of ["", " ", "0x10", "1e3", "Infinity", "NaN", "1,000", "12ms", "-", "."]) {
      assert.equal(parseNumber(text), undefined, text);
    }
  });
});
