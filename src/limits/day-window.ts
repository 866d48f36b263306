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

/** The instant at which a local wall-clock time happens (DST-aware to the hour). */
function localToInstant(timeZone: string, localAsUtcMs: number): number {
  const guess = localAsUtcMs - zoneOffsetMs(timeZone, localAsUtcMs);
  return localAsUtcMs - zoneOffsetMs(timeZone, guess);
}

/** Start and end of the day window containing `nowMs`. */
export function dayWindow(reset: DayReset, nowMs: number): { startMs: number; endMs: number } {
  const local = new Date(nowMs + zoneOffsetMs(reset.timeZone, nowMs));
  const todayResetLocal =
    Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) + reset.minuteOfDay * 60_000;
  let startLocal = todayResetLocal;
  if (local.getTime() < todayResetLocal) startLocal -= 86_400_000;
  const startMs = localToInstant(reset.timeZone, startLocal);
  const endMs = localToInstant(reset.timeZone, startLocal + 86_400_000);
  return { startMs, endMs };
}

/** Start and end of the month window containing `nowMs` (starting on the 1st at the reset time). */
export function monthWindow(reset: DayReset, nowMs: number): { startMs: number; endMs: number } {
  const local = new Date(nowMs + zoneOffsetMs(reset.timeZone, nowMs));
  let year = local.getUTCFullYear();
  let month = local.getUTCMonth();
  let startLocal = Date.UTC(year, month, 1) + reset.minuteOfDay * 60_000;
  if (local.getTime() < startLocal) {
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
    startLocal = Date.UTC(year, month, 1) + reset.minuteOfDay * 60_000;
  }
  const endLocal = Date.UTC(year, month + 1, 1) + reset.minuteOfDay * 60_000;
  return { startMs: localToInstant(reset.timeZone, startLocal), endMs: localToInstant(reset.timeZone, endLocal) };
}
