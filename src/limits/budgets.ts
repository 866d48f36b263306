// Proactive budgets: requests and tokens per second/minute/hour (sliding windows), per day/month (wall-clock
// windows), and concurrency. Checked before a request is sent, so a candidate that would exceed a budget is
// skipped without spending an upstream request. Pure: time comes from the caller.
//
// Algorithm: second/minute/hour windows are sliding windows (sliding-window.ts): exact sliding logs while they
// hold few entries, runs of charges counted conservatively beyond, so a check or a charge costs O(1) amortised
// and a scope's memory is bounded whatever the limit and the traffic. Unlike a fixed window a sliding one never
// lets 2× the limit through at a window boundary; unlike GCRA it handles token costs that are only known
// (reconciled) after the response. Day and month windows are counters that reset at the provider's wall-clock
// reset time (`day_reset`), because that is how providers count them.
//
// Learned limits: the provider's own counter wins. A response saying "N remaining until T" is stored and the
// requests we send after it are subtracted; at N − sent ≤ 0 the scope is over budget until T.

import { type DayReset, UTC_MIDNIGHT } from "../config/day-reset.ts";
import type { Limits } from "../config/types.ts";
import { dayWindow, monthWindow } from "./day-window.ts";
import type { RateLimitUnit, RateLimitWindow } from "./header-dialects.ts";
import type { LearnedWindow } from "./rate-limit-headers.ts";
import { type PersistedRun, type SlidingRun, SlidingWindow } from "./sliding-window.ts";

export type BudgetUnit = RateLimitUnit;
export type BudgetWindow = RateLimitWindow;

export interface BudgetRule {
  readonly unit: BudgetUnit;
  readonly window: BudgetWindow;
  readonly limit: number;
}

/** A budget holder: a provider (account-wide pool) or one provider+model. */
export interface BudgetScope {
  /** `provider:groq` or `deployment:groq/llama-3.3-70b`. */
  readonly id: string;
  readonly rules: readonly BudgetRule[];
  readonly concurrency: number | undefined;
  readonly dayReset: DayReset;
}

export interface BudgetCost {
  /** Estimated tokens charged up front (prompt + reserved output); reconciled with usage later. */
  readonly tokens: number;
}

export type BudgetVerdict =
  | { readonly isAllowed: true }
  | { readonly isAllowed: false; readonly reason: string; readonly retryAtMs: number; readonly scopeId: string };

export interface Reservation {
  readonly id: number;
  readonly scopes: readonly BudgetScope[];
  readonly atMs: number;
  tokens: number;
  isReleased: boolean;
}

const SLIDING_WINDOW_MS: Partial<Record<BudgetWindow, number>> = { second: 1_000, minute: 60_000, hour: 3_600_000 };

interface FixedCounter {
  windowStartMs: number;
  windowEndMs: number;
  requests: number;
  tokens: number;
}

interface LearnedState {
  remaining: number;
  resetAtMs: number;
  limit: number | undefined;
  /** Requests/tokens we sent since the provider told us `remaining`. */
  spentSince: number;
}

export interface ScopeState {
  /** Per sliding window length in ms (1 000, 60 000, 3 600 000): the charges inside it. */
  sliding: Map<number, SlidingWindow>;
  day: FixedCounter;
  month: FixedCounter;
  inFlight: number;
  learned: Map<string, LearnedState>;
}

export interface WindowUsage {
  readonly unit: BudgetUnit;
  readonly window: BudgetWindow;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetsAtMs: number | undefined;
  readonly source: "config" | "provider";
}

/** Turns a `limits:` config block into rules. */
export function rulesFromLimits(limits: Limits | undefined): { rules: BudgetRule[]; concurrency: number | undefined } {
  if (limits === undefined) return { rules: [], concurrency: undefined };
  const rules: BudgetRule[] = [];
  const add = (unit: BudgetUnit, window: BudgetWindow, limit: number | undefined) => {
    if (limit !== undefined) rules.push({ unit, window, limit });
  };
  add("requests", "second", limits.rps);
  add("requests", "minute", limits.rpm);
  add("requests", "hour", limits.rph);
  add("requests", "day", limits.rpd);
  add("tokens", "minute", limits.tpm);
  add("tokens", "hour", limits.tph);
  add("tokens", "day", limits.tpd);
  add("tokens", "month", limits.tokensPerMonth);
  return { rules, concurrency: limits.concurrency };
}

