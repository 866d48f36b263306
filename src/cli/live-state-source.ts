// The live state observers read (src/observability/live-state.ts), implemented over the gateway runtime's books:
// cooldowns and circuits (availability), budgets (ledger), scores, the wait queue.
import { shownReason } from "../errors/shown-reason.ts";
import type { BudgetScope } from "../limits/budgets.ts";
import { unservedEndpointsKey } from "../limits/unserved-endpoints.ts";
import type { KnownNames, LiveBudgetWindow, LiveDeployment, LiveStateSource } from "../observability/live-state.ts";
import type { GatewayRuntime, GatewaySnapshot } from "../pipeline/gateway-runtime.ts";
import { PRIORITY_AUTO } from "../router/plan-route.ts";

// One object literal implementing the LiveStateSource interface method by method: long, but each method is short
// and they share one closure (the per-snapshot name cache).
export function runtimeLiveState(runtime: GatewayRuntime): LiveStateSource {
  const namesBySnapshot = new WeakMap<GatewaySnapshot, KnownNames>();
  return {
    nowMs: () => runtime.clock.now(),
    knownNames: () => {
      const snapshot = runtime.snapshot;
      let names = namesBySnapshot.get(snapshot);
      if (names === undefined) {
        const { catalog, config } = snapshot;
        names = {
          models: new Set([
            ...catalog.deployments.map((deployment) => deployment.model.publicName),
            ...catalog.deployments.map((deployment) => deployment.key),
            ...Object.keys(config.metaModels),
            PRIORITY_AUTO,
          ]),
          providers: new Set(config.providers.map((provider) => provider.name)),
          upstreamModels: new Set(catalog.deployments.map((deployment) => deployment.model.id)),
        };
        namesBySnapshot.set(snapshot, names);
      }
      return names;
    },
    deployments: () => {
      const snapshot = runtime.snapshot;
      const nowMs = runtime.clock.now();
      return snapshot.catalog.deployments.map((deployment): LiveDeployment => {
        const provider = deployment.provider.settings.name;
        const cooldown = runtime.availability.liveCooldownOf(deployment.key, provider);
        const providerCooldown = runtime.availability.providerCooldown(provider);
        const breakdown = runtime.explainScore(deployment, { snapshot });
        return {
          deploymentKey: deployment.key,
          provider,
          model: deployment.model.id,
          publicName: deployment.model.publicName,
          kind: deployment.kind,
          score: runtime.scoreOf(deployment, snapshot),
          scoreTerms:
            breakdown === undefined
              ? undefined
              : {
                  base_priority: breakdown.basePriority,
                  priority: breakdown.terms.priority,
                  leaderboard: breakdown.terms.leaderboard.weighted,
                  params: breakdown.terms.params.weighted,
                  context: breakdown.terms.context.weighted,
                  adjustment: breakdown.terms.adjustment.weighted,
                  health_penalty: breakdown.terms.healthPenalty.weighted,
                },
          cooldown:
            cooldown === undefined
              ? undefined
              : {
                  cause: cooldown.cause,
                  untilMs: cooldown.untilMs,
                  reason: shownReason(cooldown.reason),
                  source: cooldown.source,
                },
          circuit: runtime.availability.circuitState(deployment.key),
          isSuspect: runtime.availability.recoveryOf(deployment.key).isSuspect,
          isKeyInvalid: providerCooldown?.cause === "invalid_key" || providerCooldown?.cause === "credits_exhausted",
          unservedPaths: runtime.refusedFeatures
            .refusalsOf(unservedEndpointsKey(provider), nowMs)
            .map((lesson) => lesson.feature),
          budgets: runtime.scopesOf(deployment, snapshot).flatMap((scope) => liveWindows(runtime, scope, nowMs)),
          inFlight: runtime
            .scopesOf(deployment, snapshot)
            .reduce((total, scope) => Math.max(total, runtime.budgets.inFlight(scope.id)), 0),
        };
      });
    },
    clients: () => {
      const nowMs = runtime.clock.now();
      return [...runtime.snapshot.clientScopes].map(([name, scope]) => ({
        name,
        budgets: liveWindows(runtime, scope, nowMs),
        inFlight: runtime.budgets.inFlight(scope.id),
      }));
    },
    queueDepth: () => runtime.queuedRequests,
    // Counted by the runtime at each reload: counting new snapshots when state was read missed reloads in between.
    configReloads: () => runtime.reloads,
    keptWritesDropped: () => runtime.state.keptWritesDropped?.() ?? new Map(),
    stateHealth: () => {
      const state = runtime.state.status();
      return { isDegraded: state.isDegraded, localProviders: state.localProviders?.length ?? 0 };
    },
  };
}

/** A budget scope's windows as the live state shows them. */
function liveWindows(runtime: GatewayRuntime, scope: BudgetScope, nowMs: number): LiveBudgetWindow[] {
  return runtime.budgets.usage(scope, nowMs).map((window) => ({
    scope: scope.id,
    unit: window.unit,
    window: window.window,
    limit: window.limit,
    used: window.used,
    remaining: window.remaining,
    resetsAtMs: window.resetsAtMs,
    source: window.source,
    algorithm: window.algorithm,
    evidence: window.evidence,
    lapsesAtMs: window.lapsesAtMs,
    recoversTo: window.recoversTo,
    nextStepAtMs: window.nextStepAtMs,
  }));
}
