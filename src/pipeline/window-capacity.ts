// What a budget window can take over a span of time, counted generously (its room at the start, then its whole limit
// at each reset within the span; a bucket refills continuously): the check of an embeddings batch's chunks before the
// first is sent, against its candidates' windows (embeddings-window-fit.ts) and its named client's
// (client-chunk-charges.ts). A batch is refused only when it cannot fit, never one that would have.
import type { BudgetWindow, WindowUsage } from "../limits/budget-types.ts";
import type { WindowTerms } from "../state/state-types.ts";

/** A window's length; a month's is its shortest (a reset counted early only counts more room: generous). */
const WINDOW_MS: Readonly<Record<BudgetWindow, number>> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  month: 28 * 86_400_000,
};

/** When a window may take more than it can now: its reset, and an inferred limit's lapse. */
export function startsOf(usage: WindowUsage): number[] {
  return [usage.resetsAtMs, usage.lapsesAtMs].filter((startMs) => startMs !== undefined);
}

/**
 * What one window can take from `startMs` for `spanMs`, generously: its room at the start (its whole limit once it has
 * reset by then), then its whole limit at each reset within the span. A sliding window holding nothing frees what the
 * first chunk takes a window later; a bucket refills continuously.
 */
export function windowCapacity(usage: WindowUsage, startMs: number, nowMs: number, spanMs: number): number {
  const windowMs = WINDOW_MS[usage.window];
  const { limit, remaining } = usage;
  // A provider's report without its limit bounds nothing past its reset (the budget check stops reading it then):
  // before 2026-12-07 what it said was left was counted as the whole limit at each reset, and a report of 1 request
  // left (0 just as well) refused with a 413 a batch of 4 chunks that its reset a second later let through.
  // A limit inferred from this process's own sends that lapses within the span is dropped by the budget check then.
  if (usage.lapsesAtMs !== undefined && usage.lapsesAtMs <= startMs + spanMs) return Number.POSITIVE_INFINITY;
  if (usage.isLimitUnknown === true) {
    return usage.resetsAtMs === undefined || usage.resetsAtMs <= startMs + spanMs
      ? Number.POSITIVE_INFINITY
      : remaining;
  }
  if (usage.algorithm === "bucket") {
    return Math.min(limit, remaining + (limit * (startMs - nowMs)) / windowMs) + (limit * spanMs) / windowMs;
  }
  const resetAtMs = usage.resetsAtMs ?? startMs + windowMs;
  const isReset = startMs >= resetAtMs;
  const firstReset = isReset ? Math.floor((startMs - resetAtMs) / windowMs) + 1 : 0;
  const lastReset = Math.floor((startMs + spanMs - resetAtMs) / windowMs);
  return (isReset ? limit : remaining) + limit * Math.max(0, lastReset - firstReset + 1);
}

/**
 * What `windowCapacity` reads of a window, for a check run where the batches under way are shared (Redis:
 * state/redis-chunked-batches-lua.ts counts the same room from now).
 */
export function windowTermsOf(usage: WindowUsage): WindowTerms {
  const kind = usage.isLimitUnknown === true ? "unknown" : usage.algorithm === "bucket" ? "bucket" : "window";
  const { limit, remaining, resetsAtMs, lapsesAtMs } = usage;
  return { kind, windowMs: WINDOW_MS[usage.window], limit, remaining, resetsAtMs, lapsesAtMs };
}
