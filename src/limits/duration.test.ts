import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDurationMs } from "./duration.ts";

describe("parseDurationMs", () => {
  it("parses the Go durations providers send", () => {
    const cases: Array<[string, number]> = [
      ["1m30s", 90_000],
      ["2.5s", 2_500],
      ["120ms", 120],
      ["6m0s", 360_000], // OpenAI x-ratelimit-reset-tokens
      ["9m38.016s", 578_016], // Groq "Please try again in 9m38.016s"
      ["1h2m", 3_720_000],
      ["0.5s", 500],
      ["17ms", 17],
      ["2m59.56s", 179_560], // Groq x-ratelimit-reset-requests
      ["7.66s", 7_660],
      ["1.984999999s", 1_985],
      ["50.597142857s", 50_597],
      ["1h0m0s", 3_600_000],
      ["0s", 0],
      [".5s", 500],
      ["1500us", 2], // rounded to whole milliseconds
      ["1500\u00b5s", 2],
      ["2000000ns", 2],
    ];
    for (const [text, expectedMs] of cases) assert.equal(parseDurationMs(text), expectedMs, text);
  });

  it("reads a bare number as seconds", () => {
    assert.equal(parseDurationMs("30"), 30_000);
    assert.equal(parseDurationMs("0"), 0);
    assert.equal(parseDurationMs("0.25"), 250);
    assert.equal(parseDurationMs("33011.382867097855"), 33_011_383); // Cerebras x-ratelimit-reset-requests-day
    assert.equal(parseDurationMs("  12  "), 12_000);
  });

  it("keeps a sign so callers can clamp", () => {
    assert.equal(parseDurationMs("-1.5s"), -1_500);
    assert.equal(parseDurationMs("+2s"), 2_000);
    assert.equal(parseDurationMs("-0s"), 0);
    assert.ok(Object.is(parseDurationMs("-0s"), 0), "no negative zero");
  });

  it("rejects garbage without throwing", () => {
    const garbage = [
      "",
      "   ",
      "s",
      "-",
      "+",
      ".",
      ".s",
      "1m30", // trailing unitless number
      "30 s",
      "1d",
      "1.2.3",
      "1..2s",
      "abc",
      "NaN",
      "Infinity",
      "1e3",
      "1e3s",
      "0x10",
      "10S",
      "constructor",
      "1constructor",
      "1__proto__",
      "Wed, 21 Oct 2015 07:28:00 GMT",
      `${"9".repeat(400)}s`,
    ];
    for (const text of garbage) assert.equal(parseDurationMs(text), undefined, JSON.stringify(text));
  });
});
