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
 * The reset header of the exhausted long window that rolled over a moment ago (reset at most ROLLED_OVER_WITHIN_MS
 * before `nowMs`), or undefined. Undefined too when another exhausted long window is still running or says nothing
 * of its reset: then the day (or month) is still out.
 */
export function rolledOverLongWindow(headers: HeaderMap, nowMs: number): string | undefined {
  let rolledOver: string | undefined;
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
  }
  return rolledOver;
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