export type Denied = BudgetVerdict & { isAllowed: false };

/**
 * What the request path needs from budget accounting. `BudgetBook` (in-process) answers synchronously; the
 * Redis-shared ledger answers `reserve` asynchronously (one atomic round trip). Callers await only a Promise.
 */
export interface BudgetLedger {
  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict;
  reserve(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
  ): Reservation | Denied | Promise<Reservation | Denied>;
  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void;
  release(reservation: Reservation): void;
  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void;
  usage(scope: BudgetScope, nowMs: number): WindowUsage[];
  inFlight(scopeId: string): number;
  reset(): void | Promise<void>;
}

export class BudgetBook implements BudgetLedger {
  readonly #states = new Map<string, ScopeState>();
  /** The sliding-window runs each reservation was charged to, so a reconcile moves exactly its own tokens. */
  readonly #runsOf = new WeakMap<Reservation, { readonly window: SlidingWindow; readonly run: SlidingRun }[]>();
  #nextReservationId = 1;
  /** Scope ids changed since the last `takeDirty()`: what a persistent store must write. */
  readonly #dirty = new Set<string>();

  /** Would this cost fit every scope's budgets now? No side effects. */
  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict {
    for (const scope of scopes) {
      const verdict = this.#checkScope(scope, cost, nowMs);
      if (!verdict.isAllowed) return verdict;
    }
    return ALLOWED;
  }

  /** Checks and, if allowed, charges every scope at once (all or nothing). */
  reserve(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
  ): Reservation | (BudgetVerdict & { isAllowed: false }) {
    const verdict = this.check(scopes, cost, nowMs);
    if (!verdict.isAllowed) return verdict;
    const reservation: Reservation = {
      id: this.#nextReservationId++,
      scopes,
      atMs: nowMs,
      tokens: cost.tokens,
      isReleased: false,
    };
    let runs: { readonly window: SlidingWindow; readonly run: SlidingRun }[] | undefined;
    for (const scope of scopes) {
      const state = this.#state(scope, nowMs);
      for (const windowMs of slidingWindowsOf(scope)) {
        const window = slidingWindow(state, windowMs);
        const run = window.charge(nowMs, cost.tokens, nowMs);
        if (run === undefined) continue;
        runs ??= [];
        runs.push({ window, run });
      }
      state.day.requests += 1;
      state.day.tokens += cost.tokens;
      state.month.requests += 1;
      state.month.tokens += cost.tokens;
      for (const [key, learned] of state.learned) learned.spentSince += key.startsWith("tokens") ? cost.tokens : 1;
      state.inFlight += 1;
      this.#dirty.add(scope.id);
    }
    if (runs !== undefined) this.#runsOf.set(reservation, runs);
    return reservation;
  }

