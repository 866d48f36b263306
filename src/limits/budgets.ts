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
// BudgetBook stays whole for now (its shapes are in budget-types.ts): check, reserve, reconcile, release and the
// learning paths all read and change one per-scope state (sliding, fixed and bucket counters, learned rules,
// recent sends), and the windows must stay consistent inside one call. Splitting it by window kind (a counter
// object per rule behind one interface) is the next step when it grows again.

import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import type {
  BudgetCost,
  BudgetLedger,
  BudgetRule,
  BudgetScope,
  BudgetUnit,
  BudgetVerdict,
  BudgetWindow,
  Denied,
  LearnedConcurrency,
  LimitRecovery,
  Reservation,
  WindowUsage,
} from "./budget-types.ts";
import { CONCURRENCY_RETRY_MS } from "./budget-types.ts";
import { dayWindow, monthWindow } from "./day-window.ts";
import type { ReleaseSlot } from "./in-flight-gate.ts";
import { type LearnedRule, limitsFromRefusal, type RefusalFacts } from "./limit-learning.ts";
import type { LearnedWindow, ReportAnchor } from "./rate-limit-headers.ts";
import { type PersistedRun, type SlidingRun, SlidingWindow } from "./sliding-window.ts";
import {
  type BucketLevel,
  bucketRetryAtMs,
  bucketUsed,
  type FixedWindowCounter,
  fixedKey,
  fixedWindowAt,
  type WindowAlgorithm,
} from "./window-counters.ts";

const SLIDING_WINDOW_MS: Partial<Record<BudgetWindow, number>> = { second: 1_000, minute: 60_000, hour: 3_600_000 };

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

/**
 * A 429 that teaches a lower inferred limit than the one in force may be a transient refusal, or another client of
 * the key taking part of it for a while, as well as a lower limit: the limit then climbs back toward the highest one
 * inferred before, by RECOVERY_STEP of that ceiling (at least 1) every this long without a 429 lowering it again.
 * Each lowering during the climb doubles the interval (up to RECOVERY_MAX_INTERVALS times this), so a key whose
 * share really shrank is probed ever more rarely; each step after one that held halves it again (climbedRule); a
 * confirmation at the current limit does not slow the climb.
 * Day limits do not climb (a daily quota's count is its own evidence): they lapse.
 */
export const RECOVERY_INTERVAL_MS: Readonly<Partial<Record<BudgetWindow, number>>> = {
  second: 5_000,
  minute: 120_000,
};
const RECOVERY_STEP = 0.1;
const RECOVERY_MAX_INTERVALS = 16;

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

export class BudgetBook implements BudgetLedger {
  readonly #states = new Map<string, ScopeState>();
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
  /** Scope ids changed since the last `takeDirty()`: what a persistent store must write. */
  readonly #dirty = new Set<string>();

  /**
   * Would this cost fit every scope's budgets now? No side effects. A denial is the binding one (`laterDenial`):
   * the request needs every budget of every scope, so it fits when the last of them admits it, and never when one
   * can never hold it. The first refusal found is not that: an rpm spent for 10 s hid a tpm spent for 40 s (the
   * caller came back at 10 s to be refused again) and a request larger than the whole tpm (a 429 instead of the
   * 413). An allowed request reads every rule either way; only a denial goes on reading after its first refusal.
   */
  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict {
    let denied: Denied | undefined;
    for (const scope of scopes) denied = this.#checkScope(scope, cost, nowMs, denied);
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
    const requests = cost.requests ?? 1;
    const reservation: Reservation = {
      id: this.#nextReservationId++,
      scopes,
      atMs: nowMs,
      tokens: cost.tokens,
      ...(requests === 1 ? {} : { requests }),
      isReleased: false,
    };
    let runs: ChargedRun[] | undefined;
    let counters: ChargedCounters | undefined;
    const states: ScopeState[] = [];
    for (const scope of scopes) {
      const state = this.#state(scope, nowMs);
      states.push(state);
      const rules = this.#rulesOf(scope, state);
      counters = chargeCounters(counters, state, rules, cost.tokens, nowMs, requests);
      recordSend(state, nowMs);
      recordCharge(state, reservation);
      for (const windowMs of slidingWindowsOf(rules)) {
        const window = slidingWindow(state, windowMs);
        const run = window.charge(nowMs, cost.tokens, nowMs, requests);
        if (run === undefined) continue;
        runs ??= [];
        runs.push({ window, run });
      }
      state.day.requests += requests;
      state.day.tokens += cost.tokens;
      state.month.requests += requests;
      state.month.tokens += cost.tokens;
      for (const [key, learned] of state.learned) {
        learned.spentSince += key.startsWith("tokens") ? cost.tokens : requests;
      }
      state.inFlight += 1;
      this.#dirty.add(scope.id);
    }
    this.#chargedTo.set(reservation, { states, runs, counters });
    return reservation;
  }

  /** Replaces the estimated token cost with the real one from `usage`. */
  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void {
    const delta = actualTokens - reservation.tokens;
    if (delta === 0) return;
    reservation.tokens = actualTokens;
    const charged = this.#chargedTo.get(reservation);
    for (const { window, run } of charged?.runs ?? []) window.adjust(run, delta);
    const counters = charged?.counters;
    if (counters !== undefined) {
      for (const counter of counters.fixed) counter.tokens = Math.max(0, counter.tokens + delta);
      // The bucket's debt now (a later charge replaced the level it had then): tokens not used are back at once.
      for (const { levels, key } of counters.buckets) {
        const level = levels.get(key);
        if (level !== undefined) level.used = Math.max(0, level.used + delta);
      }
    }
    for (const state of this.#chargedStates(reservation, charged, nowMs)) {
      if (state.day.windowStartMs <= reservation.atMs) state.day.tokens = Math.max(0, state.day.tokens + delta);
      if (state.month.windowStartMs <= reservation.atMs) state.month.tokens = Math.max(0, state.month.tokens + delta);
      reconcileReported(state, reservation, delta);
    }
    for (const scope of reservation.scopes) this.#dirty.add(scope.id);
  }

