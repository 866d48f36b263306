// PURE: how long until the first candidate of a plan can be tried again (the `retry-after` of a 429, and how long
// a queued request sleeps before it looks again).
import type { Availability } from "../limits/availability.ts";
import { isNeverFit } from "../limits/budget-types.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RoutePlan } from "./plan-route.ts";

export function soonestAvailableMs(
  plan: RoutePlan,
  nowMs: number,
  availabilityOf: (deployment: Deployment) => Availability,
): number | undefined {
  let soonest: number | undefined;
  // A candidate over budget is free of cooldowns but still unusable until its budget frees (`budgetUntilMs`).
  const consider = (deployment: Deployment, budgetUntilMs = nowMs): void => {
    const availability = availabilityOf(deployment);
    const untilMs = Math.max(availability.isAvailable ? nowMs : availability.untilMs, budgetUntilMs);
    // A request larger than a whole budget never fits there: no point in telling the client to come back.
    if (isNeverFit(untilMs)) return;
    const waitMs = Math.max(0, untilMs - nowMs);
    if (soonest === undefined || waitMs < soonest) soonest = waitMs;
  };
  for (const candidate of plan.candidates) consider(candidate.deployment);
  for (const skip of plan.skipped) {
    if (skip.cause === "cooldown") consider(skip.deployment);
    else if (skip.cause === "budget") consider(skip.deployment, skip.untilMs ?? nowMs);
  }
  if (plan.waitFor !== undefined) consider(plan.waitFor.deployment);
  return soonest;
}