  /** Replaces the estimated token cost with the real one from `usage`. */
  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void {
    const delta = actualTokens - reservation.tokens;
    if (delta === 0) return;
    reservation.tokens = actualTokens;
    for (const { window, run } of this.#runsOf.get(reservation) ?? []) window.adjust(run, delta);
    for (const scope of reservation.scopes) {
      const state = this.#state(scope, nowMs);
      if (state.day.windowStartMs <= reservation.atMs) state.day.tokens = Math.max(0, state.day.tokens + delta);
      if (state.month.windowStartMs <= reservation.atMs) state.month.tokens = Math.max(0, state.month.tokens + delta);
      this.#dirty.add(scope.id);
    }
  }

  /** Frees the concurrency slot. Idempotent, so every exit path may call it. */
  release(reservation: Reservation): void {
    if (reservation.isReleased) return;
    reservation.isReleased = true;
    for (const scope of reservation.scopes) {
      const state = this.#states.get(scope.id);
      if (state !== undefined && state.inFlight > 0) state.inFlight -= 1;
    }
  }

  /** Stores what the provider's rate-limit headers said about a scope. */
  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void {
    if (windows.length === 0) return;
    const state = this.#state(scope, nowMs);
    for (const window of windows) {
      if (window.remaining === undefined) continue;
      // Mistral (and Together for tokens) send no reset time: assume the window's longest possible wait, so a
      // "0 left" still keeps us away, but never longer than the window itself.
      const resetAtMs = window.resetAtMs ?? assumedResetAtMs(scope, window.window, nowMs);
      if (resetAtMs <= nowMs) continue;
      state.learned.set(`${window.unit}:${window.window}`, {
        remaining: window.remaining,
        resetAtMs,
        limit: window.limit,
        spentSince: 0,
      });
    }
    this.#dirty.add(scope.id);
  }

  inFlight(scopeId: string): number {
    return this.#states.get(scopeId)?.inFlight ?? 0;
  }

  /** Per-window usage of a scope, for /health and /stats. */
  usage(scope: BudgetScope, nowMs: number): WindowUsage[] {
    const state = this.#state(scope, nowMs);
    const result: WindowUsage[] = [];
    for (const rule of scope.rules) {
      const { used, resetsAtMs } = this.#used(state, rule);
      result.push({
        unit: rule.unit,
        window: rule.window,
        limit: rule.limit,
        used,
        remaining: Math.max(0, rule.limit - used),
        resetsAtMs,
        source: "config",
      });
    }
    for (const [key, learned] of state.learned) {
      if (learned.resetAtMs <= nowMs) continue;
      const [unit, window] = key.split(":") as [BudgetUnit, BudgetWindow];
      const remaining = Math.max(0, learned.remaining - learned.spentSince);
      const limit = learned.limit ?? learned.remaining;
      result.push({
        unit,
        window,
        limit,
        used: Math.max(0, limit - remaining),
        remaining,
        resetsAtMs: learned.resetAtMs,
        source: "provider",
      });
    }
    return result;
  }

  /** Scope ids changed since the last call. */
  takeDirty(): string[] {
    const ids = [...this.#dirty];
    this.#dirty.clear();
    return ids;
  }

  /** The durable part of a scope's state (for the embedded store); undefined if never used. */
  exportScope(scopeId: string): PersistedScope | undefined {
    const state = this.#states.get(scopeId);
    if (state === undefined) return undefined;
    return {
      version: 2,
      sliding: [...state.sliding].map(([windowMs, window]) => [windowMs, window.export()] as const),
      day: { ...state.day },
      month: { ...state.month },
      learned: [...state.learned].map(([key, value]) => [key, { ...value }] as const),
    };
  }

  /** Restores an exported scope; also reads the version-1 format (one sliding log entry per request). */
  importScope(scopeId: string, persisted: PersistedScope | LegacyPersistedScope): void {
    this.#states.set(scopeId, {
      sliding: "log" in persisted ? slidingFromLog(persisted.log) : slidingFromRuns(persisted.sliding),
      day: { ...persisted.day },
      month: { ...persisted.month },
      inFlight: 0,
      learned: new Map(persisted.learned.map(([key, value]) => [key, { ...value }])),
    });
  }