  /**
   * The states a reservation was charged to: the scope's current one (its windows rolled to now) while it still is,
   * else the one forgotten since (see #chargedTo); a reservation this book did not make is its scopes' current ones.
   */
  #chargedStates(reservation: Reservation, charged: ChargedTo | undefined, nowMs: number): ScopeState[] {
    return reservation.scopes.map((scope, index) => {
      const state = charged?.states[index];
      return state === undefined || this.#states.get(scope.id) === state ? this.#state(scope, nowMs) : state;
    });
  }

  markSent(reservation: Reservation, atMs: number): void {
    // Nearly every request is sent within the millisecond it was reserved in: nothing to move.
    if (atMs <= reservation.atMs) return;
    const runs = this.#chargedTo.get(reservation)?.runs;
    if (runs === undefined) return;
    for (let index = 0; index < runs.length; index++) {
      const charged = runs[index] as ChargedRun;
      const run = charged.window.retime(charged.run, reservation.tokens, atMs, atMs, reservation.requests);
      if (run !== charged.run) {
        if (run === undefined) runs.splice(index--, 1);
        else runs[index] = { window: charged.window, run };
      }
    }
    for (const scope of reservation.scopes) this.#dirty.add(scope.id);
  }

  /** Frees the concurrency slot. Idempotent, so every exit path may call it. */
  release(reservation: Reservation): void {
    if (reservation.isReleased) return;
    reservation.isReleased = true;
    const charged = this.#chargedTo.get(reservation)?.states;
    for (let index = 0; index < reservation.scopes.length; index++) {
      const state = charged?.[index] ?? this.#states.get((reservation.scopes[index] as BudgetScope).id);
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
      const state = this.#state(scope, nowMs);
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
    for (const { window, run } of charged?.runs ?? []) window.adjust(run, 0, -unsent);
    const counters = charged?.counters;
    if (counters !== undefined) {
      for (const counter of counters.fixed) counter.requests = Math.max(0, counter.requests - unsent);
      for (const { levels, key } of counters.requestBuckets) {
        const level = levels.get(key);
        if (level !== undefined) level.used = Math.max(0, level.used - unsent);
      }
    }
    for (const state of this.#chargedStates(reservation, charged, nowMs)) {
      if (state.day.windowStartMs <= reservation.atMs) state.day.requests = Math.max(0, state.day.requests - unsent);
      if (state.month.windowStartMs <= reservation.atMs) {
        state.month.requests = Math.max(0, state.month.requests - unsent);
      }
      for (const [key, learned] of state.learned) {
        if (key.startsWith("tokens") || (learned.asOfId ?? 0) >= reservation.id) continue;
        learned.spentSince = Math.max(0, learned.spentSince - unsent);
      }
    }
    for (const scope of reservation.scopes) this.#dirty.add(scope.id);
  }

  /**
   * Stores what the provider's rate-limit headers said about a scope. A report is the provider's count as of the
   * request that carried it (`window.asOf`; as of now without one): the requests sent to the scope after that one
   * are subtracted from it, and a report older than the one in force (an overlapping request's answer arriving
   * late) is ignored.
   */
  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void {
    if (windows.length === 0) return;
    const state = this.#state(scope, nowMs);
    let after: ChargedAfter | undefined;
    for (const window of windows) {
      if (window.remaining === undefined) continue;
      // Mistral (and Together for tokens) send no reset time: assume the window's longest possible wait, so a
      // "0 left" still keeps us away, but never longer than the window itself.
      const resetAtMs = window.resetAtMs ?? assumedResetAtMs(scope, window.window, nowMs);
      if (resetAtMs <= nowMs) continue;
      if (after === undefined || after.anchor !== window.asOf) after = this.#chargedAfter(state, window.asOf);
      const key = `${window.unit}:${window.window}`;
      const known = state.learned.get(key);
      if (known !== undefined && known.resetAtMs > nowMs && (known.asOfId ?? 0) > after.asOfId) continue;
      state.learned.set(key, {
        remaining: window.remaining,
        resetAtMs,
        limit: window.limit,
        spentSince: window.unit === "tokens" ? after.tokens : after.requests,
        asOfId: after.asOfId,
      });
    }
    this.#dirty.add(scope.id);
  }

  /**
   * What the scope was charged after `anchor` (the reservation whose answer carried a report), from its recent
   * charges, newest first: bounded (MAX_RECENT_SENDS), and in practice only the requests sent while the anchor's
   * answer was on its way. An anchor not in this book (a shared ledger's own reservation, mirrored here under
   * another object) is placed by its send time: charges in the same millisecond count as before it.
   */
  #chargedAfter(state: ScopeState, anchor: ReportAnchor | undefined): ChargedAfter {
    const newestId = this.#nextReservationId - 1;
    if (anchor === undefined) return { anchor, requests: 0, tokens: 0, asOfId: newestId };
    let requests = 0;
    let tokens = 0;
    let tiedRequests = 0;
    let tiedTokens = 0;
    let firstTiedId: number | undefined;
    let oldestId = newestId + 1;
    const charges = state.charges;
    for (let index = charges.length - CHARGE_FIELDS; index >= 0; index -= CHARGE_FIELDS) {
      const id = charges[index] as number;
      const atMs = charges[index + 1] as number;
      const chargedTokens = charges[index + 2] as number;
      // The anchor itself (a mirrored reservation with the same id and send time is taken for it: the same send).
      if (id === anchor.id && atMs === anchor.atMs) {
        return { anchor, requests: requests + tiedRequests, tokens: tokens + tiedTokens, asOfId: anchor.id };
      }
      if (atMs < anchor.atMs) return { anchor, requests, tokens, asOfId: firstTiedId ?? id };
      if (atMs === anchor.atMs) {
        tiedRequests += 1;
        tiedTokens += chargedTokens;
        firstTiedId ??= id;
      } else {
        requests += 1;
        tokens += chargedTokens;
      }
      oldestId = id;
    }
    return { anchor, requests, tokens, asOfId: firstTiedId ?? oldestId - 1 };
  }

  /**
   * Learns limits from a 429 (what the provider said, and the spacing of what we sent before it) into the scope's
   * rules: a learned limit replaces an earlier one of the same unit and window, and never one that is configured.
   */
  learnLimits(scope: BudgetScope, refusal: RefusalFacts, nowMs: number): readonly LearnedRule[] {
    const state = this.#state(scope, nowMs);
    // A concurrency refusal says how many requests may run at once, nothing about a rate: no window learns from
    // it, and the refused request is not given back to windows that never counted it as accepted anyway.
    if (refusal.kind === "concurrency") {
      this.#learnConcurrency(state, refusal, nowMs);
      this.#dirty.add(scope.id);
      return [];
    }
    // The refused request is not among what the provider accepted.
    const refusedIndex = state.sends.lastIndexOf(refusal.sentAtMs);
    const accepted = refusedIndex < 0 ? state.sends : state.sends.filter((_, index) => index !== refusedIndex);
    this.#resync(state, this.#rulesOf(scope, state), refusal, nowMs);
    const learned = limitsFromRefusal(refusal, accepted, Math.max(0, state.day.requests - 1));
    if (learned.length === 0) return learned;
    const counted = learned.map((rule) =>
      refusal.algorithm === undefined || refusal.algorithm === "sliding" || SLIDING_WINDOW_MS[rule.window] === undefined
        ? rule
        : { ...rule, algorithm: refusal.algorithm, offsetMs: refusal.offsetMs ?? 0 },
    );
    this.#mergeLearned(scope, state, counted, accepted, nowMs);
    return learned;
  }

  /**
   * Makes learned limits rules of the scope: one replaces an earlier one of the same unit and window, and never one
   * that is configured; a window new to the scope is seeded with the sends `accepted` in it (`#seed`). A 429's
   * lessons and a limit another process was stated (`adoptStatedRules`) both go this way.
   */
  #mergeLearned(
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
    const before = this.#rulesOf(scope, state);
    state.learnedRules = [...byWindow.values()];
    state.learnedChangeAtMs = nextInferredChangeAtMs(state.learnedRules);
    state.effective = undefined;
    this.#seed(state, before, this.#rulesOf(scope, state), accepted, nowMs);
    this.#dirty.add(scope.id);
  }

  /**
   * Limits the provider stated to another process (a shared store passes them on, redis-learned-facts.ts): rules of
   * the scope as if this process's own 429 had stated them (`#mergeLearned`). Kept aside until the scope is next
   * read, which brings its configured rules and day reset (an id carries neither).
   */
  adoptStatedRules(scopeId: string, rules: readonly BudgetRule[]): void {
    const stated = rules.filter((rule) => rule.isOwnEvidence !== true);
    if (stated.length === 0) return;
    const pending = this.#adoptedRules.get(scopeId) ?? [];
    const windows = new Set(stated.map((rule) => `${rule.unit}:${rule.window}`));
    this.#adoptedRules.set(scopeId, [
      ...pending.filter((rule) => !windows.has(`${rule.unit}:${rule.window}`)),
      ...stated,
    ]);
  }

  readonly #adoptedRules = new Map<string, readonly BudgetRule[]>();

  /** Merges the stated limits adopted for the scope since it was last read (`adoptStatedRules`). */
  #mergeAdopted(scope: BudgetScope, state: ScopeState, nowMs: number): void {
    const adopted = this.#adoptedRules.get(scope.id);
    if (adopted === undefined) return;
    this.#adoptedRules.delete(scope.id);
    const learned = adopted.map(({ unit, window, limit, learnedFrom, algorithm, offsetMs }) => ({
      unit,
      window,
      limit,
      evidence: learnedFrom ?? "stated to another process",
      ...(algorithm === undefined || algorithm === "sliding" ? {} : { algorithm, offsetMs: offsetMs ?? 0 }),
    }));
    // No request of this process was refused: every recent send of its own was accepted.
    this.#mergeLearned(scope, state, learned, state.sends, nowMs);
  }

  /**
   * The stated number of requests in flight, else the requests of ours in flight beside the refused one (the
   * recorder applies a refusal's lessons before it releases its reservation, so `inFlight` still counts it). With
   * none beside it, the key's other clients hold the slots: nothing to learn, only the cooldown applies.
   */
  #learnConcurrency(state: ScopeState, refusal: RefusalFacts, nowMs: number): void {
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

  learnedConcurrency(scopeId: string, nowMs: number): LearnedConcurrency | undefined {
    const learned = this.#states.get(scopeId)?.learnedConcurrency ?? this.#adoptedConcurrency.get(scopeId);
    if (learned === undefined || learned.isOwnEvidence !== true) return learned;
    // An inferred one lapses as an inferred per-minute rate does: one low reading must not cap the key for good.
    return nowMs < learned.learnedAtMs + INFERRED_CONCURRENCY_LIFETIME_MS ? learned : undefined;
  }

  /**
   * A limit on requests in flight another process learned (a shared store passes on the ones the provider stated).
   * Kept aside until the scope's state exists: the state needs the scope's day reset, which an id does not carry.
   */
  adoptLearnedConcurrency(scopeId: string, learned: LearnedConcurrency): void {
    const state = this.#states.get(scopeId);
    if (state === undefined) this.#adoptedConcurrency.set(scopeId, learned);
    else state.learnedConcurrency = learned;
    this.#dirty.add(scopeId);
  }

  readonly #adoptedConcurrency = new Map<string, LearnedConcurrency>();

  /**
   * Another process forgot the scope (a reload pointed it at another key or upstream) and deleted the limits stated
   * for it: the stated ones this process learned or adopted go too, so that it does not hold the scope to the old
   * key's limits. Its counters and the limits inferred from its own requests stay: they are its own.
   */
  adoptForgottenStated(scopeId: string): void {
    this.#adoptedRules.delete(scopeId);
    if (this.#adoptedConcurrency.get(scopeId)?.isOwnEvidence !== true) this.#adoptedConcurrency.delete(scopeId);
    const state = this.#states.get(scopeId);
    if (state === undefined) return;
    const inferred = state.learnedRules.filter((rule) => rule.isOwnEvidence === true);
    if (inferred.length !== state.learnedRules.length) {
      state.learnedRules = inferred;
      state.learnedChangeAtMs = nextInferredChangeAtMs(inferred);
      state.effective = undefined;
      this.#dirty.add(scopeId);
    }
    if (state.learnedConcurrency !== undefined && state.learnedConcurrency.isOwnEvidence !== true) {
      state.learnedConcurrency = undefined;
      this.#dirty.add(scopeId);
    }
  }

  /** The limits learned for a scope (for the route explanation and tests). */
  learnedRules(scopeId: string): readonly BudgetRule[] {
    return this.#states.get(scopeId)?.learnedRules ?? [];
  }

  /** A scope whose rules include what was learned for it: what a shared ledger must enforce. */
  effectiveScope(scope: BudgetScope, nowMs: number): BudgetScope {
    // Stated limits adopted since the scope was last read are among its rules (`adoptStatedRules`).
    const state = this.#adoptedRules.has(scope.id) ? this.#state(scope, nowMs) : this.#states.get(scope.id);
    if (state === undefined || state.learnedRules.length === 0) return scope;
    const rules = this.#rulesOf(scope, this.#state(scope, nowMs));
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
    const learned = this.#states.get(scope.id)?.learnedConcurrency ?? this.#adoptedConcurrency.get(scope.id);
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

  /** Whether any of these scopes has a limit inferred from this process's own sends (see `sharedScope`). */
  hasOwnEvidence(scopes: readonly BudgetScope[]): boolean {
    for (const scope of scopes) {
      const state = this.#states.get(scope.id);
      if (state === undefined) continue;
      // An inferred limit on requests in flight is checked here only (Redis counts no one's in-flight requests for
      // it); a stated one is the shared scope's concurrency (`sharedScope`), counted by Redis's leases.
      if (state.learnedConcurrency?.isOwnEvidence === true) return true;
      if (state.learnedRules.some((rule) => rule.isOwnEvidence === true)) return true;
    }
    return false;
  }

  inFlight(scopeId: string): number {
    return this.#states.get(scopeId)?.inFlight ?? 0;
  }

  /** Per-window usage of a scope, for /health and /stats. */
  usage(scope: BudgetScope, nowMs: number): WindowUsage[] {
    const state = this.#state(scope, nowMs);
    const result: WindowUsage[] = [];
    for (const rule of this.#rulesOf(scope, state)) {
      const { used, resetsAtMs } = this.#used(state, rule, nowMs);
      const lapsesAtMs = inferredLapseAtMs(rule);
      result.push({
        unit: rule.unit,
        window: rule.window,
        limit: rule.limit,
        used,
        remaining: Math.max(0, rule.limit - used),
        resetsAtMs,
        source: rule.learnedFrom === undefined ? "config" : "learned",
        algorithm: algorithmOf(rule),
        ...(rule.learnedFrom === undefined ? {} : { evidence: rule.learnedFrom }),
        ...(Number.isFinite(lapsesAtMs) ? { lapsesAtMs } : {}),
        ...(rule.recovery === undefined
          ? {}
          : { recoversTo: rule.recovery.ceiling, nextStepAtMs: rule.recovery.nextStepAtMs }),
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
        algorithm: "fixed",
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

  /** Scopes taken by `takeDirty()` whose write failed (a locked or full disk): written at the next flush. */
  restoreDirty(scopeIds: readonly string[]): void {
    for (const id of scopeIds) this.#dirty.add(id);
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
      fixed: [...state.fixed].map(([key, value]) => [key, { ...value }] as const),
      buckets: [...state.buckets].map(([key, value]) => [key, { ...value }] as const),
      learnedRules: state.learnedRules.map((rule) => ({ ...rule })),
      ...(state.learnedConcurrency === undefined ? {} : { learnedConcurrency: { ...state.learnedConcurrency } }),
    };
  }

  /** Restores an exported scope; also reads the version-1 format (one sliding log entry per request). */
  importScope(scopeId: string, persisted: PersistedScope | LegacyPersistedScope): void {
    const learnedRules = ("learnedRules" in persisted ? (persisted.learnedRules ?? []) : []).map((rule) => ({
      ...rule,
    }));
    this.#states.set(scopeId, {
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
    });
  }

  /** Forgets one scope's counters and what it learned (a reload pointed it at another upstream or key). */
  forget(scopeId: string): void {
    this.#adoptedConcurrency.delete(scopeId);
    this.#adoptedRules.delete(scopeId);
    if (this.#states.delete(scopeId)) this.#dirty.add(scopeId);
  }

  /**
   * Forgets the scopes no request can be charged to any more (a provider, model or client removed from the config:
   * not in `configured`) once nothing in them still counts at `nowMs`: no request in flight, every counter's window
   * over, every bucket refilled, every provider report reset. What they learned (limits a 429 stated, a concurrency)
   * goes with them: a provider added back learns it again from its first refusal. Without this a removed provider's
   * rows stayed in the state file for good. Returns the ids forgotten (dirty: the next flush deletes their rows).
   */
  pruneUnconfigured(configured: ReadonlySet<string>, nowMs: number): string[] {
    const pruned: string[] = [];
    for (const [scopeId, state] of this.#states) {
      if (configured.has(scopeId) || state.inFlight > 0 || !isSpent(state, nowMs)) continue;
      this.forget(scopeId);
      pruned.push(scopeId);
    }
    return pruned;
  }

  /** Forgets every counter (admin reset, tests). */
  reset(): void {
    for (const id of this.#states.keys()) this.#dirty.add(id);
    this.#states.clear();
    this.#adoptedConcurrency.clear();
    this.#adoptedRules.clear();
  }

  /** The later of `denied` (from the scopes checked before) and every refusal of this scope's budgets. */
  #checkScope(scope: BudgetScope, cost: BudgetCost, nowMs: number, denied: Denied | undefined): Denied | undefined {
    const state = this.#state(scope, nowMs);
    if (scope.concurrency !== undefined && state.inFlight >= scope.concurrency) {
      denied = laterDenial(denied, {
        isAllowed: false,
        scopeId: scope.id,
        reason: `at its concurrency limit (${scope.concurrency} in flight)`,
        retryAtMs: nowMs + CONCURRENCY_RETRY_MS,
      });
    }
    const learnedConcurrency =
      state.learnedConcurrency === undefined ? undefined : this.learnedConcurrency(scope.id, nowMs);
    if (learnedConcurrency !== undefined && state.inFlight >= learnedConcurrency.limit) {
      denied = laterDenial(denied, {
        isAllowed: false,
        scopeId: scope.id,
        reason: `at its learned concurrency limit (${learnedConcurrency.limit} in flight: ${learnedConcurrency.evidence})`,
        retryAtMs: nowMs + CONCURRENCY_RETRY_MS,
      });
    }
    for (const rule of this.#rulesOf(scope, state)) {
      const amount = rule.unit === "requests" ? (cost.requests ?? 1) : cost.tokens;
      const { used, resetsAtMs } = this.#used(state, rule, nowMs);
      if (used + amount <= rule.limit) continue;
      // A single request larger than a whole token budget can never fit: no retry time (the final error turns it
      // into a 413 request_too_large when no candidate is left, final-error.ts).
      const retryAtMs =
        amount > rule.limit ? Number.POSITIVE_INFINITY : this.#retryAt(state, rule, amount, nowMs, resetsAtMs, used);
      denied = laterDenial(denied, {
        isAllowed: false,
        scopeId: scope.id,
        reason: denialReason(rule, used, amount),
        retryAtMs,
      });
    }
    for (const [key, learned] of state.learned) {
      if (learned.resetAtMs <= nowMs) {
        state.learned.delete(key);
        continue;
      }
      const isTokens = key.startsWith("tokens");
      const left = learned.remaining - learned.spentSince;
      if (left < (isTokens ? Math.max(1, cost.tokens) : (cost.requests ?? 1))) {
        denied = laterDenial(denied, {
          isAllowed: false,
          scopeId: scope.id,
          reason: `the provider reports ${Math.max(0, left)} ${isTokens ? "tokens" : "requests"} left this ${key.split(":")[1]}`,
          retryAtMs: learned.resetAtMs,
        });
      }
    }
    return denied;
  }

  #used(state: ScopeState, rule: BudgetRule, nowMs: number): { used: number; resetsAtMs: number | undefined } {
    const slidingMs = SLIDING_WINDOW_MS[rule.window];
    if (slidingMs !== undefined && rule.algorithm === "fixed") {
      const bounds = fixedWindowAt(slidingMs, rule.offsetMs ?? 0, nowMs);
      const counter = state.fixed.get(fixedKey(slidingMs, rule.offsetMs ?? 0));
      if (counter === undefined || counter.startMs !== bounds.startMs) return { used: 0, resetsAtMs: bounds.endMs };
      return { used: rule.unit === "requests" ? counter.requests : counter.tokens, resetsAtMs: counter.endMs };
    }
    if (slidingMs !== undefined && rule.algorithm === "bucket") {
      const level = state.buckets.get(bucketKey(rule));
      // A bucket's debt is fractional while it refills; what is shown and compared is whole requests/tokens.
      const used = level === undefined ? 0 : Math.ceil(bucketUsed(level, rule.limit, slidingMs, nowMs) - 1e-9);
      return { used, resetsAtMs: used === 0 ? undefined : nowMs + Math.ceil((used * slidingMs) / rule.limit) };
    }
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

  #retryAt(
    state: ScopeState,
    rule: BudgetRule,
    amount: number,
    nowMs: number,
    resetsAtMs: number | undefined,
    used: number,
  ): number {
    const slidingMs = SLIDING_WINDOW_MS[rule.window];
    if (slidingMs === undefined || rule.algorithm === "fixed") return resetsAtMs ?? nowMs + 60_000;
    if (rule.algorithm === "bucket") {
      const level = state.buckets.get(bucketKey(rule));
      const exactUsed = level === undefined ? used : bucketUsed(level, rule.limit, slidingMs, nowMs);
      return bucketRetryAtMs(exactUsed, amount, rule.limit, slidingMs, nowMs);
    }
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
        fixed: new Map(),
        buckets: new Map(),
        learnedRules: [],
        learnedConcurrency: this.#adoptedConcurrency.get(scope.id),
        learnedChangeAtMs: Number.POSITIVE_INFINITY,
        effective: undefined,
        sends: [],
        charges: [],
      };
      this.#adoptedConcurrency.delete(scope.id);
      this.#states.set(scope.id, state);
      if (this.#adoptedRules.size > 0) this.#mergeAdopted(scope, state, nowMs);
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
    if (nowMs >= state.learnedChangeAtMs) this.#updateInferred(scope, state, nowMs);
    if (this.#adoptedRules.size > 0) this.#mergeAdopted(scope, state, nowMs);
    return state;
  }

  /**
   * Drops the inferred limits whose lifetime is over (INFERRED_LIMIT_LIFETIME_MS) and moves the climbing ones up
   * by the steps that are due (RECOVERY_INTERVAL_MS).
   */
  #updateInferred(scope: BudgetScope, state: ScopeState, nowMs: number): void {
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
      const before = this.#rulesOf(scope, state);
      state.learnedRules = kept;
      state.effective = undefined;
      // A bucket is keyed by its limit: the climbed rule's starts from the recent sends, not empty.
      this.#seed(state, before, this.#rulesOf(scope, state), state.sends, nowMs);
      this.#dirty.add(scope.id);
    }
    state.learnedChangeAtMs = nextInferredChangeAtMs(state.learnedRules);
  }

  /** The scope's configured rules plus the limits learned for it (a configured unit and window wins). */
  #rulesOf(scope: BudgetScope, state: ScopeState): readonly BudgetRule[] {
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

  /**
   * A 429 says where the provider's own count is: the refused request is not in it (a bucket gives no token for
   * it, a fixed window does not count it), and a bucket is full until the provider's retry hint. Counters that
   * drifted from the provider's are set back, so pacing neither falls one request behind per 429 nor stays ahead.
   */
  #resync(state: ScopeState, rules: readonly BudgetRule[], refusal: RefusalFacts, nowMs: number): void {
    const givenBack = new Set<FixedWindowCounter>();
    for (const rule of rules) {
      const windowMs = SLIDING_WINDOW_MS[rule.window];
      if (windowMs === undefined || rule.unit !== "requests") continue;
      if (rule.algorithm === "fixed") {
        const counter = state.fixed.get(fixedKey(windowMs, rule.offsetMs ?? 0));
        if (counter === undefined || givenBack.has(counter) || refusal.sentAtMs < counter.startMs) continue;
        counter.requests = Math.max(0, counter.requests - 1);
        givenBack.add(counter);
      } else if (rule.algorithm === "bucket") {
        const level = state.buckets.get(bucketKey(rule));
        if (level === undefined) continue;
        let used = Math.max(0, bucketUsed(level, rule.limit, windowMs, nowMs) - 1);
        const hint = refusal.hintDelayMs;
        if (hint !== undefined && hint <= windowMs)
          used = Math.max(used, rule.limit - 1 + (hint * rule.limit) / windowMs);
        state.buckets.set(bucketKey(rule), { used, atMs: nowMs });
      }
    }
  }

  /**
   * A newly learned window starts with what the provider accepted in it (the last minute's sends), so pacing holds
   * from the first check: without this, a per-second limit learned at a 429 would admit a request at once.
   */
  #seed(
    state: ScopeState,
    before: readonly BudgetRule[],
    after: readonly BudgetRule[],
    accepted: readonly number[],
    nowMs: number,
  ): void {
    const hadSliding = new Set(slidingWindowsOf(before));
    for (const windowMs of slidingWindowsOf(after)) {
      if (hadSliding.has(windowMs)) continue;
      const window = slidingWindow(state, windowMs);
      for (const atMs of accepted) window.charge(atMs, 0, nowMs);
    }
    // Counters that already exist (shared with another rule of the same window) already count these sends.
    const newCounters = after.filter((rule) => {
      const windowMs = SLIDING_WINDOW_MS[rule.window];
      if (before.includes(rule) || windowMs === undefined || rule.algorithm === undefined) return false;
      if (rule.algorithm === "bucket") return !state.buckets.has(bucketKey(rule));
      return !state.fixed.has(fixedKey(windowMs, rule.offsetMs ?? 0));
    });
    if (newCounters.length === 0) return;
    // A replay of sends: nothing reconciles or releases them, so what they were charged to is not kept.
    for (const atMs of accepted) chargeCounters(undefined, state, newCounters, 0, atMs);
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

/**
 * Charges the fixed windows (once per window length and alignment) and buckets (per rule) of a scope; returns what
 * a reservation was charged to so far (`charged`, created at its first counter; undefined while it has none).
 */
function chargeCounters(
  charged: ChargedCounters | undefined,
  state: ScopeState,
  rules: readonly BudgetRule[],
  tokens: number,
  nowMs: number,
  requests = 1,
): ChargedCounters | undefined {
  for (const rule of rules) {
    const windowMs = SLIDING_WINDOW_MS[rule.window];
    if (windowMs === undefined || rule.algorithm === undefined || rule.algorithm === "sliding") continue;
    charged ??= { fixed: [], buckets: [], requestBuckets: [] };
    if (rule.algorithm === "fixed") {
      const key = fixedKey(windowMs, rule.offsetMs ?? 0);
      const bounds = fixedWindowAt(windowMs, rule.offsetMs ?? 0, nowMs);
      let counter = state.fixed.get(key);
      if (counter === undefined || counter.startMs !== bounds.startMs) {
        counter = { ...bounds, requests: 0, tokens: 0 };
        state.fixed.set(key, counter);
      }
      if (charged.fixed.includes(counter)) continue;
      counter.requests += requests;
      counter.tokens += tokens;
      charged.fixed.push(counter);
      continue;
    }
    const key = bucketKey(rule);
    const previous = state.buckets.get(key);
    const used = previous === undefined ? 0 : bucketUsed(previous, rule.limit, windowMs, nowMs);
    const level = { used: used + (rule.unit === "requests" ? requests : tokens), atMs: nowMs };
    state.buckets.set(key, level);
    (rule.unit === "tokens" ? charged.buckets : charged.requestBuckets).push({ levels: state.buckets, key });
  }
  return charged;
}

/** A learned limit with how the provider counts its window (from its `limits.window`; absent: sliding). */
type CountedRule = LearnedRule & { readonly algorithm?: WindowAlgorithm; readonly offsetMs?: number };

/** What a scope was charged after a report's request (BudgetBook #chargedAfter). */
interface ChargedAfter {
  readonly anchor: ReportAnchor | undefined;
  readonly requests: number;
  readonly tokens: number;
  /** The newest reservation id the report counts. */
  readonly asOfId: number;
}

/** A sliding-window run a reservation was charged to, and its window. */
interface ChargedRun {
  readonly window: SlidingWindow;
  readonly run: SlidingRun;
}

/** What a reservation was charged to (BudgetBook #chargedTo). */
interface ChargedTo {
  readonly states: readonly ScopeState[];
  readonly runs: ChargedRun[] | undefined;
  readonly counters: ChargedCounters | undefined;
}

/** What a reservation charged besides sliding windows: fixed windows' counters, and token buckets (by key). */
interface ChargedCounters {
  fixed: FixedWindowCounter[];
  /** Token buckets (a reconcile moves them). */
  buckets: { readonly levels: Map<string, BucketLevel>; readonly key: string }[];
  /** Request buckets (calls never sent are given back to them: releaseUnsentCalls). */
  requestBuckets: { readonly levels: Map<string, BucketLevel>; readonly key: string }[];
}

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

/** Version 1 (before sliding windows held runs): one [atMs, tokens] log entry per request, for every window. */
export interface LegacyPersistedScope {
  readonly log: readonly (readonly [number, number])[];
  readonly day: FixedCounter;
  readonly month: FixedCounter;
  readonly learned: readonly (readonly [string, LearnedState])[];
}

const ALLOWED: BudgetVerdict = Object.freeze({ isAllowed: true });

/**
 * Of two refusals of one request, the one that binds: the later retry time (a never-fit, Infinity, beats any),
 * the earlier found on a tie. The request needs every budget, so the earlier time would only meet the other one.
 */
export function laterDenial(denied: Denied | undefined, refusal: Denied): Denied {
  return denied === undefined || refusal.retryAtMs > denied.retryAtMs ? refusal : denied;
}

/** The config key of a rule (`rpm`, `tokens_per_month`), so a denial names what the user wrote. */
export function ruleName(rule: BudgetRule): string {
  if (rule.measure === "audio_seconds") return `as${rule.window[0]}`;
  if (rule.window === "month") return `${rule.unit}_per_month`;
  return `${rule.unit === "requests" ? "r" : "t"}p${rule.window[0]}`;
}

/** Why a rule refuses a request: names the config key, or says the limit was learned and from what. */
export function denialReason(rule: BudgetRule, used: number, amount: number): string {
  // A request of several upstream calls (BudgetCost.requests) says how many it needs, as a large prompt does.
  const needs =
    rule.measure === "audio_seconds"
      ? ` audio seconds, needs ${amount}`
      : rule.unit === "tokens"
        ? ` tokens, needs ${amount}`
        : amount > 1
          ? `, needs ${amount}`
          : "";
  const counts = `${used}/${rule.limit}${needs}`;
  if (rule.learnedFrom !== undefined)
    return `over its learned ${ruleName(rule)} limit (${counts}; ${rule.learnedFrom})`;
  return `over its ${ruleName(rule)} budget (${counts})`;
}

/** How a rule's window counts. */
export function algorithmOf(rule: BudgetRule): WindowAlgorithm {
  if (SLIDING_WINDOW_MS[rule.window] === undefined) return "fixed";
  return rule.algorithm ?? "sliding";
}

/** Whether nothing in a scope counts against a request at `nowMs` any more (see pruneUnconfigured). */
function isSpent(state: ScopeState, nowMs: number): boolean {
  for (const window of state.sliding.values()) {
    window.expire(nowMs);
    if (window.requests > 0 || window.tokens > 0) return false;
  }
  const isCounting = (counter: { requests: number; tokens: number }, endMs: number): boolean =>
    endMs > nowMs && (counter.requests > 0 || counter.tokens > 0);
  if (isCounting(state.day, state.day.windowEndMs) || isCounting(state.month, state.month.windowEndMs)) return false;
  for (const counter of state.fixed.values()) if (isCounting(counter, counter.endMs)) return false;
  for (const [key, level] of state.buckets) {
    // key `unit:window:limit`; a debt above the limit (a reconcile past the estimate) takes several windows.
    const [, window, limitText] = key.split(":");
    const windowMs = SLIDING_WINDOW_MS[window as BudgetWindow] ?? Number.POSITIVE_INFINITY;
    const windows = Math.max(1, Math.ceil(level.used / Math.max(1, Number(limitText) || 1)));
    if (level.used > 0 && level.atMs + windowMs * windows > nowMs) return false;
  }
  for (const learned of state.learned.values()) if (learned.resetAtMs > nowMs) return false;
  return true;
}

function bucketKey(rule: BudgetRule): string {
  return `${rule.unit}:${rule.window}:${rule.limit}`;
}

/**
 * Keeps recent send times, bounded: the spacing a 429 is judged by (readers filter by time). Trimmed to the newest
 * half when full, so a send costs O(1) amortised; at more than 128 requests a minute the minute count a 429 sees is
 * therefore low, which only makes a learned per-minute limit stricter.
 */
const MAX_RECENT_SENDS = 256;
function recordSend(state: ScopeState, nowMs: number): void {
  state.sends.push(nowMs);
  if (state.sends.length > MAX_RECENT_SENDS) state.sends.splice(0, state.sends.length - MAX_RECENT_SENDS / 2);
}

/** Keeps the latest reservations of a scope, bounded as `recordSend` is (O(1) amortised per charge). */
function recordCharge(state: ScopeState, reservation: Reservation): void {
  state.charges.push(reservation.id, reservation.atMs, reservation.tokens);
  if (state.charges.length > MAX_RECENT_SENDS * CHARGE_FIELDS) {
    state.charges.splice(0, state.charges.length - (MAX_RECENT_SENDS / 2) * CHARGE_FIELDS);
  }
}

/**
 * A provider's token report counts what we sent after it as the estimates charged then (`spentSince`, and the
 * recent charges a later report is placed among): the real count replaces the estimate there too, or a report
 * would keep an answer's unused `max_tokens` as spent until the next report and admit less than the provider would.
 * Only a report taken before the reservation (its `asOfId` older) lacks it; a later one already counts it.
 */
function reconcileReported(state: ScopeState, reservation: Reservation, delta: number): void {
  const charges = state.charges;
  // Ids grow along the list, and an answer is reconciled soon after its charge: the search ends near the tail.
  for (let index = charges.length - CHARGE_FIELDS; index >= 0; index -= CHARGE_FIELDS) {
    const id = charges[index] as number;
    if (id < reservation.id) break;
    if (id === reservation.id) {
      charges[index + 2] = Math.max(0, (charges[index + 2] as number) + delta);
      break;
    }
  }
  for (const [key, learned] of state.learned) {
    if (!key.startsWith("tokens") || (learned.asOfId ?? 0) >= reservation.id) continue;
    learned.spentSince = Math.max(0, learned.spentSince + delta);
  }
}

/** `id, atMs, tokens` per charge in ScopeState.charges. */
const CHARGE_FIELDS = 3;

/** The latest a window without a reset header can end: a full sliding window from now, or the wall-clock end. */
export function assumedResetAtMs(scope: BudgetScope, window: BudgetWindow, nowMs: number): number {
  const slidingMs = SLIDING_WINDOW_MS[window];
  if (slidingMs !== undefined) return nowMs + slidingMs;
  return (window === "day" ? dayWindow(scope.dayReset, nowMs) : monthWindow(scope.dayReset, nowMs)).endMs;
}

const slidingWindowsCache = new WeakMap<readonly BudgetRule[], readonly number[]>();

/** The distinct sliding window lengths (ms) some rules use (fixed windows and buckets are counted apart). */
function slidingWindowsOf(rules: readonly BudgetRule[]): readonly number[] {
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
export { UTC_MIDNIGHT };

/** When an inferred learned limit lapses; Infinity for a stated one (or one stored before lifetimes existed). */
function inferredLapseAtMs(rule: BudgetRule): number {
  const lifetimeMs = INFERRED_LIMIT_LIFETIME_MS[rule.window];
  if (rule.isOwnEvidence !== true || rule.learnedAtMs === undefined || lifetimeMs === undefined) {
    return Number.POSITIVE_INFINITY;
  }
  return rule.learnedAtMs + lifetimeMs;
}

/** When the first inferred limit lapses or climbs a step. */
function nextInferredChangeAtMs(rules: readonly BudgetRule[]): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const rule of rules) {
    earliest = Math.min(earliest, inferredLapseAtMs(rule), rule.recovery?.nextStepAtMs ?? Number.POSITIVE_INFINITY);
  }
  return earliest;
}

