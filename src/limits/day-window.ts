// Wall-clock windows: a "day" starts at a configurable local time in an IANA time zone (Google resets its free
// quotas at midnight Pacific time, most others at 00:00 UTC), a "month" at that time on the 1st.

import type { DayReset } from "../config/day-reset.ts";

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** Offset of the zone from UTC at an instant, in ms (local = utc + offset). */
function zoneOffsetMs(timeZone: string, instantMs: number): number {
  if (timeZone === "UTC") return 0;
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(instantMs)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const asUtc = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

const DAY_MS = 86_400_000;

/** The local wall-clock time (as if UTC) an instant shows in the zone. */
function wallClockAt(timeZone: string, instantMs: number): number {
  return instantMs + zoneOffsetMs(timeZone, instantMs);
}

/**
 * The instant at which a local wall-clock time happens. An instant t shows `localAsUtcMs` when it is a fixed point
 * of t = local - offset(t); the offsets in force a day before and a day after give every candidate (no zone changes
 * its offset twice within two days). A time that happens twice (the repeated hour when clocks go back) is the later
 * one: a window that ends there then lasts until the hour has passed for good. A time that never happens (the
 * skipped hour when clocks go forward) is the first instant after the gap. One correction step, as this once did,
 * landed an hour early in both cases and gave windows that ended before "now".
 */
function localToInstant(timeZone: string, localAsUtcMs: number): number {
  if (timeZone === "UTC") return localAsUtcMs;
  const offsetBefore = zoneOffsetMs(timeZone, localAsUtcMs - DAY_MS);
  const offsetAfter = zoneOffsetMs(timeZone, localAsUtcMs + DAY_MS);
  // Almost always: no change nearby, one answer (and no more formatToParts calls, ~10 µs each).
  if (offsetBefore === offsetAfter) return localAsUtcMs - offsetBefore;
  const offsets = [offsetBefore, offsetAfter];
  let latest: number | undefined;
  for (const offset of offsets) {
    const candidate = localAsUtcMs - offset;
    if (wallClockAt(timeZone, candidate) === localAsUtcMs && (latest === undefined || candidate > latest)) {
      latest = candidate;
    }
  }
  if (latest !== undefined) return latest;
  // In a gap: wall clocks jump from below `localAsUtcMs` to above it at one instant, between these two bounds.
  let low = localAsUtcMs - Math.max(...offsets);
  let high = localAsUtcMs - Math.min(...offsets);
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (wallClockAt(timeZone, middle) >= localAsUtcMs) high = middle;
    else low = middle;
  }
  return high;
}

/**
 * The window around `nowMs` among those that start at the instants of `startLocal(k)` (local times, as if UTC, in
 * increasing order). The first guess comes from now's wall clock; around a DST change that can be one window off
 * (now in the repeated hour, before the later occurrence of the reset), so it steps until start <= now < end.
 */
function windowAround(
  timeZone: string,
  nowMs: number,
  startLocal: (step: number) => number,
): { startMs: number; endMs: number } {
  let step = 0;
  let startMs = localToInstant(timeZone, startLocal(step));
  let endMs = localToInstant(timeZone, startLocal(step + 1));
  // A few steps at most (a zone skipping a whole day, as Pacific/Apia did in 2011, gives one empty window).
  for (let tries = 0; tries < 4; tries++) {
    if (nowMs < startMs) {
      step--;
      endMs = startMs;
      startMs = localToInstant(timeZone, startLocal(step));
    } else if (nowMs >= endMs) {
      step++;
      startMs = endMs;
      endMs = localToInstant(timeZone, startLocal(step + 1));
    } else break;
  }
  return { startMs, endMs };
}

/** Start and end of the day window containing `nowMs`: startMs <= nowMs < endMs. */
export function dayWindow(reset: DayReset, nowMs: number): { startMs: number; endMs: number } {
  const local = new Date(wallClockAt(reset.timeZone, nowMs));
  const todayResetLocal =
    Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) + reset.minuteOfDay * 60_000;
  const firstStartLocal = local.getTime() < todayResetLocal ? todayResetLocal - DAY_MS : todayResetLocal;
  return windowAround(reset.timeZone, nowMs, (step) => firstStartLocal + step * DAY_MS);
}

/**
 * Start and end of the month window containing `nowMs` (starting on the 1st at the reset time):
 * startMs <= nowMs < endMs.
 */
export function monthWindow(reset: DayReset, nowMs: number): { startMs: number; endMs: number } {
  const local = new Date(wallClockAt(reset.timeZone, nowMs));
  const year = local.getUTCFullYear();
  let month = local.getUTCMonth();
  if (local.getTime() < Date.UTC(year, month, 1) + reset.minuteOfDay * 60_000) month -= 1;
  // Date.UTC carries a month of -1 or 12 into the neighbouring year.
  return windowAround(reset.timeZone, nowMs, (step) => Date.UTC(year, month + step, 1) + reset.minuteOfDay * 60_000);
}
