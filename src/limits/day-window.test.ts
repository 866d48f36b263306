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

describe("a reset time inside a DST change", () => {
  const at = (iso: string): number => Date.parse(iso);

  it("a skipped reset time (02:00 Los Angeles on the spring-forward day) happens at the end of the gap", () => {
    // 2026-03-08 01:30 PST: the day that began at 02:00 yesterday ends when clocks jump to 03:00 PDT (10:00 UTC).
    // One correction step put its end at 09:00 UTC, half an hour before "now".
    assert.deepEqual(dayWindow(parseDayReset("02:00 America/Los_Angeles"), at("2026-03-08T09:30Z")), {
      startMs: at("2026-03-07T10:00Z"),
      endMs: at("2026-03-08T10:00Z"),
    });
  });

  it("a repeated reset time (01:30 Los Angeles on the fall-back day) is its later occurrence", () => {
    const reset = parseDayReset("01:30 America/Los_Angeles");
    // 2026-11-01 01:10 PST, the second 01:10 of the night: the day ends at 01:30 PST (09:30 UTC), not PDT.
    const yesterday = { startMs: at("2026-10-31T08:30Z"), endMs: at("2026-11-01T09:30Z") };
    assert.deepEqual(dayWindow(reset, at("2026-11-01T09:10Z")), yesterday);
    // 01:40 PDT, the first pass through the repeated hour: the reset's later occurrence is still ahead.
    assert.deepEqual(dayWindow(reset, at("2026-11-01T08:40Z")), yesterday);
    assert.equal(dayWindow(reset, at("2026-11-01T09:30Z")).startMs, at("2026-11-01T09:30Z"));
    // November 1st is also the month's reset.
    assert.deepEqual(monthWindow(reset, at("2026-11-01T09:10Z")), {
      startMs: at("2026-10-01T08:30Z"),
      endMs: at("2026-11-01T09:30Z"),
    });
  });

  it("a reset at the start of the skipped hour (01:00 London, 2026-03-29)", () => {
    assert.deepEqual(dayWindow(parseDayReset("01:00 Europe/London"), at("2026-03-29T00:30Z")), {
      startMs: at("2026-03-28T01:00Z"),
      endMs: at("2026-03-29T01:00Z"),
    });
  });

  it("every instant of a DST night lies in its window, and the windows tile", () => {
    const nights = [
      ["America/Los_Angeles", "2026-03-08T06:00Z", "2026-11-01T06:00Z"],
      ["Europe/London", "2026-03-28T22:00Z", "2026-10-24T22:00Z"],
      ["Australia/Lord_Howe", "2026-04-04T12:00Z", "2026-10-03T12:00Z"],
    ] as const;
    for (const [zone, ...starts] of nights) {
      for (const resetTime of ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]) {
        const reset = parseDayReset(`${resetTime} ${zone}`);
        for (const start of starts) {
          for (let nowMs = at(start); nowMs < at(start) + 8 * HOUR_MS; nowMs += 5 * 60_000) {
            for (const window of [dayWindow(reset, nowMs), monthWindow(reset, nowMs)]) {
              const label = `${resetTime} ${zone} at ${new Date(nowMs).toISOString()}`;
              assert.ok(window.startMs <= nowMs && nowMs < window.endMs, label);
            }
            const day = dayWindow(reset, nowMs);
            assert.equal(dayWindow(reset, day.endMs).startMs, day.endMs);
            assert.equal(dayWindow(reset, day.startMs - 1).endMs, day.startMs);
          }
        }
      }
    }
  });
});
