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
// requests we send after it are subtracted; at N − sent ≤ 0 the scope is over budget until T. "After it" means
// after the request whose answer carried the report (requests overlap: one sent later may already be in flight
// when an earlier one's answer arrives), found in a bounded log of the scope's recent charges.
//
// The book is the public face of src/limits/'s budgets: its shapes are in budget-types.ts, one scope's state in
// scope-state.ts (kept by id in scope-book.ts, BudgetBook's base: reads roll it to now, other processes' lessons,
// persistence in persisted-scope.ts), the windows by kind in scope-windows.ts, a check in scope-check.ts, what a
// reservation charged in reservation-charges.ts, providers' reports in provider-reports.ts, learned limits in
// inferred-limits.ts and limit-recovery.ts, /stats' view in budget-usage.ts. Every call changes the states of its
// scopes through those, inside the call, so the windows stay consistent with each other.

import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import type {
  BudgetCost,
  BudgetLedger,
  BudgetRule,
  BudgetScope,
  BudgetVerdict,
  Denied,
  Reservation,
  WindowUsage,
} from "./budget-types.ts";
import { windowUsage } from "./budget-usage.ts";
import type { ReleaseSlot } from "./in-flight-gate.ts";
import { countedRules, learnConcurrency, mergeLearned } from "./inferred-limits.ts";
import { type LearnedRule, limitsFromRefusal, type RefusalFacts } from "./limit-learning.ts";
import { learnReports } from "./provider-reports.ts";
import type { LearnedWindow } from "./rate-limit-headers.ts";
import {
  type ChargedTo,
  chargeScope,
  giveBackCharged,
  giveBackState,
  reconcileCharged,
  reconcileState,
  retimeRuns,
} from "./reservation-charges.ts";
import { ScopeBook } from "./scope-book.ts";
import { ALLOWED, checkScope, requestsOf } from "./scope-check.ts";
import { rulesOf, type ScopeState } from "./scope-state.ts";
import { resyncCounters } from "./scope-windows.ts";

export class BudgetBook extends ScopeBook implements BudgetLedger {
  /**
   * What each reservation was charged to, for its markSent, reconcile, release and give-back: one entry per
   * reservation (a weak map's entries cost the garbage collector per entry, and every request makes one).
   * `states`: the scope states, in the order of its scopes. A reload that points a scope at another key forgets
   * its state (`forget`) while requests charged to it are still in flight: their release and reconcile must change
   * the state they were charged to, never the new key's (freeing a concurrency slot the new key's own requests hold
   * let one more in than its limit). `runs`: the sliding-window runs, so a reconcile moves exactly its own tokens.
   * `counters`: the fixed-window counters and token buckets.
   */
  readonly #chargedTo = new WeakMap<Reservation, ChargedTo>();
  #nextReservationId = 1;

  /**
   * Would this cost fit every scope's budgets now? No side effects. A denial is the binding one (`laterDenial`):
   * the request needs every budget of every scope, so it fits when the last of them admits it, and never when one
   * can never hold it. The first refusal found is not that: an rpm spent for 10 s hid a tpm spent for 40 s (the
   * caller came back at 10 s to be refused again) and a request larger than the whole tpm (a 429 instead of the
   * 413). An allowed request reads every rule either way; only a denial goes on reading after its first refusal.
   */
  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict {
    let denied: Denied | undefined;
    for (const scope of scopes) denied = checkScope(scope, this.state(scope, nowMs), cost, nowMs, denied);
    return denied ?? ALLOWED;
  }

  /** Checks and, if allowed, charges every scope at once (all or nothing). */
  reserve(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
  ): Reservation | (BudgetVerdict & { isAllowed: false }) {
    const verdict = this.check(scopes, cost, nowMs);
    if (!verdict.isAllowed) return verdict;
    const requests = requestsOf(cost);
    const reservation: Reservation = {
      id: this.#nextReservationId++,
      scopes,
      atMs: nowMs,
      tokens: cost.tokens,
      ...(requests === 1 ? {} : { requests }),
      ...(cost.isTokensOnly === true ? { isTokensOnly: true } : {}),
      isReleased: false,
    };
    const charged: ChargedTo = { states: [], runs: undefined, counters: undefined };
    for (const scope of scopes) {
      const state = this.state(scope, nowMs);
      chargeScope(charged, state, rulesOf(scope, state), reservation, requests, nowMs);
      this.dirty.add(scope.id);
    }
    this.#chargedTo.set(reservation, charged);
    return reservation;
  }

