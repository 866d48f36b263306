// The metrics read from the live state at every scrape (cooldowns, circuits, budgets, queue, reloads), not fed by
// records: docs/metrics.md "Live state".
import { COOLDOWN_CAUSES, type LiveDeployment, type LiveStateSource } from "./live-state.ts";
import { LiveMetric } from "./metric-accumulators.ts";
import { METRIC_PREFIX, OTHER } from "./metric-names.ts";
import { unhandledRejectionCount } from "./process-faults.ts";

/** Read from the live state at every scrape. */
export function liveMetrics(live: LiveStateSource): LiveMetric[] {
  const metrics = [
    new LiveMetric(`${METRIC_PREFIX}cooldowns_active`, "Deployments cooling down now, by cause.", "gauge", () => {
      const nowMs = live.nowMs();
      const counts = new Map<string, number>(COOLDOWN_CAUSES.map((cause) => [cause, 0]));
      for (const deployment of live.deployments()) {
        const cooldown = deployment.cooldown;
        if (cooldown === undefined || cooldown.untilMs <= nowMs) continue;
        const cause = counts.has(cooldown.cause) ? cooldown.cause : OTHER;
        counts.set(cause, (counts.get(cause) ?? 0) + 1);
      }
      return [...counts].map(([cause, count]) => [{ cause }, count] as const);
    }),
    new LiveMetric(
      `${METRIC_PREFIX}circuit_state`,
      "Circuit breaker state per deployment: 1 for the current state (closed, open, half_open), else 0.",
      "gauge",
      () =>
        [...live.deployments()].flatMap((deployment) =>
          ["closed", "open", "half_open"].map(
            (state) => [{ ...deploymentLabels(deployment), state }, deployment.circuit === state ? 1 : 0] as const,
          ),
        ),
    ),
    new LiveMetric(
      `${METRIC_PREFIX}deployment_suspect`,
      "1 while a deployment's circuit is closed but its latest evidence is a recent failure (one attempt at a time), else 0.",
      "gauge",
      () =>
        [...live.deployments()].map(
          (deployment) => [deploymentLabels(deployment), deployment.isSuspect === true ? 1 : 0] as const,
        ),
    ),
  ];
  for (const unit of ["requests", "tokens"] as const) {
    metrics.push(
      new LiveMetric(
        `${METRIC_PREFIX}budget_remaining_${unit}`,
        `${unit === "requests" ? "Requests" : "Tokens"} left in each budget window, by scope (provider pool, deployment or client) and window.`,
        "gauge",
        () =>
          [...budgetWindows(live, unit)].map(
            (window) => [{ scope: window.scope, window: window.window }, window.remaining] as const,
          ),
      ),
      new LiveMetric(
        `${METRIC_PREFIX}budget_limit_${unit}`,
        `The ${unit} limit of each budget window (configured or learned from the provider).`,
        "gauge",
        () =>
          [...budgetWindows(live, unit)].map(
            (window) => [{ scope: window.scope, window: window.window }, window.limit] as const,
          ),
      ),
    );
  }
  metrics.push(
    new LiveMetric(
      `${METRIC_PREFIX}queue_depth_requests`,
      "Requests waiting in the queue for a free candidate now.",
      "gauge",
      () => [[{}, live.queueDepth()]],
    ),
    new LiveMetric(
      `${METRIC_PREFIX}config_reloads_total`,
      "Config reloads and forced model refreshes since start.",
      "counter",
      () => [[{}, live.configReloads()]],
    ),
    new LiveMetric(
      `${METRIC_PREFIX}state_degraded`,
      "1 while the state store serves anything from local state (a shared store unreachable, a Redis Cluster slot not answering), else 0.",
      "gauge",
      () => [[{}, live.stateHealth?.().isDegraded === true ? 1 : 0]],
    ),
    new LiveMetric(
      `${METRIC_PREFIX}state_local_providers`,
      "Providers whose budgets a Redis Cluster serves from local state now (their hash tag's slot does not answer).",
      "gauge",
      () => [[{}, live.stateHealth?.().localProviders ?? 0]],
    ),
    new LiveMetric(
      `${METRIC_PREFIX}state_kept_writes_dropped_total`,
      "Budget writes kept for a Redis Cluster master's return that were dropped past 1,000 per hash tag (oldest first), by provider or client.",
      "counter",
      () => [...(live.keptWritesDropped?.() ?? [])].map(([owner, writes]) => [droppedLabels(owner), writes] as const),
    ),
    new LiveMetric(
      `${METRIC_PREFIX}unhandled_rejections_total`,
      "Promise rejections nothing handled, logged and survived since start (each is a bug worth an alert).",
      "counter",
      () => [[{}, unhandledRejectionCount()]],
    ),
  );
  return metrics;
}

/** Each budget window once (a provider pool is shared by its deployments), clients' too. */
function budgetWindows(live: LiveStateSource, unit: string) {
  const seen = new Map<string, { scope: string; window: string; remaining: number; limit: number }>();
  for (const owner of [...live.deployments(), ...live.clients()]) {
    for (const window of owner.budgets) {
      if (window.unit !== unit) continue;
      seen.set(`${window.scope}\u0000${window.window}`, window);
    }
  }
  return seen.values();
}

/**
 * One series per deployment: `deployment` (`provider/public name`) tells apart two public names of one provider
 * that map to the same upstream id (each has its own circuit), which provider and upstream_model alone do not.
 */
function deploymentLabels(deployment: LiveDeployment): Record<string, string> {
  return { provider: deployment.provider, upstream_model: deployment.model, deployment: deployment.deploymentKey };
}

/**
 * `provider:NAME` -> `{provider}`, `client:NAME` -> `{client}` (LiveStateSource.keptWritesDropped's keys): a client's
 * budget shares the hash tag of a provider of its name, and was counted as that provider before.
 */
function droppedLabels(owner: string): Record<string, string> {
  const colon = owner.indexOf(":");
  const name = owner.slice(colon + 1);
  return owner.startsWith("client:") ? { client: name } : { provider: name };
}
