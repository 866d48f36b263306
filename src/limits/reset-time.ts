// When a rate-limit window resets, from the two ways providers write it in headers.
import { parseDurationMs } from "./duration.ts";

/**
 * - `delay`: time until the reset, as a Go duration ("1m30s", OpenAI/Groq) or bare seconds ("11.38", Cerebras,
 *   Together).
 * - `timestamp`: the reset instant as Unix epoch milliseconds (OpenRouter) or seconds, told apart by magnitude;
 *   a value too small to be either is read as seconds from now, which is what such servers mean by it.
 */
export type ResetFormat = "delay" | "timestamp";

/**
 * The longest wait an upstream's word is taken for (retry-after, reset headers, body hints; cooldowns and parks
 * built from them): 32 days, past a monthly quota's reset. `retry-after: 99999999999999999999` once made a cooldown
 * end past what a Date can hold, and every request planned over it then failed with a 500 (RangeError), also after
 * a restart, since the cooldown was persisted.
 */
export const MAX_UPSTREAM_WAIT_MS = 32 * 24 * 3_600_000;

/** Epoch milliseconds pass 1e12 in 2001; epoch seconds pass 1e9 in 2001; no sane delay reaches 1e9 s (31 years). */
const EPOCH_MS_THRESHOLD = 1e12;
const EPOCH_SECONDS_THRESHOLD = 1e9;

/** The reset instant in epoch milliseconds, or `undefined` when the text is not a reset time. */
export function parseResetAtMs(text: string, format: ResetFormat, nowMs: number): number | undefined {
  const resetAtMs = unboundedResetAtMs(text, format, nowMs);
  return resetAtMs === undefined ? undefined : Math.min(resetAtMs, nowMs + MAX_UPSTREAM_WAIT_MS);
}

/**
 * As parseResetAtMs, but a negative delay stays that far in the past ("-3600": an hour ago) instead of reading as
 * now. A wait treats both alike (nothing to wait for); telling a reset a moment ago from one long past
 * (day-rollover.ts) must not: "-3600" read as now made an exhausted day "just rolled over".
 */
export function parsePastResetAtMs(text: string, format: ResetFormat, nowMs: number): number | undefined {
  const resetAtMs = unboundedResetAtMs(text, format, nowMs, true);
  return resetAtMs === undefined ? undefined : Math.min(resetAtMs, nowMs + MAX_UPSTREAM_WAIT_MS);
}

function unboundedResetAtMs(
  text: string,
  format: ResetFormat,
  nowMs: number,
  isKeepingPast = false,
): number | undefined {
  if (format === "delay") {
    // A bare number past 1e9 is no delay (31 years) but an epoch instant: providers of the `generic` dialect differ
    // on what their reset headers hold (SambaNova's x-ratelimit-reset-requests-day is read both ways in the wild),
    // and read as seconds from now it would park the key for the longest wait allowed.
    const bare = parseNumber(text);
    if (bare !== undefined && bare >= EPOCH_SECONDS_THRESHOLD) return unboundedResetAtMs(text, "timestamp", nowMs);
    const delayMs = parseDurationMs(text);
    if (delayMs === undefined) return undefined;
    return nowMs + (isKeepingPast ? delayMs : Math.max(0, delayMs));
  }
  const value = parseNumber(text);
  if (value === undefined || value < 0) return undefined;
  if (value >= EPOCH_MS_THRESHOLD) return Math.round(value);
  if (value >= EPOCH_SECONDS_THRESHOLD) return Math.round(value * 1_000);
  return nowMs + Math.round(value * 1_000);
}

/**
 * A plain decimal number ("12", "0.5", "-1"); `undefined` for anything else. Stricter than `Number()`, which
 * reads "" as 0 and accepts "0x10" and "1e3".
 */
export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;
