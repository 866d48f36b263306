// The durable part of a scope's state, as the embedded store writes it, and the state read back from it (the
// version-1 format included).
import type { BudgetRule, LearnedConcurrency } from "./budget-types.ts";
import { nextInferredChangeAtMs } from "./inferred-limits.ts";
import { type FixedCounter, type LearnedState, type ScopeState, SLIDING_WINDOW_MS } from "./scope-state.ts";
import { type PersistedRun, SlidingWindow } from "./sliding-window.ts";
import type { BucketLevel, FixedWindowCounter } from "./window-counters.ts";

/** A scope's durable state, version 2: sliding windows as runs. */
export interface PersistedScope {
  readonly version: 2;
  /** [windowMs, runs] per sliding window. */
  readonly sliding: readonly (readonly [number, readonly PersistedRun[]])[];
  readonly day: FixedCounter;
  readonly month: FixedCounter;
  readonly learned: readonly (readonly [string, LearnedState])[];
  /** Fixed windows' counters and buckets' debts (absent in rows written before window algorithms). */
  readonly fixed?: readonly (readonly [string, FixedWindowCounter])[];
  readonly buckets?: readonly (readonly [string, BucketLevel])[];
  /** Limits learned from 429s, with their evidence. */
  readonly learnedRules?: readonly BudgetRule[];
  /** A limit on requests in flight a concurrency 429 taught (absent in rows written before 2026-12-05). */
  readonly learnedConcurrency?: LearnedConcurrency;
}

/** Version 1 (before sliding windows held runs): one [atMs, tokens] log entry per request, for every window. */
export interface LegacyPersistedScope {
  readonly log: readonly (readonly [number, number])[];
  readonly day: FixedCounter;
  readonly month: FixedCounter;
  readonly learned: readonly (readonly [string, LearnedState])[];
}

/** The durable part of a scope's state (copies: the state goes on changing). */
export function exportedScope(state: ScopeState): PersistedScope {
  return {
    version: 2,
    sliding: [...state.sliding].map(([windowMs, window]) => [windowMs, window.export()] as const),
    day: { ...state.day },
    month: { ...state.month },
    learned: [...state.learned].map(([key, value]) => [key, { ...value }] as const),
    fixed: [...state.fixed].map(([key, value]) => [key, { ...value }] as const),
    buckets: [...state.buckets].map(([key, value]) => [key, { ...value }] as const),
    learnedRules: state.learnedRules.map((rule) => ({ ...rule })),
    ...(state.learnedConcurrency === undefined ? {} : { learnedConcurrency: { ...state.learnedConcurrency } }),
  };
}

/** A scope's state read back from what `exportedScope` wrote, or from the version-1 format. */
export function importedState(persisted: PersistedScope | LegacyPersistedScope): ScopeState {
  const learnedRules = ("learnedRules" in persisted ? (persisted.learnedRules ?? []) : []).map((rule) => ({
    ...rule,
  }));
  return {
    sliding: "log" in persisted ? slidingFromLog(persisted.log) : slidingFromRuns(persisted.sliding),
    day: { ...persisted.day },
    month: { ...persisted.month },
    inFlight: 0,
    // Reservation ids start again in this process: every one is sent after the stored report.
    learned: new Map(persisted.learned.map(([key, value]) => [key, { ...value, asOfId: 0 }])),
    fixed: new Map(("fixed" in persisted ? (persisted.fixed ?? []) : []).map(([key, value]) => [key, { ...value }])),
    buckets: new Map(
      ("buckets" in persisted ? (persisted.buckets ?? []) : []).map(([key, value]) => [key, { ...value }]),
    ),
    learnedRules,
    learnedConcurrency:
      "learnedConcurrency" in persisted ? learnedConcurrencyOf(persisted.learnedConcurrency) : undefined,
    learnedChangeAtMs: nextInferredChangeAtMs(learnedRules),
    effective: undefined,
    sends: [],
    charges: [],
  };
}

/** A stored learned concurrency, or undefined when it is not one (a corrupt row keeps its other state). */
export function learnedConcurrencyOf(value: unknown): LearnedConcurrency | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { limit, evidence, isOwnEvidence, learnedAtMs } = value as Record<string, unknown>;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) return undefined;
  if (typeof evidence !== "string" || typeof learnedAtMs !== "number" || !Number.isFinite(learnedAtMs)) {
    return undefined;
  }
  return { limit, evidence, learnedAtMs, ...(isOwnEvidence === true ? { isOwnEvidence: true } : {}) };
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
