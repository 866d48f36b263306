// What a reload points at another upstream: deployments whose base URL, key or upstream model id changed, and
// providers whose base URL or key did. What was learned of them (cooldowns, health, budgets) no longer holds:
// another key is another account, with its own quota (docs/configuration.md, "Reloading the config").
import type { Deployment } from "../providers/catalog.ts";
import type { GatewaySnapshot } from "./snapshot.ts";
import { POOL_SCOPE_PREFIX } from "./snapshot.ts";

export interface ChangedUpstreams {
  readonly deploymentKeys: readonly string[];
  readonly providerNames: readonly string[];
  /** Their budget scopes (a deployment's own, a provider's pool). */
  readonly budgetScopeIds: readonly string[];
}

type ProviderSettings = GatewaySnapshot["config"]["providers"][number];

export function changedUpstreams(previous: GatewaySnapshot, next: GatewaySnapshot): ChangedUpstreams {
  const upstreamOf = (deployment: Deployment): string =>
    `${deployment.provider.settings.baseUrl}\n${deployment.provider.settings.apiKeys[0]}\n${deployment.model.id}`;
  const before = new Map(previous.catalog.deployments.map((deployment) => [deployment.key, upstreamOf(deployment)]));
  const deploymentKeys = next.catalog.deployments
    .filter((deployment) => {
      const was = before.get(deployment.key);
      return was !== undefined && was !== upstreamOf(deployment);
    })
    .map((deployment) => deployment.key);
  const providerOf = (settings: ProviderSettings): string => `${settings.baseUrl}\n${settings.apiKeys[0]}`;
  const providersBefore = new Map(previous.config.providers.map((settings) => [settings.name, providerOf(settings)]));
  const providerNames = next.config.providers
    .filter((settings) => {
      const was = providersBefore.get(settings.name);
      return was !== undefined && was !== providerOf(settings);
    })
    .map((settings) => settings.name);
  return {
    deploymentKeys,
    providerNames,
    budgetScopeIds: [
      ...deploymentKeys.map((key) => `deployment:${key}`),
      ...providerNames.map((name) => `${POOL_SCOPE_PREFIX}${name}`),
    ],
  };
}
