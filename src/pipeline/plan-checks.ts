// The two limit checks a plan asks of the live books (router/route-types.ts `budgetCheck`, `coolingPool`), built
// from the books themselves so that the runtime only wires them in.
import { type AvailabilityBook, isLimitCause } from "../limits/availability.ts";
import type { BudgetLedger, BudgetScope } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RouterContext } from "../router/route-types.ts";
import { POOL_SCOPE_PREFIX } from "./snapshot.ts";

/**
 * Would the request's estimated tokens (its prompt as this deployment counts it, plus `max_tokens` where the
 * provider counts those) fit every budget of the deployment now? `pool`: the account-wide scope that is empty.
 */
export function budgetCheckOf(
  budgets: BudgetLedger,
  promptCalibration: PromptCalibration,
  /** Each deployment's budget scopes, by its index (the snapshot's). */
  budgetScopes: readonly (readonly BudgetScope[] | undefined)[],
  request: { readonly promptTokens?: number | undefined; readonly maxOutputTokens?: number | undefined },
  nowMs: number,
): NonNullable<RouterContext["budgetCheck"]> {
  return (deployment) => {
    const prompt = promptCalibration.promptTokensFor(deployment, request.promptTokens ?? 0);
    const tokens = prompt + (deployment.provider.settings.countMaxTokens ? (request.maxOutputTokens ?? 0) : 0);
    const verdict = budgets.check(budgetScopes[deployment.index] ?? [], { tokens }, nowMs);
    if (verdict.isAllowed) return undefined;
    const pool = verdict.scopeId.startsWith(POOL_SCOPE_PREFIX) ? verdict.scopeId : undefined;
    return { reason: verdict.reason, untilMs: verdict.retryAtMs, pool };
  };
}

/** The provider's pool a cooling deployment is skipped with, when its key's account-wide cooldown is a limit. */
export function coolingPoolOf(availability: AvailabilityBook): NonNullable<RouterContext["coolingPool"]> {
  return (deployment) => {
    const name = deployment.provider.settings.name;
    const pooled = availability.providerCooldown(name);
    return pooled !== undefined && isLimitCause(pooled.cause) ? `${POOL_SCOPE_PREFIX}${name}` : undefined;
  };
}