  /** Replaces the estimated token cost with the real one from `usage`. */
  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void {
    const delta = actualTokens - reservation.tokens;
    if (delta === 0) return;
    reservation.tokens = actualTokens;
    const charged = this.#chargedTo.get(reservation);
    reconcileCharged(charged, delta);
    for (const state of this.#chargedStates(reservation, charged, nowMs)) reconcileState(state, reservation, delta);
    for (const scope of reservation.scopes) this.dirty.add(scope.id);
  }

  /**
   * The states a reservation was charged to: the scope's current one (its windows rolled to now) while it still is,
   * else the one forgotten since (see #chargedTo); a reservation this book did not make is its scopes' current ones.
   */
  #chargedStates(reservation: Reservation, charged: ChargedTo | undefined, nowMs: number): ScopeState[] {
    return reservation.scopes.map((scope, index) => {
      const state = charged?.states[index];
      return state === undefined || this.states.get(scope.id) === state ? this.state(scope, nowMs) : state;
    });
  }

  markSent(reservation: Reservation, atMs: number): void {
    // Nearly every request is sent within the millisecond it was reserved in: nothing to move.
    if (atMs <= reservation.atMs) return;
    const runs = this.#chargedTo.get(reservation)?.runs;
    if (runs === undefined) return;
    retimeRuns(runs, reservation, atMs);
    for (const scope of reservation.scopes) this.dirty.add(scope.id);
  }

  /** Frees the concurrency slot. Idempotent, so every exit path may call it. */
  release(reservation: Reservation): void {
    if (reservation.isReleased) return;
    reservation.isReleased = true;
    // Tokens alone held no slot (BudgetCost.isTokensOnly): freeing one would free another request's.
    if (reservation.isTokensOnly === true) return;
    const charged = this.#chargedTo.get(reservation)?.states;
    for (let index = 0; index < reservation.scopes.length; index++) {
      const state = charged?.[index] ?? this.states.get((reservation.scopes[index] as BudgetScope).id);
      if (state !== undefined && state.inFlight > 0) state.inFlight -= 1;
    }
  }