  /** Forgets every counter (admin reset, tests). */
  reset(): void {
    for (const id of this.#states.keys()) this.#dirty.add(id);
    this.#states.clear();
  }

  #checkScope(scope: BudgetScope, cost: BudgetCost, nowMs: number): BudgetVerdict {
    const state = this.#state(scope, nowMs);
    if (scope.concurrency !== undefined && state.inFlight >= scope.concurrency) {
      return {
        isAllowed: false,
        scopeId: scope.id,
        reason: `at its concurrency limit (${scope.concurrency} in flight)`,
        retryAtMs: nowMs + 100,
      };
    }
    for (const rule of scope.rules) {
      const amount = rule.unit === "requests" ? 1 : cost.tokens;
      const { used, resetsAtMs } = this.#used(state, rule);
      if (used + amount <= rule.limit) continue;
      // A single request larger than a whole token budget can never fit; report it as such.
      const retryAtMs =
        amount > rule.limit ? Number.POSITIVE_INFINITY : this.#retryAt(state, rule, amount, nowMs, resetsAtMs);
      return {
        isAllowed: false,
        scopeId: scope.id,
        reason: `over its ${ruleName(rule)} budget (${used}/${rule.limit}${rule.unit === "tokens" ? ` tokens, needs ${amount}` : ""})`,
        retryAtMs,
      };
    }
    for (const [key, learned] of state.learned) {
      if (learned.resetAtMs <= nowMs) {
        state.learned.delete(key);
        continue;
      }
      const isTokens = key.startsWith("tokens");
      const left = learned.remaining - learned.spentSince;
      if (left < (isTokens ? Math.max(1, cost.tokens) : 1)) {
        return {
          isAllowed: false,
          scopeId: scope.id,
          reason: `the provider reports ${Math.max(0, left)} ${isTokens ? "tokens" : "requests"} left this ${key.split(":")[1]}`,
          retryAtMs: learned.resetAtMs,
        };
      }
    }
    return ALLOWED;
  }

  #used(state: ScopeState, rule: BudgetRule): { used: number; resetsAtMs: number | undefined } {
    const slidingMs = SLIDING_WINDOW_MS[rule.window];
    if (slidingMs !== undefined) {
      // #state expired the window up to now.
      const window = state.sliding.get(slidingMs);
      if (window === undefined) return { used: 0, resetsAtMs: undefined };
      return {
        used: rule.unit === "requests" ? window.requests : window.tokens,
        resetsAtMs: window.oldestLeavesAtMs,
      };
    }
    const counter = rule.window === "day" ? state.day : state.month;
    return { used: rule.unit === "requests" ? counter.requests : counter.tokens, resetsAtMs: counter.windowEndMs };
  }

  #retryAt(state: ScopeState, rule: BudgetRule, amount: number, nowMs: number, resetsAtMs: number | undefined): number {
    const slidingMs = SLIDING_WINDOW_MS[rule.window];
    if (slidingMs === undefined) return resetsAtMs ?? nowMs + 60_000;
    // The earliest time at which enough old charges have left the window for `amount` to fit.
    const window = state.sliding.get(slidingMs);
    if (window === undefined) return nowMs + slidingMs;
    const isRequests = rule.unit === "requests";
    return window.retryAtMs(isRequests, isRequests ? window.requests : window.tokens, amount, rule.limit, nowMs);
  }

  #state(scope: BudgetScope, nowMs: number): ScopeState {
    let state = this.#states.get(scope.id);
    if (state === undefined) {
      const day = dayWindow(scope.dayReset, nowMs);
      const month = monthWindow(scope.dayReset, nowMs);
      state = {
        sliding: new Map(),
        day: { windowStartMs: day.startMs, windowEndMs: day.endMs, requests: 0, tokens: 0 },
        month: { windowStartMs: month.startMs, windowEndMs: month.endMs, requests: 0, tokens: 0 },
        inFlight: 0,
        learned: new Map(),
      };
      this.#states.set(scope.id, state);
      return state;
    }
    // Roll wall-clock windows and let charges leave the sliding windows.
    if (nowMs >= state.day.windowEndMs) {
      const day = dayWindow(scope.dayReset, nowMs);
      state.day = { windowStartMs: day.startMs, windowEndMs: day.endMs, requests: 0, tokens: 0 };
      this.#dirty.add(scope.id);
    }
    if (nowMs >= state.month.windowEndMs) {
      const month = monthWindow(scope.dayReset, nowMs);
      state.month = { windowStartMs: month.startMs, windowEndMs: month.endMs, requests: 0, tokens: 0 };
      this.#dirty.add(scope.id);
    }
    for (const window of state.sliding.values()) window.expire(nowMs);
    return state;
  }

  /** Sliding-window runs and entries held for a scope (bounded whatever its limits): for tests and status. */
  footprint(scopeId: string): { runs: number; work: number } {
    let runs = 0;
    let work = 0;
    for (const window of this.#states.get(scopeId)?.sliding.values() ?? []) {
      runs += window.runCount;
      work += window.work;
    }
    return { runs, work };
  }
}

