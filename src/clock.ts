// The one source of time for pure modules (router, scoring, limits): tests inject a manual clock so that
// time-dependent behaviour is exact and instant.
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  #nowMs: number;
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#nowMs = startMs;
  }
  now(): number {
    return this.#nowMs;
  }
  advance(ms: number): void {
    this.#nowMs += ms;
  }
  set(ms: number): void {
    this.#nowMs = ms;
  }
}

/** The largest distance from the epoch a Date holds (±100,000,000 days). */
const MAX_DATE_MS = 8.64e15;

/**
 * An instant as ISO 8601 text, for any number: `toISOString` throws a RangeError past what a Date holds, and an
 * instant built from an upstream's word (a reset time) or from stored state must never turn an answer into a 500.
 */
export function isoTime(ms: number): string {
  const bounded = Number.isNaN(ms) ? 0 : Math.min(MAX_DATE_MS, Math.max(-MAX_DATE_MS, ms));
  return new Date(bounded).toISOString();
}