  /**
   * A call beside a reservation's own, now or never (BudgetLedger.takeInFlight): checked against each scope's
   * concurrency as a reserve is, then counted in flight in the states it was taken in (a reload's `forget` meanwhile
   * must not free a slot of the new key's, as for `release`).
   */
  takeInFlight(scopes: readonly BudgetScope[], nowMs: number): ReleaseSlot | undefined {
    const states: ScopeState[] = [];
    for (const scope of scopes) {
      const state = this.state(scope, nowMs);
      if (scope.concurrency !== undefined && state.inFlight >= scope.concurrency) return undefined;
      const learned = this.learnedConcurrency(scope.id, nowMs);
      if (learned !== undefined && state.inFlight >= learned.limit) return undefined;
      states.push(state);
    }
    for (const state of states) state.inFlight += 1;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      for (const state of states) if (state.inFlight > 0) state.inFlight -= 1;
    };
  }

  /**
   * Gives back the requests of calls never sent, where the reserve charged them: sliding runs, fixed windows and
   * request buckets, day and month counters (those still the ones it was charged in), and what a provider's report
   * counts as sent since it (`spentSince`, for a report taken before the reservation).
   */
  releaseUnsentCalls(reservation: Reservation, calls: number, nowMs: number): void {
    const requests = reservation.requests ?? 1;
    const unsent = Math.min(Math.max(0, Math.floor(calls)), requests);
    if (unsent === 0) return;
    reservation.requests = requests - unsent;
    const charged = this.#chargedTo.get(reservation);
    giveBackCharged(charged, unsent);
    for (const state of this.#chargedStates(reservation, charged, nowMs)) giveBackState(state, reservation, unsent);
    for (const scope of reservation.scopes) this.dirty.add(scope.id);
  }

  /**
   * Stores what the provider's rate-limit headers said about a scope. A report is the provider's count as of the
   * request that carried it (`window.asOf`; as of now without one): the requests sent to the scope after that one
   * are subtracted from it, and a report older than the one in force (an overlapping request's answer arriving
   * late) is ignored.
   */
  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void {
    if (windows.length === 0) return;
    learnReports(scope, this.state(scope, nowMs), windows, this.#nextReservationId - 1, nowMs);
    this.dirty.add(scope.id);
  }

  /**
   * Learns limits from a 429 (what the provider said, and the spacing of what we sent before it) into the scope's
   * rules: a learned limit replaces an earlier one of the same unit and window, and never one that is configured.
   */
  learnLimits(scope: BudgetScope, refusal: RefusalFacts, nowMs: number): readonly LearnedRule[] {
    const state = this.state(scope, nowMs);
    // A concurrency refusal says how many requests may run at once, nothing about a rate: no window learns from
    // it, and the refused request is not given back to windows that never counted it as accepted anyway.
    if (refusal.kind === "concurrency") {
      learnConcurrency(state, refusal, nowMs);
      this.dirty.add(scope.id);
      return [];
    }
    // The refused request is not among what the provider accepted.
    const refusedIndex = state.sends.lastIndexOf(refusal.sentAtMs);
    const accepted = refusedIndex < 0 ? state.sends : state.sends.filter((_, index) => index !== refusedIndex);
    resyncCounters(state, rulesOf(scope, state), refusal, nowMs);
    const learned = limitsFromRefusal(refusal, accepted, Math.max(0, state.day.requests - 1));
    if (learned.length === 0) return learned;
    mergeLearned(scope, state, countedRules(learned, refusal), accepted, nowMs);
    this.dirty.add(scope.id);
    return learned;
  }

  /** A scope whose rules include what was learned for it: what a shared ledger must enforce. */
  effectiveScope(scope: BudgetScope, nowMs: number): BudgetScope {
    // Stated limits adopted since the scope was last read are among its rules (`adoptStatedRules`).
    const state = this.adoptedRules.has(scope.id) ? this.state(scope, nowMs) : this.states.get(scope.id);
    if (state === undefined || state.learnedRules.length === 0) return scope;
    const rules = rulesOf(scope, this.state(scope, nowMs));
    let cached = this.#effectiveScopes.get(rules);
    if (cached === undefined || cached.id !== scope.id) {
      cached = { ...scope, rules };
      this.#effectiveScopes.set(rules, cached);
    }
    return cached;
  }

  readonly #effectiveScopes = new WeakMap<readonly BudgetRule[], BudgetScope>();

  /**
   * What a ledger shared by several processes must enforce for all of them: the configured rules and the limits
   * the provider stated, without those inferred from this process's own sends (BudgetRule.isOwnEvidence), which
   * pace this process only. A limit on requests in flight the provider stated is the key's too: it becomes the
   * scope's concurrency (the lower of it and the configured one), counted fleet-wide by the shared ledger's leases.
   */
  sharedScope(scope: BudgetScope, nowMs: number): BudgetScope {
    const ruled = this.#sharedRules(scope, nowMs);
    const learned = this.states.get(scope.id)?.learnedConcurrency ?? this.adoptedConcurrency.get(scope.id);
    if (learned === undefined || learned.isOwnEvidence === true) return ruled;
    const concurrency = Math.min(learned.limit, scope.concurrency ?? Number.POSITIVE_INFINITY);
    if (concurrency === ruled.concurrency) return ruled;
    let cached = this.#concurrencyScopes.get(ruled);
    if (cached === undefined || cached.concurrency !== concurrency) {
      cached = { ...ruled, concurrency };
      this.#concurrencyScopes.set(ruled, cached);
    }
    return cached;
  }

  readonly #concurrencyScopes = new WeakMap<BudgetScope, BudgetScope>();

  #sharedRules(scope: BudgetScope, nowMs: number): BudgetScope {
    const effective = this.effectiveScope(scope, nowMs);
    if (!effective.rules.some((rule) => rule.isOwnEvidence === true)) return effective;
    let cached = this.#sharedScopes.get(effective.rules);
    if (cached === undefined || cached.id !== scope.id) {
      cached = { ...scope, rules: effective.rules.filter((rule) => rule.isOwnEvidence !== true) };
      this.#sharedScopes.set(effective.rules, cached);
    }
    return cached;
  }

  readonly #sharedScopes = new WeakMap<readonly BudgetRule[], BudgetScope>();

  /** Per-window usage of a scope, for /health and /stats. */
  usage(scope: BudgetScope, nowMs: number): WindowUsage[] {
    return windowUsage(scope, this.state(scope, nowMs), nowMs);
  }
}

export function isReservation(value: Reservation | BudgetVerdict): value is Reservation {
  return "id" in value;
}

export type {
  BudgetCost,
  BudgetLedger,
  BudgetRule,
  BudgetScope,
  BudgetUnit,
  BudgetVerdict,
  BudgetWindow,
  Denied,
  LearnedConcurrency,
  Reservation,
  WindowUsage,
} from "./budget-types.ts";
export {
  AUDIO_SCOPE_SUFFIX,
  audioRulesFromLimits,
  learningScope,
  POOL_SCOPE_PREFIX,
  rulesFromLimits,
} from "./budget-types.ts";
export {
  INFERRED_CONCURRENCY_LIFETIME_MS,
  INFERRED_LIMIT_LIFETIME_MS,
} from "./inferred-limits.ts";
export { RECOVERY_INTERVAL_MS } from "./limit-recovery.ts";
export { learnedConcurrencyOf, type PersistedScope } from "./persisted-scope.ts";
export { assumedResetAtMs } from "./provider-reports.ts";
export { denialReason, laterDenial } from "./scope-check.ts";
export { UTC_MIDNIGHT };
