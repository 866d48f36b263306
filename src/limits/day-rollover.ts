// When a refused day quota gives room again, other than at the end of the configured day: a rolling day refills
// continuously; a day (or month) refused with its own reset a moment ago has just rolled over, the window ending
// between the provider's count and our clock (the two clocks a second or two apart, or a reset rounded down to the
// second). Parked "until the day ends", such a deployment sat out the whole new day it had just been given.
import type { ProviderSettings } from "../config/types.ts";
import { RATE_LIMIT_DIALECTS, type RateLimitDialectName } from "./header-dialects.ts";
import { type HeaderMap, headerValue } from "./header-map.ts";
import { parseNumber, parsePastResetAtMs } from "./reset-time.ts";

/**
 * Long-window "remaining" headers: Cerebras per day, Mistral per month. At 0 on a 429 the key is done until the
 * reset, whatever the body says (classify-429.ts). Each one's reset is the same name with `reset`.
 */
export const LONG_WINDOW_REMAINING_HEADERS: readonly string[] = [
  "x-ratelimit-remaining-requests-day",
  "x-ratelimit-remaining-tokens-day",
  "x-ratelimit-remaining-tokens-month",
  "x-ratelimit-remaining-req-month",
];

/**
 * How far behind our clock a long window's reset may read and still be the window that just ended: clock skew
 * between a provider and us is seconds, rarely a minute. A reset further back is not taken as a roll-over (it may
 * be the window's start, or a stale value): the daily park stands then, as before.
 */
export const ROLLED_OVER_WITHIN_MS = 5 * 60_000;

/**
 * A reset this close to our clock "reads now": a delay of `0`, or an instant equal to now (rounded down to the
 * second). A provider that sends that with every exhausted-day 429 says nothing of when its day ends: a window that
 * really rolled over has a fixed reset instant, which recedes into the past as the backoff grows.
 */
export const RESET_READS_NOW_WITHIN_MS = 1_000;

/**
 * How many daily 429s in a row (no success between, each sent after the one before came back) whose reset reads now
 * are taken as a roll-over; the next one parks the deployment until the provider's day ends (`day_reset`), as a
 * daily 429 without a reset does (upstream/lessons.ts, availability.ts). A real roll-over is served within the first
 * backoffs (1 s, 2 s); without the bound, such a provider was asked again every 60 s (the capped backoff) all day.
 */
export const NOW_RESETS_TAKEN_AS_ROLLOVER = 2;

/**
 * A deployment's daily 429s in a row whose reset reads now, when the latest came back, and the end of the provider's
 * day they were counted in (availability.ts).
 */
export interface NowResetStreak {
  count: number;
  latestAtMs: number;
  dayEndMs: number;
}

/**
 * Counts a daily 429 whose reset reads now (`dayEndMs`: the end of the provider's day it came in), or ends the streak
 * with any other 429 (`dayEndMs` undefined); true when it is one too many (and the count starts over: the next day's
 * first such 429 is a streak of one, as a roll-over may be). A 429 to a request sent before the latest one came back
 * was in flight at the same moment (several requests at a roll-over): it says nothing new, and is not counted. A
 * streak does not outlive its day: the first such 429 of the next day (a real roll-over at midnight, after a streak
 * cut short by a park or by no traffic) starts a new one.
 */
export function isNowResetStreakOver(
  streak: NowResetStreak,
  dayEndMs: number | undefined,
  sentAtMs: number,
  nowMs: number,
): boolean {
  if (dayEndMs === undefined) {
    streak.count = 0;
    return false;
  }
  if (streak.dayEndMs !== dayEndMs) {
    streak.count = 0;
    streak.dayEndMs = dayEndMs;
  }
  if (streak.count > 0 && sentAtMs < streak.latestAtMs) return false;
  streak.count += 1;
  streak.latestAtMs = nowMs;
  if (streak.count <= NOW_RESETS_TAKEN_AS_ROLLOVER) return false;
  streak.count = 0;
  return true;
}

/**
 * A success ends the streak, unless its request was sent before the latest such 429 came back (a slow answer, or a
 * stream's end, of a request the provider took before its day ran out): that says how it was then, not now, as an
 * in-flight 429 does (isNowResetStreakOver).
 */
export function endNowResetStreak(streak: NowResetStreak, sentAtMs: number): void {
  if (sentAtMs >= streak.latestAtMs) streak.count = 0;
}

/** An exhausted long window that rolled over a moment ago. */
export interface RolledOver {
  /** The reset header that says so (the first one, when several exhausted windows rolled over). */
  readonly resetHeader: string;
  /** Every exhausted window's reset reads now (RESET_READS_NOW_WITHIN_MS), not a fixed instant a moment ago. */
  readonly isResetNow: boolean;
}

/**
 * The exhausted long window that rolled over a moment ago (reset at most ROLLED_OVER_WITHIN_MS before `nowMs`), or
 * undefined. Undefined too when another exhausted long window is still running or says nothing of its reset: then
 * the day (or month) is still out.
 */
export function rolledOverLongWindow(headers: HeaderMap, nowMs: number): RolledOver | undefined {
  let rolledOver: string | undefined;
  let isResetNow = true;
  for (const remainingName of LONG_WINDOW_REMAINING_HEADERS) {
    const remainingText = headerValue(headers, remainingName);
    const remaining = remainingText === undefined ? undefined : parseNumber(remainingText);
    if (remaining === undefined || remaining > 0) continue;
    const resetName = remainingName.replace("remaining", "reset");
    const resetText = headerValue(headers, resetName);
    // Read as the dialects read these headers: a delay, or an epoch instant where a bare number passes 1e9. A
    // negative delay is that far back, held to the same bound as an instant ("-3600" is no roll-over).
    const resetAtMs = resetText === undefined ? undefined : parsePastResetAtMs(resetText, "delay", nowMs);
    if (resetAtMs === undefined || resetAtMs > nowMs || resetAtMs < nowMs - ROLLED_OVER_WITHIN_MS) return undefined;
    rolledOver ??= resetName;
    if (resetAtMs < nowMs - RESET_READS_NOW_WITHIN_MS) isResetNow = false;
  }
  return rolledOver === undefined ? undefined : { resetHeader: rolledOver, isResetNow };
}

/**
 * Whether the provider's day quota rolls (refills continuously) instead of resetting at `day_reset`: its dialect
 * says so (Groq's), or it counts in buckets (`limits.window: bucket`, as Cerebras documents: "capacity replenishes
 * continuously").
 */
export function isDayRolling(settings: ProviderSettings): boolean {
  if (settings.limits?.window === "bucket") return true;
  const name = settings.rateLimitDialect;
  return name in RATE_LIMIT_DIALECTS && RATE_LIMIT_DIALECTS[name as RateLimitDialectName].isDayRolling === true;
}
