// The provider's `max_in_flight` slots attempts take (limits/in-flight-gate.ts): an attempt's own, waited for, and one
// more per parallel call of an attempt that makes several (a Llama Guard moderation's, upstream/moderation-attempt.ts),
// without waiting, unless the budgets count the deployment's requests in flight.
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

/** A parallel call's slot, now or never. */
export function anotherSlotOf(
  inFlight: InFlightGates,
  budgets: BudgetLedger,
  clock: Clock,
  scopesOf: (deployment: Deployment) => readonly BudgetScope[],
): NonNullable<FailoverServices["anotherSlot"]> {
  return (deployment: Deployment, signal: AbortSignal): ReleaseSlot | undefined => {
    // A concurrency the budgets count (configured, or learned from a provider's 429) counts an attempt's reservation
    // as one request in flight: its calls go one at a time, never more in flight than the limit.
    const nowMs = clock.now();
    const isCountedInFlight = scopesOf(deployment).some(
      (scope) => scope.concurrency !== undefined || budgets.learnedConcurrency(scope.id, nowMs) !== undefined,
    );
    if (isCountedInFlight) return undefined;
    const settings = deployment.provider.settings;
    // No wait: a request waiting for a slot gets the next one; the attempt goes on with the slots it has.
    const slot = inFlight.acquire(settings.name, settings.maxInFlight, 0, signal);
    return slot instanceof Promise ? undefined : slot;
  };
}
