// A scope's windows by kind (sliding, fixed, bucket; day and month counters): what a rule has used, when a refused
// amount fits, charging the fixed windows and buckets, setting them back to the provider's count after a 429, and
// seeding a newly learned window with the sends the provider accepted.
import type { BudgetRule, BudgetWindow } from "./budget-types.ts";
import type { RefusalFacts } from "./limit-learning.ts";
import { bucketKey, type ScopeState, SLIDING_WINDOW_MS, slidingWindow, slidingWindowsOf } from "./scope-state.ts";
import {
  type BucketLevel,
  bucketRetryAtMs,
  bucketUsed,
  type FixedWindowCounter,
  fixedKey,
  fixedWindowAt,
  type WindowAlgorithm,
} from "./window-counters.ts";

/** What a reservation charged besides sliding windows: fixed windows' counters, and token buckets (by key). */
export interface ChargedCounters {
  fixed: FixedWindowCounter[];
  /** Token buckets (a reconcile moves them). */
  buckets: { readonly levels: Map<string, BucketLevel>; readonly key: string }[];
  /** Request buckets (calls never sent are given back to them: releaseUnsentCalls). */
  requestBuckets: { readonly levels: Map<string, BucketLevel>; readonly key: string }[];
}

/** How a rule's window counts. */
export function algorithmOf(rule: BudgetRule): WindowAlgorithm {
  if (SLIDING_WINDOW_MS[rule.window] === undefined) return "fixed";
  return rule.algorithm ?? "sliding";
}

/** What a rule's window has counted at `nowMs` (the sliding windows already expired to it), and when it frees. */
export function usedOf(
  state: ScopeState,
  rule: BudgetRule,
  nowMs: number,
): { used: number; resetsAtMs: number | undefined } {
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
    // The scope's state was expired up to now when it was read (rollWindows).
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

/** When `amount` fits under a rule that refuses it now (`used` and `resetsAtMs` from usedOf). */
export function retryAtOf(
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

/**
 * Charges the fixed windows (once per window length and alignment) and buckets (per rule) of a scope; returns what
 * a reservation was charged to so far (`charged`, created at its first counter; undefined while it has none).
 */
export function chargeCounters(
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

/**
 * A 429 says where the provider's own count is: the refused request is not in it (a bucket gives no token for
 * it, a fixed window does not count it), and a bucket is full until the provider's retry hint. Counters that
 * drifted from the provider's are set back, so pacing neither falls one request behind per 429 nor stays ahead.
 */
export function resyncCounters(
  state: ScopeState,
  rules: readonly BudgetRule[],
  refusal: RefusalFacts,
  nowMs: number,
): void {
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
export function seedWindows(
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

/** Whether nothing in a scope counts against a request at `nowMs` any more (see pruneUnconfigured). */
export function isSpent(state: ScopeState, nowMs: number): boolean {
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
