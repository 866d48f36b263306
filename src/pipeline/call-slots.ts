// The provider's `max_in_flight` slots attempts take (limits/in-flight-gate.ts): an attempt's own, waited for, and one
// more per parallel call of an attempt that makes several (a Llama Guard moderation's, upstream/moderation-attempt.ts),
// without waiting; such a call is one more request in flight for the budgets' concurrency too (configured or learned).
import type { Clock } from "../clock.ts";
import type { BudgetLedger, BudgetScope } from "../limits/budgets.ts";
import type { InFlightGates, ReleaseSlot } from "../limits/in-flight-gate.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { FailoverServices } from "../upstream/forward-types.ts";

/** An attempt's slot, waited for up to `maxWaitMs`. */
export function acquireSlotOf(inFlight: InFlightGates): FailoverServices["acquireSlot"] {
  return (deployment, maxWaitMs, signal) => {
    const settings = deployment.provider.settings;
    return inFlight.acquire(settings.name, settings.maxInFlight, maxWaitMs, signal);
  };
}

/**
 * A parallel call's slots, now or never: one of the provider's `max_in_flight`, and one request in flight in each of
 * the deployment's budget scopes (BudgetLedger.takeInFlight), whose `concurrency` counts the attempt's reservation
 * as one request and each such call as one more: never more in flight than the limit. Both or neither.
 */
export function anotherSlotOf(
  inFlight: InFlightGates,
  budgets: BudgetLedger,
  clock: Clock,
  scopesOf: (deployment: Deployment) => readonly BudgetScope[],
): NonNullable<FailoverServices["anotherSlot"]> {
  return (deployment: Deployment, signal: AbortSignal) => {
    const settings = deployment.provider.settings;
    // No wait: a request waiting for a slot gets the next one; the attempt goes on with the slots it has.
    const slot = inFlight.acquire(settings.name, settings.maxInFlight, 0, signal);
    if (slot === undefined || slot instanceof Promise) return undefined;
    const budgetSlot = budgets.takeInFlight(scopesOf(deployment), clock.now());
    if (budgetSlot instanceof Promise) return budgetSlot.then((taken) => bothOrNeither(slot, taken));
    return bothOrNeither(slot, budgetSlot);
  };
}

function bothOrNeither(slot: ReleaseSlot, budgetSlot: ReleaseSlot | undefined): ReleaseSlot | undefined {
  if (budgetSlot === undefined) {
    slot();
    return undefined;
  }
  return () => {
    budgetSlot();
    slot();
  };
}
