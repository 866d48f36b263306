// What a reservation charged in each of its scopes, and how its later news moves exactly that: its send time
// (markSent), its real token count (reconcile), its calls never sent (releaseUnsentCalls).
import type { BudgetRule, Reservation } from "./budget-types.ts";
import { giveBackReported, reconcileReported, spendSinceReports } from "./provider-reports.ts";
import { recordCharge, recordSend, type ScopeState, slidingWindow, slidingWindowsOf } from "./scope-state.ts";
import { type ChargedCounters, chargeCounters } from "./scope-windows.ts";
import type { SlidingRun, SlidingWindow } from "./sliding-window.ts";

/** A sliding-window run a reservation was charged to, and its window. */
interface ChargedRun {
  readonly window: SlidingWindow;
  readonly run: SlidingRun;
}

/**
 * What a reservation was charged to (BudgetBook's `chargedTo`): the scope states, in the order of its scopes; the
 * sliding-window runs, so a reconcile moves exactly its own tokens; the fixed-window counters and token buckets.
 */
export interface ChargedTo {
  readonly states: ScopeState[];
  runs: ChargedRun[] | undefined;
  counters: ChargedCounters | undefined;
}

/** Charges a reservation (its `tokens` and `requests` calls) to one of its scopes' states, into `charged`. */
export function chargeScope(
  charged: ChargedTo,
  state: ScopeState,
  rules: readonly BudgetRule[],
  reservation: Reservation,
  requests: number,
  nowMs: number,
): void {
  const tokens = reservation.tokens;
  charged.states.push(state);
  charged.counters = chargeCounters(charged.counters, state, rules, tokens, nowMs, requests);
  // Tokens alone (BudgetCost.isTokensOnly) are no send, and hold no slot.
  const isRequest = reservation.isTokensOnly !== true;
  if (isRequest) recordSend(state, nowMs);
  recordCharge(state, reservation);
  for (const windowMs of slidingWindowsOf(rules)) {
    const window = slidingWindow(state, windowMs);
    const run = window.charge(nowMs, tokens, nowMs, requests);
    if (run === undefined) continue;
    charged.runs ??= [];
    charged.runs.push({ window, run });
  }
  state.day.requests += requests;
  state.day.tokens += tokens;
  state.month.requests += requests;
  state.month.tokens += tokens;
  spendSinceReports(state, tokens, requests);
  if (isRequest) state.inFlight += 1;
}

/** Moves a reservation's sliding-window runs to its send time `atMs` (later than it was reserved). */
export function retimeRuns(runs: ChargedRun[], reservation: Reservation, atMs: number): void {
  for (let index = 0; index < runs.length; index++) {
    const charged = runs[index] as ChargedRun;
    const run = charged.window.retime(charged.run, reservation.tokens, atMs, atMs, reservation.requests);
    if (run !== charged.run) {
      if (run === undefined) runs.splice(index--, 1);
      else runs[index] = { window: charged.window, run };
    }
  }
}

/** Moves the tokens a reservation charged to its runs, fixed windows and token buckets by `delta`. */
export function reconcileCharged(charged: ChargedTo | undefined, delta: number): void {
  for (const { window, run } of charged?.runs ?? []) window.adjust(run, delta);
  const counters = charged?.counters;
  if (counters === undefined) return;
  for (const counter of counters.fixed) counter.tokens = Math.max(0, counter.tokens + delta);
  // The bucket's debt now (a later charge replaced the level it had then): tokens not used are back at once.
  for (const { levels, key } of counters.buckets) {
    const level = levels.get(key);
    if (level !== undefined) level.used = Math.max(0, level.used + delta);
  }
}

/** Moves a reservation's tokens by `delta` in a state it was charged to: its day and month, the provider's reports. */
export function reconcileState(state: ScopeState, reservation: Reservation, delta: number): void {
  if (state.day.windowStartMs <= reservation.atMs) state.day.tokens = Math.max(0, state.day.tokens + delta);
  if (state.month.windowStartMs <= reservation.atMs) state.month.tokens = Math.max(0, state.month.tokens + delta);
  reconcileReported(state, reservation, delta);
}

/** Gives back `unsent` requests to the runs, fixed windows and request buckets a reservation charged. */
export function giveBackCharged(charged: ChargedTo | undefined, unsent: number): void {
  for (const { window, run } of charged?.runs ?? []) window.adjust(run, 0, -unsent);
  const counters = charged?.counters;
  if (counters === undefined) return;
  for (const counter of counters.fixed) counter.requests = Math.max(0, counter.requests - unsent);
  for (const { levels, key } of counters.requestBuckets) {
    const level = levels.get(key);
    if (level !== undefined) level.used = Math.max(0, level.used - unsent);
  }
}

/**
 * Gives back `unsent` requests in a state a reservation was charged to: its day and month (those still the ones it
 * was charged in), and what a provider's report counts as sent since it (a report taken before the reservation).
 */
export function giveBackState(state: ScopeState, reservation: Reservation, unsent: number): void {
  if (state.day.windowStartMs <= reservation.atMs) state.day.requests = Math.max(0, state.day.requests - unsent);
  if (state.month.windowStartMs <= reservation.atMs) {
    state.month.requests = Math.max(0, state.month.requests - unsent);
  }
  giveBackReported(state, reservation, unsent);
}
