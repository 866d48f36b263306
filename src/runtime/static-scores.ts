// Static score terms per deployment, computed once per snapshot so routing a request is arithmetic only.
import type { GatewayConfig } from "../config/types.ts";
import type { Catalog } from "../providers/catalog.ts";

export function computeStaticScores(catalog: Catalog, _config: GatewayConfig): Float64Array {
  const scores = new Float64Array(catalog.deployments.length);
  for (const deployment of catalog.deployments) {
    scores[deployment.index] = deployment.provider.settings.basePriority * deployment.model.priority;
  }
  return scores;
}
