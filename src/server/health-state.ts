// /health: providers up, cooling or failed, the state store and kept answers, each deployment's cooldowns, circuits
// and budget windows (the last two shared with /stats).
import { isoTime } from "../clock.ts";
import { shownReason } from "../errors/shown-reason.ts";
import { AUDIO_SCOPE_SUFFIX, type BudgetScope } from "../limits/budget-types.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { Deployment } from "../providers/catalog.ts";
import { GATEWAY_VERSION } from "./gateway-version.ts";

/** /health's `kept_responses`: where kept answers live, and whether they had to move (damaged tables). */
export interface KeptResponsesStatus {
  readonly kind: "memory" | "embedded" | "redis";
  readonly isDegraded: boolean;
  readonly detail: string;
}

export function describeHealth(runtime: GatewayRuntime, keptResponses?: KeptResponsesStatus) {
  const { catalog, config, discovery } = runtime.snapshot;
  const nowMs = runtime.clock.now();
  const up: string[] = [];
  const cooling: { name: string; until: string; reason: string }[] = [];
  const failed: { name: string; reason: string }[] = [];
  for (const provider of catalog.providers) {
    const name = provider.settings.name;
    const providerCooldown = runtime.availability.providerCooldown(name);
    const deployments = catalog.byProvider(name) ?? [];
    if (
      providerCooldown !== undefined &&
      (providerCooldown.cause === "invalid_key" || providerCooldown.cause === "credits_exhausted")
    ) {
      failed.push({ name, reason: shownReason(providerCooldown.reason) });
      continue;
    }
    if (deployments.length === 0) {
      failed.push({ name, reason: discovery.get(name)?.warning ?? "no models" });
      continue;
    }
    let soonestMs: number | undefined;
    let reason = "";
    let isAnyAvailable = false;
    for (const deployment of deployments) {
      const availability = runtime.availability.peek(deployment.key, name);
      if (availability.isAvailable) {
        isAnyAvailable = true;
        break;
      }
      if (soonestMs === undefined || availability.untilMs < soonestMs) {
        soonestMs = availability.untilMs;
        reason = availability.reason;
      }
    }
    if (isAnyAvailable || soonestMs === undefined) up.push(name);
    else cooling.push({ name, until: isoTime(soonestMs), reason: shownReason(reason) });
  }
  const state = runtime.state.status();
  // A shared store that is unreachable (the gateway serves from local state) degrades an otherwise healthy gateway.
  const providerStatus = up.length > 0 ? "ok" : cooling.length > 0 ? "degraded" : "down";
  // So do kept Responses API answers that had to move to memory (damaged tables): they are lost at the next restart.
  const isStoreDegraded = state.isDegraded || keptResponses?.isDegraded === true;
  const status = providerStatus === "ok" && isStoreDegraded ? "degraded" : providerStatus;
  return {
    status,
    version: GATEWAY_VERSION,
    uptime_s: Math.round((nowMs - runtime.startedAtMs) / 1000),
    // Which config is serving: changes on every applied reload (SIGHUP, file change, POST /admin/reload).
    config: configStatus(runtime.configInfo),
    // Without where each is written: /health names no file of the config (configStatus says why).
    providers: { up, cooling, failed, skipped: config.skippedProviders.map(({ name, reason }) => ({ name, reason })) },
    models: catalog.deployments.length,
    state,
    kept_responses: keptResponses ?? null,
    deployments: catalog.deployments.map((deployment) => ({
      key: deployment.key,
      ...deploymentState(runtime, deployment, nowMs),
    })),
  };
}

/**
 * The serving config, and the latest reload refused since it was applied (null when none): with file watching a
 * broken edit otherwise shows only in the log while /health names the old config. Its problems are counted, not
 * quoted: they name files and config paths, which the log and POST /admin/reload (admin key) give in full.
 */
function configStatus(info: GatewayRuntime["configInfo"]) {
  return {
    loaded_at: isoTime(info.loadedAtMs),
    hash: info.hash,
    refused_reload:
      info.refused === undefined ? null : { at: isoTime(info.refused.atMs), problems: info.refused.problems.length },
  };
}

/** Cooldown, circuit and budget windows of one deployment: shared by /health and /stats. */
export function deploymentState(runtime: GatewayRuntime, deployment: Deployment, nowMs: number) {
  const cooldown = runtime.availability.cooldownOf(deployment.key, deployment.provider.settings.name);
  const recovery = runtime.availability.recoveryOf(deployment.key);
  return {
    cooldown:
      cooldown === undefined
        ? null
        : {
            remaining_ms: cooldown.untilMs - nowMs,
            cause: cooldown.cause,
            source: cooldown.source,
            reason: shownReason(cooldown.reason),
          },
    circuit: runtime.availability.circuitState(deployment.key),
    // Suspect: the latest evidence is a recent failure (circuit closed); then, while any attempt is in flight, the
    // deployment is only a last resort of its group (docs/routing.md "Recovery").
    suspect: recovery.isSuspect,
    attempts_in_flight: recovery.attemptsInFlight,
    // The failure-rate rule's evidence: successes and failures within failure_window_ms (docs/routing.md "Recovery").
    failure_window: { attempts: recovery.recent.attempts, failures: recovery.recent.failures },
    // Its audio-seconds scopes (`ash`/`asd`) after the request and token ones.
    budgets: [...runtime.scopesOf(deployment), ...(runtime.snapshot.audioScopes[deployment.index] ?? [])].map(
      (scope) => ({
        scope: scope.id,
        windows: budgetWindows(runtime, scope, nowMs),
        in_flight: runtime.budgets.inFlight(scope.id),
      }),
    ),
  };
}

/** A budget scope's windows as /health and /stats show them. */
export function budgetWindows(runtime: GatewayRuntime, scope: BudgetScope, nowMs: number) {
  // An audio-seconds scope counts its seconds as tokens (budget-types.ts BudgetRule.measure): shown as what they are.
  const isAudio = scope.id.endsWith(AUDIO_SCOPE_SUFFIX);
  return runtime.budgets.usage(scope, nowMs).map((window) => ({
    unit: isAudio ? "audio_seconds" : window.unit,
    window: window.window,
    limit: window.limit,
    used: window.used,
    remaining: window.remaining,
    resets_at: window.resetsAtMs === undefined ? null : isoTime(window.resetsAtMs),
    source: window.source,
    algorithm: window.algorithm,
    ...(window.evidence === undefined ? {} : { evidence: window.evidence }),
    ...(window.lapsesAtMs === undefined ? {} : { lapses_at: isoTime(window.lapsesAtMs) }),
    ...(window.recoversTo === undefined || window.nextStepAtMs === undefined
      ? {}
      : { recovers_to: window.recoversTo, next_step_at: isoTime(window.nextStepAtMs) }),
  }));
}