/**
 * The climb an inferred limit starts, goes on with, or ends, when a 429 teaches `learned` where `known` was in
 * force: a lower limit climbs back toward the highest one inferred before; a limit at or above that one is no
 * longer climbing.
 */
function recoveryAfter(known: BudgetRule | undefined, learned: LearnedRule, nowMs: number): LimitRecovery | undefined {
  const baseMs = RECOVERY_INTERVAL_MS[learned.window];
  if (known === undefined || known.isOwnEvidence !== true || baseMs === undefined) return undefined;
  const ceiling = Math.max(known.recovery?.ceiling ?? known.limit, known.limit);
  if (learned.limit >= ceiling) return undefined;
  if (learned.limit > known.limit) return known.recovery;
  // Lowered: while already climbing, the next climb waits twice as long.
  const intervalMs =
    known.recovery === undefined ? baseMs : Math.min(known.recovery.intervalMs * 2, baseMs * RECOVERY_MAX_INTERVALS);
  return { ceiling, nextStepAtMs: nowMs + intervalMs, intervalMs, loweredAtMs: nowMs };
}

/**
 * A lower reading that does not lower a climbing limit: one within the climb's interval of the last lowering. Paced
 * at a limit L, a 429 reads at most L - 1, so refusals that do not follow our rate (3 % of answers at random, in
 * bench/soak.ts) would otherwise take the limit down one by one, faster than it climbs; a key whose share shrank
 * is lowered to it by the first 429, and a climb step above it is lowered again by the next.
 */
