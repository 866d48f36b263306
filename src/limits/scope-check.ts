// Would a cost fit a scope's budgets now: its concurrency (configured and learned), every rule's window and the
// provider's reports, the binding refusal among them, and its wording.
import type { BudgetCost, BudgetRule, BudgetScope, BudgetVerdict, Denied } from "./budget-types.ts";
import { CONCURRENCY_RETRY_MS } from "./budget-types.ts";
import { unlapsedConcurrency } from "./inferred-limits.ts";
import { rulesOf, type ScopeState } from "./scope-state.ts";
import { retryAtOf, usedOf } from "./scope-windows.ts";

export const ALLOWED: BudgetVerdict = Object.freeze({ isAllowed: true });

/**
 * The later of `denied` (from the scopes checked before) and every refusal of this scope's budgets, `state` being
 * the scope's state rolled to `nowMs`.
 */
export function checkScope(
  scope: BudgetScope,
  state: ScopeState,
  cost: BudgetCost,
  nowMs: number,
  denied: Denied | undefined,
): Denied | undefined {
  // A charge of tokens alone takes no slot (BudgetCost.isTokensOnly): a full one does not refuse it.
  const isSlotTaken = cost.isTokensOnly !== true;
  if (isSlotTaken && scope.concurrency !== undefined && state.inFlight >= scope.concurrency) {
    denied = laterDenial(denied, {
      isAllowed: false,
      scopeId: scope.id,
      reason: `at its concurrency limit (${scope.concurrency} in flight)`,
      retryAtMs: nowMs + CONCURRENCY_RETRY_MS,
      isSlot: true,
    });
  }
  const learnedConcurrency =
    state.learnedConcurrency === undefined ? undefined : unlapsedConcurrency(state.learnedConcurrency, nowMs);
  if (isSlotTaken && learnedConcurrency !== undefined && state.inFlight >= learnedConcurrency.limit) {
    denied = laterDenial(denied, {
      isAllowed: false,
      scopeId: scope.id,
      reason: `at its learned concurrency limit (${learnedConcurrency.limit} in flight: ${learnedConcurrency.evidence})`,
      retryAtMs: nowMs + CONCURRENCY_RETRY_MS,
      isSlot: true,
    });
  }
  for (const rule of rulesOf(scope, state)) {
    const amount = rule.unit === "requests" ? requestsOf(cost) : cost.tokens;
    // No request counted, none refused: a request rule already over (a replay's late charge) holds tokens alone back.
    if (rule.unit === "requests" && amount === 0) continue;
    const { used, resetsAtMs } = usedOf(state, rule, nowMs);
    if (used + amount <= rule.limit) continue;
    // A single request larger than a whole token budget can never fit: no retry time (the final error turns it
    // into a 413 request_too_large when no candidate is left, final-error.ts).
    const retryAtMs =
      amount > rule.limit ? Number.POSITIVE_INFINITY : retryAtOf(state, rule, amount, nowMs, resetsAtMs, used);
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
    if (!isTokens && cost.isTokensOnly === true) continue;
    const left = learned.remaining - learned.spentSince;
    if (left < (isTokens ? Math.max(1, cost.tokens) : requestsOf(cost))) {
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

/** The requests a cost counts in the request rules: its upstream calls (one by default), none for tokens alone. */
export function requestsOf(cost: BudgetCost): number {
  return cost.isTokensOnly === true ? 0 : (cost.requests ?? 1);
}

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
