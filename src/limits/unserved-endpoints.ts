// The endpoints a provider has no route for, learned from a 405 or a router's 404 (upstream/classify-response.ts
// `unserved_endpoint`): an aggregator lists image, audio or rerank models in its model list while its API has no
// `/images/generations`, and without this every such request would first take that 404 there. Kept in the
// refused-features book (refused-features.ts) under the provider's own key, so that the state file, Redis sharing,
// `POST /admin/cooldowns/reset` and a reload's forgetting apply as they do to refused features. Pure.

import type { FeatureRefusal, RefusedFeatures } from "./refused-features.ts";

/** A lesson about the whole provider, not one of its deployments: a key no deployment key can be (they hold a `/`). */
export function unservedEndpointsKey(providerName: string): string {
  return `provider:${providerName}`;
}

/** The provider has no route for `endpointPath` (e.g. `/images/generations`), for `lifetimeMs` from `nowMs`. */
export function learnUnservedEndpoint(
  book: Pick<RefusedFeatures, "learn">,
  providerName: string,
  endpointPath: string,
  reason: string,
  nowMs: number,
  lifetimeMs: number,
): void {
  book.learn(unservedEndpointsKey(providerName), endpointPath, reason, nowMs, lifetimeMs);
}

/** The lesson that the provider has no route for `endpointPath`, if one holds at `nowMs`. Side-effect free. */
export function unservedEndpointOf(
  book: Pick<RefusedFeatures, "refusalOf">,
  providerName: string,
  endpointPath: string,
  nowMs: number,
): FeatureRefusal | undefined {
  return book.refusalOf(unservedEndpointsKey(providerName), [endpointPath], nowMs);
}