function isHeldLow(known: BudgetRule, learned: LearnedRule, nowMs: number): boolean {
  const recovery = known.recovery;
  return (
    recovery !== undefined &&
    learned.isOwnEvidence === true &&
    learned.limit < known.limit &&
    nowMs - recovery.loweredAtMs < recovery.intervalMs
  );
}

/** `rule` after the climbing steps due by `nowMs` (itself when none is). */
function climbedRule(rule: BudgetRule, nowMs: number): BudgetRule {
  const recovery = rule.recovery;
  if (recovery === undefined || recovery.nextStepAtMs > nowMs) return rule;
  const stepSize = Math.max(1, Math.ceil(recovery.ceiling * RECOVERY_STEP));
  const baseMs = RECOVERY_INTERVAL_MS[rule.window] ?? recovery.intervalMs;
  let { nextStepAtMs, intervalMs } = recovery;
  let limit = rule.limit;
  // At most 1 / RECOVERY_STEP steps: each adds at least a tenth of the ceiling.
  while (nextStepAtMs <= nowMs && limit < recovery.ceiling) {
    limit = Math.min(recovery.ceiling, limit + stepSize);
    // A step after the first one since the last lowering: the step before it held for a whole interval, so the
    // other client of the key has likely gone; the climb speeds up again (halving what lowerings doubled).
    if (nextStepAtMs - recovery.loweredAtMs > intervalMs) intervalMs = Math.max(baseMs, intervalMs / 2);
    nextStepAtMs += intervalMs;
  }
  const { recovery: _climbed, ...rest } = rule;
  if (limit >= recovery.ceiling) return { ...rest, limit: recovery.ceiling };
  return { ...rest, limit, recovery: { ...recovery, nextStepAtMs, intervalMs } };
}
