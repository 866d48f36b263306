import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDayReset, UTC_MIDNIGHT } from "../config/day-reset.ts";
import { dayWindow, monthWindow } from "./day-window.ts";

const LOS_ANGELES = parseDayReset("00:00 America/Los_Angeles");
const HOUR_MS = 3_600_000;

describe("parseDayReset", () => {
  it("reads HH:MM with an optional IANA zone (UTC by default)", () => {
    assert.deepEqual(parseDayReset("00:00"), { minuteOfDay: 0, timeZone: "UTC" });
    assert.deepEqual(parseDayReset("7:30 UTC"), { minuteOfDay: 450, timeZone: "UTC" });
    assert.deepEqual(parseDayReset(" 23:59 Asia/Kolkata "), { minuteOfDay: 1439, timeZone: "Asia/Kolkata" });
    assert.deepEqual(LOS_ANGELES, { minuteOfDay: 0, timeZone: "America/Los_Angeles" });
  });

  it("rejects malformed times, impossible times and unknown zones with a readable message", () => {
    assert.throws(() => parseDayReset("midnight"), /expected "HH:MM" or "HH:MM Area\/City", got "midnight"/);
    assert.throws(() => parseDayReset("24:00"), /not a time of day: "24:00"/);
    assert.throws(() => parseDayReset("12:60"), /not a time of day/);
    assert.throws(() => parseDayReset("00:00 Mars/Olympus_Mons"), /unknown time zone "Mars\/Olympus_Mons"/);
  });
});

describe("dayWindow", () => {
  it("UTC midnight: [00:00, next 00:00), the reset instant itself starting the new day", () => {
    const day = { startMs: Date.UTC(2026, 0, 1), endMs: Date.UTC(2026, 0, 2) };
    assert.deepEqual(dayWindow(UTC_MIDNIGHT, Date.UTC(2026, 0, 1)), day);
    assert.deepEqual(dayWindow(UTC_MIDNIGHT, Date.UTC(2026, 0, 1, 13, 5)), day);
    assert.deepEqual(dayWindow(UTC_MIDNIGHT, Date.UTC(2026, 0, 2) - 1), day);
    assert.deepEqual(dayWindow(UTC_MIDNIGHT, Date.UTC(2026, 0, 2)), {
      startMs: Date.UTC(2026, 0, 2),
      endMs: Date.UTC(2026, 0, 3),
    });
  });

  it("a reset later in the day: before it, the window is the one that began yesterday", () => {
    const reset = parseDayReset("07:30");
    assert.deepEqual(dayWindow(reset, Date.UTC(2026, 0, 5, 7, 29, 59, 999)), {
      startMs: Date.UTC(2026, 0, 4, 7, 30),
      endMs: Date.UTC(2026, 0, 5, 7, 30),
    });
    assert.deepEqual(dayWindow(reset, Date.UTC(2026, 0, 5, 7, 30)), {
      startMs: Date.UTC(2026, 0, 5, 7, 30),
      endMs: Date.UTC(2026, 0, 6, 7, 30),
    });
  });

  it("midnight Pacific on an ordinary winter day is 08:00 UTC", () => {
    assert.deepEqual(dayWindow(LOS_ANGELES, Date.UTC(2026, 0, 15, 20)), {
      startMs: Date.UTC(2026, 0, 15, 8),
      endMs: Date.UTC(2026, 0, 16, 8),
    });
    // 07:59 UTC on the 16th is still 23:59 on the 15th in Los Angeles.
    assert.equal(dayWindow(LOS_ANGELES, Date.UTC(2026, 0, 16, 7, 59)).endMs, Date.UTC(2026, 0, 16, 8));
  });

  it("the spring-forward day in Los Angeles lasts 23 hours", () => {
    // 2026-03-08: clocks go from 02:00 PST to 03:00 PDT.
    const window = dayWindow(LOS_ANGELES, Date.UTC(2026, 2, 8, 19));
    assert.deepEqual(window, { startMs: Date.UTC(2026, 2, 8, 8), endMs: Date.UTC(2026, 2, 9, 7) });
    assert.equal(window.endMs - window.startMs, 23 * HOUR_MS);
    assert.deepEqual(dayWindow(LOS_ANGELES, Date.UTC(2026, 2, 9, 7)).startMs, Date.UTC(2026, 2, 9, 7));
  });

  it("the fall-back day in Los Angeles lasts 25 hours", () => {
    // 2026-11-01: clocks go from 02:00 PDT back to 01:00 PST.
    const window = dayWindow(LOS_ANGELES, Date.UTC(2026, 10, 1, 12));
    assert.deepEqual(window, { startMs: Date.UTC(2026, 10, 1, 7), endMs: Date.UTC(2026, 10, 2, 8) });
    assert.equal(window.endMs - window.startMs, 25 * HOUR_MS);
  });

  it("a zone with a half-hour offset", () => {
    // Asia/Kolkata is UTC+05:30 all year: local midnight is 18:30 UTC the day before.
    assert.deepEqual(dayWindow(parseDayReset("00:00 Asia/Kolkata"), Date.UTC(2026, 5, 10, 12)), {
      startMs: Date.UTC(2026, 5, 9, 18, 30),
      endMs: Date.UTC(2026, 5, 10, 18, 30),
    });
  });
});

describe("monthWindow", () => {
  it("UTC: from the 1st to the next 1st, across a year end", () => {
    assert.deepEqual(monthWindow(UTC_MIDNIGHT, Date.UTC(2026, 1, 14, 9)), {
      startMs: Date.UTC(2026, 1, 1),
      endMs: Date.UTC(2026, 2, 1),
    });
    assert.deepEqual(monthWindow(UTC_MIDNIGHT, Date.UTC(2026, 11, 31, 23, 59)), {
      startMs: Date.UTC(2026, 11, 1),
      endMs: Date.UTC(2027, 0, 1),
    });
  });

  it("on the 1st before the reset time, the window is still last month's (January back into December)", () => {
    const reset = parseDayReset("06:00");
    assert.deepEqual(monthWindow(reset, Date.UTC(2026, 0, 1, 5, 59)), {
      startMs: Date.UTC(2025, 11, 1, 6),
      endMs: Date.UTC(2026, 0, 1, 6),
    });
    assert.equal(monthWindow(reset, Date.UTC(2026, 0, 1, 6)).startMs, Date.UTC(2026, 0, 1, 6));
  });

  it("Los Angeles: a month that starts in PST and ends in PDT", () => {
    assert.deepEqual(monthWindow(LOS_ANGELES, Date.UTC(2026, 2, 20)), {
      startMs: Date.UTC(2026, 2, 1, 8),
      endMs: Date.UTC(2026, 3, 1, 7),
    });
    // 2026-03-01 05:00 UTC is still February 28th in Los Angeles.
    assert.equal(monthWindow(LOS_ANGELES, Date.UTC(2026, 2, 1, 5)).startMs, Date.UTC(2026, 1, 1, 8));
  });
});
