import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyRateLimit } from "./classify-429.ts";
import { ROLLED_OVER_WITHIN_MS, rolledOverLongWindow } from "./day-rollover.ts";

const NOW_MS = Date.UTC(2026, 0, 2, 0, 0, 1);
const epochSeconds = (atMs: number): string => String(Math.round(atMs / 1000));

describe("rolledOverLongWindow", () => {
  it("an exhausted day window whose reset reads a moment ago (epoch seconds behind our clock) has rolled over", () => {
    const headers = {
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": epochSeconds(NOW_MS - 2_000),
    };
    assert.equal(rolledOverLongWindow(headers, NOW_MS)?.resetHeader, "x-ratelimit-reset-requests-day");
    // A delay of 0 is a reset now: the same.
    const delay = { "x-ratelimit-remaining-tokens-day": "0", "x-ratelimit-reset-tokens-day": "0" };
    assert.equal(rolledOverLongWindow(delay, NOW_MS)?.resetHeader, "x-ratelimit-reset-tokens-day");
    // The bound itself still counts; a month's window too.
    const month = {
      "x-ratelimit-remaining-tokens-month": "0",
      "x-ratelimit-reset-tokens-month": epochSeconds(NOW_MS - ROLLED_OVER_WITHIN_MS),
    };
    assert.equal(rolledOverLongWindow(month, NOW_MS)?.resetHeader, "x-ratelimit-reset-tokens-month");
  });

  it("says whether the reset reads now (a delay of 0, an instant within a second of our clock)", () => {
    const at = (reset: string) => ({
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": reset,
    });
    assert.equal(rolledOverLongWindow(at("0"), NOW_MS)?.isResetNow, true);
    assert.equal(rolledOverLongWindow(at(epochSeconds(NOW_MS)), NOW_MS)?.isResetNow, true);
    assert.equal(rolledOverLongWindow(at(epochSeconds(NOW_MS - 1_000)), NOW_MS)?.isResetNow, true);
    // A fixed instant a couple of seconds back (clock skew at a real roll-over) is a roll-over, not "now".
    assert.equal(rolledOverLongWindow(at(epochSeconds(NOW_MS - 2_000)), NOW_MS)?.isResetNow, false);
    // Every exhausted window must read now.
    const both = { ...at("0"), "x-ratelimit-remaining-tokens-day": "0", "x-ratelimit-reset-tokens-day": "-30" };
    assert.equal(rolledOverLongWindow(both, NOW_MS)?.isResetNow, false);
  });

  it("a reset still ahead, long past, or not given is no roll-over", () => {
    const at = (reset: string) => ({
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": reset,
    });
    assert.equal(rolledOverLongWindow(at(epochSeconds(NOW_MS + 2_000)), NOW_MS), undefined);
    assert.equal(rolledOverLongWindow(at("33011.38"), NOW_MS), undefined);
    // Further back than clock skew goes: not read as the window that just ended.
    assert.equal(rolledOverLongWindow(at(epochSeconds(NOW_MS - ROLLED_OVER_WITHIN_MS - 1_000)), NOW_MS), undefined);
    assert.equal(rolledOverLongWindow(at("soon"), NOW_MS), undefined);
    // A negative delay is as far back as it says: an hour ago (a stale header, the window's start) is no roll-over,
    // as the same instant written as an epoch is not; a couple of seconds ago still is.
    assert.equal(rolledOverLongWindow(at("-3600"), NOW_MS), undefined);
    assert.equal(rolledOverLongWindow(at("-1h"), NOW_MS), undefined);
    assert.equal(rolledOverLongWindow(at("-2"), NOW_MS)?.resetHeader, "x-ratelimit-reset-requests-day");
    assert.equal(rolledOverLongWindow({ "x-ratelimit-remaining-requests-day": "0" }, NOW_MS), undefined);
  });

  it("another exhausted long window still running (or without a reset) keeps the day out", () => {
    const rolled = {
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": epochSeconds(NOW_MS - 2_000),
    };
    const tokensRunning = { "x-ratelimit-remaining-tokens-day": "0", "x-ratelimit-reset-tokens-day": "3600" };
    assert.equal(rolledOverLongWindow({ ...rolled, ...tokensRunning }, NOW_MS), undefined);
    assert.equal(rolledOverLongWindow({ ...rolled, "x-ratelimit-remaining-tokens-day": "0" }, NOW_MS), undefined);
    // A window with room left says nothing either way.
    const roomLeft = { "x-ratelimit-remaining-tokens-day": "500", "x-ratelimit-reset-tokens-day": "3600" };
    assert.equal(
      rolledOverLongWindow({ ...rolled, ...roomLeft }, NOW_MS)?.resetHeader,
      "x-ratelimit-reset-requests-day",
    );
  });
});

describe("classifyRateLimit: a day's window that just rolled over", () => {
  const headers = {
    "x-ratelimit-limit-requests-day": "14400",
    "x-ratelimit-remaining-requests-day": "0",
    "x-ratelimit-reset-requests-day": epochSeconds(NOW_MS - 1_000),
  };

  it("stays daily (a day's limit is what it teaches) but says the window rolled over", () => {
    const result = classifyRateLimit({ status: 429, headers, bodyText: "{}", nowMs: NOW_MS });
    assert.equal(result.kind, "daily");
    assert.equal(result.isWindowRolledOver, true);
    assert.match(result.reason, /x-ratelimit-reset-requests-day is already past: the window just rolled over/);
    // Also when the body is what says "per day".
    const worded = classifyRateLimit({
      status: 429,
      headers,
      bodyText: "Requests per day limit exceeded",
      nowMs: NOW_MS,
    });
    assert.equal(worded.isWindowRolledOver, true);
  });

  it("not without the time of the answer, nor for a refusal that is not a day's", () => {
    assert.equal(classifyRateLimit({ status: 429, headers, bodyText: "{}" }).isWindowRolledOver, undefined);
    const capacity = classifyRateLimit({ status: 503, headers, bodyText: "{}", nowMs: NOW_MS });
    assert.equal(capacity.kind, "capacity");
    assert.equal(capacity.isWindowRolledOver, undefined);
  });
});