/** A scope's durable state, version 2: sliding windows as runs. */
export interface PersistedScope {
  readonly version: 2;
  /** [windowMs, runs] per sliding window. */
  readonly sliding: readonly (readonly [number, readonly PersistedRun[]])[];
  readonly day: FixedCounter;
  readonly month: FixedCounter;
  readonly learned: readonly (readonly [string, LearnedState])[];
}

/** Version 1 (before sliding windows held runs): one [atMs, tokens] log entry per request, for every window. */
export interface LegacyPersistedScope {
  readonly log: readonly (readonly [number, number])[];
  readonly day: FixedCounter;
  readonly month: FixedCounter;
  readonly learned: readonly (readonly [string, LearnedState])[];
}

const ALLOWED: BudgetVerdict = Object.freeze({ isAllowed: true });

/** The config key of a rule (`rpm`, `tokens_per_month`), so a denial names what the user wrote. */
export function ruleName(rule: BudgetRule): string {
  if (rule.window === "month") return `${rule.unit}_per_month`;
  return `${rule.unit === "requests" ? "r" : "t"}p${rule.window[0]}`;
}

/** The latest a window without a reset header can end: a full sliding window from now, or the wall-clock end. */
export function assumedResetAtMs(scope: BudgetScope, window: BudgetWindow, nowMs: number): number {
  const slidingMs = SLIDING_WINDOW_MS[window];
  if (slidingMs !== undefined) return nowMs + slidingMs;
  return (window === "day" ? dayWindow(scope.dayReset, nowMs) : monthWindow(scope.dayReset, nowMs)).endMs;
}

const slidingWindowsCache = new WeakMap<readonly BudgetRule[], readonly number[]>();

/** The distinct sliding window lengths (ms) a scope's rules use. */
function slidingWindowsOf(scope: BudgetScope): readonly number[] {
  let windows = slidingWindowsCache.get(scope.rules);
  if (windows === undefined) {
    const lengths = new Set<number>();
    for (const rule of scope.rules) {
      const slidingMs = SLIDING_WINDOW_MS[rule.window];
      if (slidingMs !== undefined) lengths.add(slidingMs);
    }
    windows = [...lengths];
    slidingWindowsCache.set(scope.rules, windows);
  }
  return windows;
}

function slidingWindow(state: ScopeState, windowMs: number): SlidingWindow {
  let window = state.sliding.get(windowMs);
  if (window === undefined) {
    window = new SlidingWindow(windowMs);
    state.sliding.set(windowMs, window);
  }
  return window;
}

function slidingFromRuns(persisted: PersistedScope["sliding"]): Map<number, SlidingWindow> {
  return new Map(persisted.map(([windowMs, runs]) => [windowMs, SlidingWindow.fromRuns(windowMs, runs)]));
}

/** A version-1 log counted in every sliding window; entries older than a window leave it at once. */
function slidingFromLog(log: LegacyPersistedScope["log"]): Map<number, SlidingWindow> {
  const sliding = new Map<number, SlidingWindow>();
  if (log.length === 0) return sliding;
  const latestMs = Math.max(...log.map(([atMs]) => atMs));
  const ordered = [...log].sort((left, right) => left[0] - right[0]);
  for (const windowMs of Object.values(SLIDING_WINDOW_MS)) {
    const window = new SlidingWindow(windowMs);
    for (const [atMs, tokens] of ordered) window.charge(atMs, tokens, latestMs);
    sliding.set(windowMs, window);
  }
  return sliding;
}

export function isReservation(value: Reservation | BudgetVerdict): value is Reservation {
  return "id" in value;
}

export { UTC_MIDNIGHT };
