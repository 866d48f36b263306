// Limits learned from the rate-limit headers on every upstream response (successes included).

import {
  RATE_LIMIT_DIALECTS,
  type RateLimitDialect,
  type RateLimitDialectName,
  type RateLimitUnit,
  type RateLimitWindow,
} from "./header-dialects.ts";
import { type HeaderMap, headerValue } from "./header-map.ts";
import { parseNumber, parseResetAtMs } from "./reset-time.ts";

export interface LearnedWindow {
  readonly unit: RateLimitUnit;
  readonly window: RateLimitWindow;
  readonly limit?: number;
  readonly remaining?: number;
  /** Epoch milliseconds at which the window resets (or, for token buckets, refills). */
  readonly resetAtMs?: number;
  /**
   * The request whose answer carried this report (its budget reservation, compared by identity): the provider
   * counted up to that request, so the ones sent after it still count against `remaining` (budgets.ts `learn`).
   * Absent: as of now.
   */
  readonly asOf?: ReportAnchor;
}

/** A budget reservation (budget-types.ts `Reservation`) as a report's anchor: which request, and when it was sent. */
export interface ReportAnchor {
  readonly id: number;
  readonly atMs: number;
}

type MutableWindow = { -readonly [K in keyof LearnedWindow]: LearnedWindow[K] };

/**
 * One entry per window the response told us something about, in the dialect's order; windows with no readable
 * header are left out. Negative counts are ignored: Azure OpenAI sends -1 for "not enforced".
 */
export function parseRateLimitHeaders(
  headers: HeaderMap,
  dialect: RateLimitDialectName | RateLimitDialect,
  nowMs: number,
): LearnedWindow[] {
  const { groups } = typeof dialect === "string" ? RATE_LIMIT_DIALECTS[dialect] : dialect;
  const windows: LearnedWindow[] = [];
  for (const group of groups) {
    const limit = readCount(headers, group.limitHeader);
    const remaining = readCount(headers, group.remainingHeader);
    let resetAtMs: number | undefined;
    if (group.reset !== undefined) {
      const resetText = headerValue(headers, group.reset.header);
      if (resetText !== undefined) resetAtMs = parseResetAtMs(resetText, group.reset.format, nowMs);
    }
    if (limit === undefined && remaining === undefined && resetAtMs === undefined) continue;
    const learned: MutableWindow = { unit: group.unit, window: group.window };
    if (limit !== undefined) learned.limit = limit;
    if (remaining !== undefined) learned.remaining = remaining;
    if (resetAtMs !== undefined) learned.resetAtMs = resetAtMs;
    windows.push(learned);
  }
  return windows;
}

function readCount(headers: HeaderMap, name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const text = headerValue(headers, name);
  if (text === undefined) return undefined;
  const value = parseNumber(text);
  return value === undefined || value < 0 ? undefined : value;
}
