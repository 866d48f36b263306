// How a provider counts a second/minute/hour window, when it is not a sliding window: a fixed window aligned to
// the clock (all of it reopens at the boundary) or a bucket refilled continuously (limit / window per ms). Pure.
//
// Sliding windows (sliding-window.ts) stay the default: they never admit more than a fixed window or a bucket
// with the same limit would (any aligned window is one of the windows a sliding check covers; a bucket refills
// the limit over a window, so a window's worth of charges never overdraws it). A fixed window or a bucket
// declared for a provider that counts that way lets the gateway use capacity as soon as the provider has it.

export type WindowAlgorithm = "sliding" | "fixed" | "bucket";

/** One fixed window's counts: [startMs, endMs). */
export interface FixedWindowCounter {
  startMs: number;
  endMs: number;
  requests: number;
  tokens: number;
}

/** A bucket's debt: what has been taken and not yet refilled, as of `atMs`. */
export interface BucketLevel {
  used: number;
  atMs: number;
}

/** The fixed window holding `nowMs`: windows start at multiples of `windowMs` after the epoch, plus `offsetMs`. */
export function fixedWindowAt(windowMs: number, offsetMs: number, nowMs: number): { startMs: number; endMs: number } {
  const startMs = Math.floor((nowMs - offsetMs) / windowMs) * windowMs + offsetMs;
  return { startMs, endMs: startMs + windowMs };
}

/** A bucket's debt at `nowMs` after its continuous refill (limit per windowMs), never below 0. */
export function bucketUsed(level: BucketLevel, limit: number, windowMs: number, nowMs: number): number {
  const refilled = (Math.max(0, nowMs - level.atMs) * limit) / windowMs;
  return Math.max(0, level.used - refilled);
}

/** When enough has refilled for `amount` more to fit under `limit`, given `used` now. */
export function bucketRetryAtMs(used: number, amount: number, limit: number, windowMs: number, nowMs: number): number {
  const excess = used + amount - limit;
  if (excess <= 0) return nowMs;
  return nowMs + Math.ceil((excess * windowMs) / limit);
}

/** The key of a fixed window's counter in a scope: windows of the same length and alignment share one. */
export function fixedKey(windowMs: number, offsetMs: number): string {
  return `${windowMs}@${offsetMs}`;
}
