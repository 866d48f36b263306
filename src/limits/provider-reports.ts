// A provider's own counter in a scope ("N remaining until T", from its rate-limit headers): stored as of the request
// whose answer carried it, with what we sent after that request subtracted (ScopeState.learned).
import type { BudgetScope, BudgetWindow, Reservation } from "./budget-types.ts";
import { dayWindow, monthWindow } from "./day-window.ts";
import type { LearnedWindow, ReportAnchor } from "./rate-limit-headers.ts";
import { CHARGE_FIELDS, type ScopeState, SLIDING_WINDOW_MS } from "./scope-state.ts";

/** What a scope was charged after a report's request (chargedAfter). */
interface ChargedAfter {
  readonly anchor: ReportAnchor | undefined;
  readonly requests: number;
  readonly tokens: number;
  /** The newest reservation id the report counts. */
  readonly asOfId: number;
}

/**
 * Stores what the provider's rate-limit headers said about a scope (BudgetBook.learn). `newestId` is the newest
 * reservation id the book has given: a report without an anchor counts every one.
 */
export function learnReports(
  scope: BudgetScope,
  state: ScopeState,
  windows: readonly LearnedWindow[],
  newestId: number,
  nowMs: number,
): void {
  let after: ChargedAfter | undefined;
  for (const window of windows) {
    if (window.remaining === undefined) continue;
    // Mistral (and Together for tokens) send no reset time: assume the window's longest possible wait, so a
    // "0 left" still keeps us away, but never longer than the window itself.
    const resetAtMs = window.resetAtMs ?? assumedResetAtMs(scope, window.window, nowMs);
    if (resetAtMs <= nowMs) continue;
    if (after === undefined || after.anchor !== window.asOf) after = chargedAfter(state, window.asOf, newestId);
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
}

/**
 * What the scope was charged after `anchor` (the reservation whose answer carried a report), from its recent
 * charges, newest first: bounded (MAX_RECENT_SENDS), and in practice only the requests sent while the anchor's
 * answer was on its way. An anchor not in this book (a shared ledger's own reservation, mirrored here under
 * another object) is placed by its send time: charges in the same millisecond count as before it.
 */
function chargedAfter(state: ScopeState, anchor: ReportAnchor | undefined, newestId: number): ChargedAfter {
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

/** The latest a window without a reset header can end: a full sliding window from now, or the wall-clock end. */
export function assumedResetAtMs(scope: BudgetScope, window: BudgetWindow, nowMs: number): number {
  const slidingMs = SLIDING_WINDOW_MS[window];
  if (slidingMs !== undefined) return nowMs + slidingMs;
  return (window === "day" ? dayWindow(scope.dayReset, nowMs) : monthWindow(scope.dayReset, nowMs)).endMs;
}

/** A charge made after every report in force: each counts it as sent since. */
export function spendSinceReports(state: ScopeState, tokens: number, requests: number): void {
  for (const [key, learned] of state.learned) {
    learned.spentSince += key.startsWith("tokens") ? tokens : requests;
  }
}

/** Calls never sent: a request report taken before the reservation no longer counts them as sent since. */
export function giveBackReported(state: ScopeState, reservation: Reservation, unsent: number): void {
  for (const [key, learned] of state.learned) {
    if (key.startsWith("tokens") || (learned.asOfId ?? 0) >= reservation.id) continue;
    learned.spentSince = Math.max(0, learned.spentSince - unsent);
  }
}

/**
 * A provider's token report counts what we sent after it as the estimates charged then (`spentSince`, and the
 * recent charges a later report is placed among): the real count replaces the estimate there too, or a report
 * would keep an answer's unused `max_tokens` as spent until the next report and admit less than the provider would.
 * Only a report taken before the reservation (its `asOfId` older) lacks it; a later one already counts it.
 */
export function reconcileReported(state: ScopeState, reservation: Reservation, delta: number): void {
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
