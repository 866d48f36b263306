// Limits learned from 429s as rules of a scope: merged with the ones learned before (never replacing a configured
// one), lapsing or climbing when inferred from our own sends, and the limit on requests in flight a concurrency
// refusal teaches.
import type { BudgetRule, BudgetScope, BudgetWindow, LearnedConcurrency } from "./budget-types.ts";
import type { LearnedRule, RefusalFacts } from "./limit-learning.ts";
import { climbedRule, isHeldLow, recoveryAfter } from "./limit-recovery.ts";
import { rulesOf, type ScopeState, SLIDING_WINDOW_MS } from "./scope-state.ts";
import { seedWindows } from "./scope-windows.ts";
import type { WindowAlgorithm } from "./window-counters.ts";

/**
 * How long a limit inferred from our own sends (BudgetRule.isOwnEvidence) lives after the 429 that last taught or
 * confirmed it. Pacing keeps the requests in a window at or below the learned limit, so a later 429 can only teach
 * the same limit or a lower one: one low reading (a transient 429, another client of the key using part of it for
 * a while) would otherwise pace the candidate below the key's limit for good. After this the candidate is unpaced
 * until its next 429, which teaches the limit anew: one 429 per lifetime where the limit is real. Limits the
 * provider states are not affected (each answer restates them).
 */
export const INFERRED_LIMIT_LIFETIME_MS: Readonly<Partial<Record<BudgetWindow, number>>> = {
  second: 30 * 60_000,
  minute: 30 * 60_000,
  day: 24 * 3_600_000,
};

/** An inferred limit on requests in flight (LearnedConcurrency) lapses as an inferred per-minute rate does. */
export const INFERRED_CONCURRENCY_LIFETIME_MS = 30 * 60_000;

/** A learned limit with how the provider counts its window (from its `limits.window`; absent: sliding). */
export type CountedRule = LearnedRule & { readonly algorithm?: WindowAlgorithm; readonly offsetMs?: number };

/** A 429's lessons counted the way the refusal says the provider counts (second/minute/hour windows only). */
export function countedRules(learned: readonly LearnedRule[], refusal: RefusalFacts): CountedRule[] {
  return learned.map((rule) =>
    refusal.algorithm === undefined || refusal.algorithm === "sliding" || SLIDING_WINDOW_MS[rule.window] === undefined
      ? rule
      : { ...rule, algorithm: refusal.algorithm, offsetMs: refusal.offsetMs ?? 0 },
  );
}

/** Limits stated to another process (BudgetBook.adoptStatedRules) as lessons of this one. */
export function adoptedAsLearned(adopted: readonly BudgetRule[]): CountedRule[] {
  return adopted.map(({ unit, window, limit, learnedFrom, algorithm, offsetMs }) => ({
    unit,
    window,
    limit,
    evidence: learnedFrom ?? "stated to another process",
    ...(algorithm === undefined || algorithm === "sliding" ? {} : { algorithm, offsetMs: offsetMs ?? 0 }),
  }));
}

/**
 * Makes learned limits rules of the scope: one replaces an earlier one of the same unit and window, and never one
 * that is configured; a window new to the scope is seeded with the sends `accepted` in it (`seedWindows`). A 429's
 * lessons and a limit another process was stated (`adoptStatedRules`) both go this way. The caller marks the scope
 * changed.
 */
export function mergeLearned(
  scope: BudgetScope,
  state: ScopeState,
  learned: readonly CountedRule[],
  accepted: readonly number[],
  nowMs: number,
): void {
  const configured = new Set(scope.rules.map((rule) => `${rule.unit}:${rule.window}`));
  const byWindow = new Map(state.learnedRules.map((rule) => [`${rule.unit}:${rule.window}`, rule]));
  for (const rule of learned) {
    const key = `${rule.unit}:${rule.window}`;
    if (configured.has(key)) continue;
    const known = byWindow.get(key);
    // The same limit again: keep the rule (and its counts, and its climb if it is climbing), confirmed now. So is
    // a lower reading within the climb's interval of the last lowering (isHeldLow). A stated limit equal to one
    // inferred before replaces it: the key's limit, no longer this process's reading (shared, and not lapsing).
    const isNowStated = known?.isOwnEvidence === true && rule.isOwnEvidence !== true;
    if (known !== undefined && !isNowStated && (known.limit === rule.limit || isHeldLow(known, rule, nowMs))) {
      if (known.learnedAtMs !== undefined) byWindow.set(key, { ...known, learnedAtMs: nowMs });
      continue;
    }
    const recovery = rule.isOwnEvidence === true ? recoveryAfter(known, rule, nowMs) : undefined;
    byWindow.set(key, {
      unit: rule.unit,
      window: rule.window,
      limit: rule.limit,
      learnedFrom: rule.evidence,
      ...(rule.isOwnEvidence === true ? { isOwnEvidence: true, learnedAtMs: nowMs } : {}),
      ...(recovery === undefined ? {} : { recovery }),
      ...(rule.algorithm === undefined ? {} : { algorithm: rule.algorithm, offsetMs: rule.offsetMs ?? 0 }),
    });
  }
  const before = rulesOf(scope, state);
  state.learnedRules = [...byWindow.values()];
  state.learnedChangeAtMs = nextInferredChangeAtMs(state.learnedRules);
  state.effective = undefined;
  seedWindows(state, before, rulesOf(scope, state), accepted, nowMs);
}

