// PURE: how long until the first candidate of a plan can be tried again (the `retry-after` of a 429, and how long
// a queued request sleeps before it looks again).
import type { Availability } from "../limits/availability.ts";
import { isNeverFit, SLOT_RETRY_ADVICE_MS } from "../limits/budget-types.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RoutePlan, RouterContext } from "./plan-route.ts";

/**
 * `budgetCheck`: the request's budget check now (route-types.ts), for the plan's candidates and the one it waited
 * for; the plan's skips carry their own times. Without it only their cooldowns count. `isClientAdvice`: the wait is a
 * client's `retry-after`, so a candidate whose full concurrency slot alone binds (its time is when the gateway looks
 * again, not when a slot frees) counts SLOT_RETRY_ADVICE_MS; the queue's own look again keeps the slot's time.
 */
export function soonestAvailableMs(
  plan: RoutePlan,
  nowMs: number,
  availabilityOf: (deployment: Deployment) => Availability,
  budgetCheck?: RouterContext["budgetCheck"],
  isClientAdvice = false,
): number | undefined {
  const slotWaitMs = isClientAdvice ? SLOT_RETRY_ADVICE_MS : 0;
  let soonest: number | undefined;
  const timeOf = (budget: { readonly untilMs?: number | undefined; readonly isSlot?: true } | undefined): number => {
    const untilMs = budget?.untilMs ?? nowMs;
    return budget?.isSlot === true ? Math.max(untilMs, nowMs + slotWaitMs) : untilMs;
  };
  // A candidate is usable once its cooldown is over and every budget it needs has room, so the later of the two
  // counts: `budgetUntilMs`, the budget's time, the plan's for a skip (its `untilMs`, for a cooling one the later
  // of both already), else asked now. A plan's time never shortens a cooldown read now that has grown since.
  const consider = (deployment: Deployment, budgetUntilMs = timeOf(budgetCheck?.(deployment))): void => {
    const availability = availabilityOf(deployment);
    const untilMs = Math.max(availability.isAvailable ? nowMs : availability.untilMs, budgetUntilMs);
    // A request larger than a whole budget never fits there: no point in telling the client to come back.
    if (isNeverFit(untilMs)) return;
    const waitMs = Math.max(0, untilMs - nowMs);
    if (soonest === undefined || waitMs < soonest) soonest = waitMs;
  };
  for (const candidate of plan.candidates) consider(candidate.deployment);
  for (const skip of plan.skipped) {
    if (skip.cause === "cooldown" || skip.cause === "budget") consider(skip.deployment, timeOf(skip));
  }
  if (plan.waitFor !== undefined) {
    consider(plan.waitFor.deployment, Math.max(plan.waitFor.untilMs, timeOf(budgetCheck?.(plan.waitFor.deployment))));
  }
  return soonest;
}
