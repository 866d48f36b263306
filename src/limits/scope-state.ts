// One budget scope's state, as the budget book keeps it per scope id, and the bookkeeping every path over it shares:
// its windows rolled to now, its rules with the learned ones, its sliding windows, its recent sends and charges.
import type { BudgetRule, BudgetScope, BudgetWindow, LearnedConcurrency, Reservation } from "./budget-types.ts";
import { dayWindow, monthWindow } from "./day-window.ts";
import { SlidingWindow } from "./sliding-window.ts";
import type { BucketLevel, FixedWindowCounter } from "./window-counters.ts";

export const SLIDING_WINDOW_MS: Partial<Record<BudgetWindow, number>> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
};

export interface FixedCounter {
  windowStartMs: number;
  windowEndMs: number;
  requests: number;
  tokens: number;
}

/** A provider's "N remaining until T" report (provider-reports.ts). */
export interface LearnedState {
  remaining: number;
  resetAtMs: number;
  limit: number | undefined;
  /** Requests/tokens we sent after the request the report was taken at: the provider's `remaining` lacks them. */
  spentSince: number;
  /**
   * The newest reservation id the report already counts (a greater id was sent after it), so that an older report
   * arriving late does not replace it. 0 after a restart (ids start again; every new one is after).
   */
  asOfId?: number;
}

export interface ScopeState {
  /** Per sliding window length in ms (1 000, 60 000, 3 600 000): the charges inside it. */
  sliding: Map<number, SlidingWindow>;
  day: FixedCounter;
  month: FixedCounter;
  inFlight: number;
  learned: Map<string, LearnedState>;
  /** Fixed windows' counters, by window length and alignment (fixedKey). */
  fixed: Map<string, FixedWindowCounter>;
  /** Buckets' debts, by bucketKey(rule). */
  buckets: Map<string, BucketLevel>;
  /** Limits learned from 429s (limit-learning.ts), checked like configured ones. */
  learnedRules: BudgetRule[];
  /** A limit on requests in flight learned from a concurrency refusal (see LearnedConcurrency). */
  learnedConcurrency: LearnedConcurrency | undefined;
  /** When the first of the inferred learned limits lapses or climbs a step (Infinity: none will). */
  learnedChangeAtMs: number;
  /** The configured rules plus the learned ones, cached while neither changes. */
  effective: { readonly base: readonly BudgetRule[]; readonly rules: readonly BudgetRule[] } | undefined;
  /** Send times of the last minute (at most MAX_RECENT_SENDS): the spacing a 429 is judged by. */
  sends: number[];
  /**
   * The latest charges to the scope, in order (at most MAX_RECENT_SENDS), as `id, atMs, tokens` triples: what was
   * sent after the request a rate-limit report was taken at (learn). Numbers, not the reservations: holding 256
   * request objects per scope would carry them into the old generation (GC work on every request).
   */
  charges: number[];
}

/** A scope's state before its first charge: its day and month are the ones `nowMs` is in. */
export function newScopeState(
  scope: BudgetScope,
  nowMs: number,
  learnedConcurrency: LearnedConcurrency | undefined,
): ScopeState {
  const day = dayWindow(scope.dayReset, nowMs);
  const month = monthWindow(scope.dayReset, nowMs);
  return {
    sliding: new Map(),
    day: { windowStartMs: day.startMs, windowEndMs: day.endMs, requests: 0, tokens: 0 },
    month: { windowStartMs: month.startMs, windowEndMs: month.endMs, requests: 0, tokens: 0 },
    inFlight: 0,
    learned: new Map(),
    fixed: new Map(),
    buckets: new Map(),
    learnedRules: [],
    learnedConcurrency,
    learnedChangeAtMs: Number.POSITIVE_INFINITY,
    effective: undefined,
    sends: [],
    charges: [],
  };
}

/**
 * Rolls the wall-clock windows and lets charges leave the sliding windows. Returns whether a day or month rolled
 * (what a persistent store must write).
 */
export function rollWindows(scope: BudgetScope, state: ScopeState, nowMs: number): boolean {
  let isRolled = false;
  if (nowMs >= state.day.windowEndMs) {
    const day = dayWindow(scope.dayReset, nowMs);
    state.day = { windowStartMs: day.startMs, windowEndMs: day.endMs, requests: 0, tokens: 0 };
    isRolled = true;
  }
  if (nowMs >= state.month.windowEndMs) {
    const month = monthWindow(scope.dayReset, nowMs);
    state.month = { windowStartMs: month.startMs, windowEndMs: month.endMs, requests: 0, tokens: 0 };
    isRolled = true;
  }
  for (const window of state.sliding.values()) window.expire(nowMs);
  return isRolled;
}

/** The scope's configured rules plus the limits learned for it (a configured unit and window wins). */
export function rulesOf(scope: BudgetScope, state: ScopeState): readonly BudgetRule[] {
  if (state.learnedRules.length === 0) return scope.rules;
  if (state.effective?.base === scope.rules) return state.effective.rules;
  const configured = new Set(scope.rules.map((rule) => `${rule.unit}:${rule.window}`));
  const rules = [
    ...scope.rules,
    ...state.learnedRules.filter((rule) => !configured.has(`${rule.unit}:${rule.window}`)),
  ];
  state.effective = { base: scope.rules, rules };
  return rules;
}

const slidingWindowsCache = new WeakMap<readonly BudgetRule[], readonly number[]>();

/** The distinct sliding window lengths (ms) some rules use (fixed windows and buckets are counted apart). */
export function slidingWindowsOf(rules: readonly BudgetRule[]): readonly number[] {
  let windows = slidingWindowsCache.get(rules);
  if (windows === undefined) {
    const lengths = new Set<number>();
    for (const rule of rules) {
      const slidingMs = SLIDING_WINDOW_MS[rule.window];
      if (slidingMs !== undefined && (rule.algorithm ?? "sliding") === "sliding") lengths.add(slidingMs);
    }
    windows = [...lengths];
    slidingWindowsCache.set(rules, windows);
  }
  return windows;
}

export function slidingWindow(state: ScopeState, windowMs: number): SlidingWindow {
  let window = state.sliding.get(windowMs);
  if (window === undefined) {
    window = new SlidingWindow(windowMs);
    state.sliding.set(windowMs, window);
  }
  return window;
}

export function bucketKey(rule: BudgetRule): string {
  return `${rule.unit}:${rule.window}:${rule.limit}`;
}

/**
 * Keeps recent send times, bounded: the spacing a 429 is judged by (readers filter by time). Trimmed to the newest
 * half when full, so a send costs O(1) amortised; at more than 128 requests a minute the minute count a 429 sees is
 * therefore low, which only makes a learned per-minute limit stricter.
 */
const MAX_RECENT_SENDS = 256;
export function recordSend(state: ScopeState, nowMs: number): void {
  state.sends.push(nowMs);
  if (state.sends.length > MAX_RECENT_SENDS) state.sends.splice(0, state.sends.length - MAX_RECENT_SENDS / 2);
}

/** `id, atMs, tokens` per charge in ScopeState.charges. */
export const CHARGE_FIELDS = 3;

/** Keeps the latest reservations of a scope, bounded as `recordSend` is (O(1) amortised per charge). */
export function recordCharge(state: ScopeState, reservation: Reservation): void {
  state.charges.push(reservation.id, reservation.atMs, reservation.tokens);
  if (state.charges.length > MAX_RECENT_SENDS * CHARGE_FIELDS) {
    state.charges.splice(0, state.charges.length - (MAX_RECENT_SENDS / 2) * CHARGE_FIELDS);
  }
}