/**
 * Drops the inferred limits whose lifetime is over (INFERRED_LIMIT_LIFETIME_MS) and moves the climbing ones up
 * by the steps that are due (RECOVERY_INTERVAL_MS). Returns whether a rule changed.
 */
export function updateInferred(scope: BudgetScope, state: ScopeState, nowMs: number): boolean {
  let isChanged = false;
  const kept: BudgetRule[] = [];
  for (const rule of state.learnedRules) {
    if (inferredLapseAtMs(rule) <= nowMs) {
      isChanged = true;
      continue;
    }
    const climbed = climbedRule(rule, nowMs);
    if (climbed !== rule) isChanged = true;
    kept.push(climbed);
  }
  if (isChanged) {
    const before = rulesOf(scope, state);
    state.learnedRules = kept;
    state.effective = undefined;
    // A bucket is keyed by its limit: the climbed rule's starts from the recent sends, not empty.
    seedWindows(state, before, rulesOf(scope, state), state.sends, nowMs);
  }
  state.learnedChangeAtMs = nextInferredChangeAtMs(state.learnedRules);
  return isChanged;
}

/**
 * Forgets the limits the provider stated (another process forgot the scope: BudgetBook.adoptForgottenStated),
 * keeping those inferred from this process's own sends. Returns whether one went.
 */
export function forgetStated(state: ScopeState): boolean {
  let isChanged = false;
  const inferred = state.learnedRules.filter((rule) => rule.isOwnEvidence === true);
  if (inferred.length !== state.learnedRules.length) {
    state.learnedRules = inferred;
    state.learnedChangeAtMs = nextInferredChangeAtMs(inferred);
    state.effective = undefined;
    isChanged = true;
  }
  if (state.learnedConcurrency !== undefined && state.learnedConcurrency.isOwnEvidence !== true) {
    state.learnedConcurrency = undefined;
    isChanged = true;
  }
  return isChanged;
}

/**
 * The stated number of requests in flight, else the requests of ours in flight beside the refused one (the
 * recorder applies a refusal's lessons before it releases its reservation, so `inFlight` still counts it). With
 * none beside it, the key's other clients hold the slots: nothing to learn, only the cooldown applies.
 */
export function learnConcurrency(state: ScopeState, refusal: RefusalFacts, nowMs: number): void {
  const stated = refusal.statedConcurrency;
  if (stated !== undefined && stated > 0) {
    state.learnedConcurrency = { limit: stated, evidence: `429 stating ${stated} in flight`, learnedAtMs: nowMs };
    return;
  }
  const others = state.inFlight - 1;
  if (others < 1) return;
  state.learnedConcurrency = {
    limit: others,
    evidence: `concurrency 429 with ${others} other request(s) in flight`,
    isOwnEvidence: true,
    learnedAtMs: nowMs,
  };
}

/** A learned concurrency while it holds: an inferred one lapses as an inferred per-minute rate does. */
export function unlapsedConcurrency(
  learned: LearnedConcurrency | undefined,
  nowMs: number,
): LearnedConcurrency | undefined {
  if (learned === undefined || learned.isOwnEvidence !== true) return learned;
  // One low reading must not cap the key for good.
  return nowMs < learned.learnedAtMs + INFERRED_CONCURRENCY_LIFETIME_MS ? learned : undefined;
}

/** When an inferred learned limit lapses; Infinity for a stated one (or one stored before lifetimes existed). */
export function inferredLapseAtMs(rule: BudgetRule): number {
  const lifetimeMs = INFERRED_LIMIT_LIFETIME_MS[rule.window];
  if (rule.isOwnEvidence !== true || rule.learnedAtMs === undefined || lifetimeMs === undefined) {
    return Number.POSITIVE_INFINITY;
  }
  return rule.learnedAtMs + lifetimeMs;
}

/** When the first inferred limit lapses or climbs a step. */
export function nextInferredChangeAtMs(rules: readonly BudgetRule[]): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const rule of rules) {
    earliest = Math.min(earliest, inferredLapseAtMs(rule), rule.recovery?.nextStepAtMs ?? Number.POSITIVE_INFINITY);
  }
  return earliest;
}
