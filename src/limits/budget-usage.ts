// A scope's per-window usage as /health and /stats show it: every rule (configured or learned) and every provider
// report in force.
import type { BudgetScope, BudgetUnit, BudgetWindow, WindowUsage } from "./budget-types.ts";
import { inferredLapseAtMs } from "./inferred-limits.ts";
import { rulesOf, type ScopeState } from "./scope-state.ts";
import { algorithmOf, usedOf } from "./scope-windows.ts";

/** `state`: the scope's state rolled to `nowMs`. */
export function windowUsage(scope: BudgetScope, state: ScopeState, nowMs: number): WindowUsage[] {
  const result: WindowUsage[] = [];
  for (const rule of rulesOf(scope, state)) {
    const { used, resetsAtMs } = usedOf(state, rule, nowMs);
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
      ...(learned.limit === undefined ? { isLimitUnknown: true } : {}),
    });
  }
  return result;
}
