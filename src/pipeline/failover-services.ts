// The failover executor's services (upstream/forward-types.ts FailoverServices) for one config snapshot. Made once per
// snapshot, at its first forwarded request, not per request: every JSON request built the object and its seventeen
// closures again (bench/README.md section 44). What differs per request (a transcription's audio seconds, the
// budgets a retry-after counts) is the forwarded request, which the executor hands to `admit` and
// `soonestAvailableMs`.
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { BudgetLedger, BudgetScope } from "../limits/budgets.ts";
import type { InFlightGates } from "../limits/in-flight-gate.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { FailoverServices, ForwardRequest } from "../upstream/forward-types.ts";
import { audioChargeOf } from "./audio-seconds.ts";
import { acquireSlotOf, anotherSlotOf } from "./call-slots.ts";
import type { GatewaySecrets } from "./logged-secrets.ts";
import type { Recorder } from "./recorder.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/** What of the runtime the services call (gateway-runtime.ts GatewayRuntime): all of it lives as long as the runtime. */
export interface FailoverRuntime {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly inFlight: InFlightGates;
  readonly budgets: BudgetLedger;
  readonly promptCalibration: PromptCalibration;
  readonly refusedFeatures: RefusedFeatures;
  readonly recorder: Recorder;
  readonly secrets: GatewaySecrets;
  isServing(deployment: Deployment): boolean;
  scopesOf(deployment: Deployment, snapshot: GatewaySnapshot): readonly BudgetScope[];
  soonestAvailableMs(
    plan: RoutePlan,
    of: { readonly request: ForwardRequest; readonly snapshot: GatewaySnapshot },
  ): number | undefined;
}

/**
 * `snapshotOf`: the snapshot a deployment belongs to (a request planned on an older one may switch, forward);
 * `servingAs`: the deployment a candidate's name points at now (changed-upstreams.ts).
 */
export function failoverServicesOf(
  runtime: FailoverRuntime,
  snapshot: GatewaySnapshot,
  snapshotOf: (deployment: Deployment) => GatewaySnapshot | undefined,
  servingAs: (deployment: Deployment) => Deployment | undefined,
): FailoverServices {
  const { clock, recorder, refusedFeatures } = runtime;
  const owningSnapshot = (deployment: Deployment) => snapshotOf(deployment) ?? snapshot;
  const scopesOf = (deployment: Deployment) => runtime.scopesOf(deployment, owningSnapshot(deployment));
  return {
    dispatcher: runtime.dispatcher,
    clock,
    routing: snapshot.config.routing,
    limits: snapshot.config.upstreamLimits,
    acquireSlot: acquireSlotOf(runtime.inFlight),
    anotherSlot: anotherSlotOf(runtime.inFlight, runtime.budgets, clock, scopesOf),
    promptTokensFor: runtime.promptCalibration.promptTokensFor,
    // A request planned on an older snapshot (failing over, continuing a stream) sends its next attempt where the
    // name points now: never with a key a reload replaced (it may be a revoked one), nor to a removed deployment.
    servingAs,
    hasRefusedFeatures: (deployment) => refusedFeatures.knows(deployment.key),
    // Asked three times per attempt (providers/message-order.ts): a deployment with no lesson at all (the rule) is
    // answered without reading the clock.
    refusalOf: (deployment, features) =>
      refusedFeatures.knows(deployment.key)
        ? refusedFeatures.refusalOf(deployment.key, features, clock.now())
        : undefined,
    admit: (deployment, tokens, requests, request) =>
      // Checked again: a reload may come while the attempt waited for a slot.
      runtime.isServing(deployment)
        ? recorder.admit(
            deployment,
            scopesOf(deployment),
            tokens,
            requests,
            audioChargeOf(owningSnapshot(deployment), deployment, request.audioSeconds),
          )
        : { isAdmitted: false, reason: "removed or changed by a config reload", isLimit: false },
    attemptEnded: (deployment, report, reservation, isStreamOpen, prompt) =>
      recorder.attemptEnded(deployment, scopesOf(deployment), report, reservation, { isStreamOpen, prompt }),
    attemptSent: (reservation) => recorder.attemptSent(reservation),
    soonestAvailableMs: (routePlan, request) => runtime.soonestAvailableMs(routePlan, { request, snapshot }),
    redact: runtime.secrets.redactor,
  };
}
