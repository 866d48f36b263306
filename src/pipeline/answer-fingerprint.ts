// What besides the request itself decides the answer it gets: the part of the config that turns a request into what
// the providers are sent. The answer cache keys each answer with it (answer-cache.ts `cacheKey`), so that a replica
// on another config (a rolling deploy, a replica configured apart) never gives an answer kept by this one, nor this
// process an answer kept under the config before a reload (also one put by a request that was still in flight when
// the reload came).

import { createHash } from "node:crypto";
import type { Deployment } from "../providers/catalog.ts";
import { deploymentMessageOrder } from "../providers/message-order.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/**
 * Computed once per snapshot (a config, a discovery refresh), at the first lookup: a request costs one WeakMap read.
 * Kept apart from the snapshot so that a gateway without the cache never computes it.
 */
const fingerprints = new WeakMap<GatewaySnapshot, string>();

/** A short digest of what decides answers on this snapshot; equal on two replicas exactly when that is equal. */
export function answerFingerprint(snapshot: GatewaySnapshot): string {
  let fingerprint = fingerprints.get(snapshot);
  if (fingerprint === undefined) {
    fingerprint = computeFingerprint(snapshot);
    fingerprints.set(snapshot, fingerprint);
  }
  return fingerprint;
}

/**
 * Every deployment's upstream identity (sorted, so the order providers are listed or discovered in does not count),
 * and the rules that decide which of them a request may reach: meta models, the clients' `models` and `paid`, and
 * `routing.paid`. Whole-config rather than per model on purpose: a request's candidates are resolved by planning,
 * after the lookup (a meta model filters over the catalog), and resolving them for the key would cost every hit
 * a plan. The cost: a changed provider or model also retires the answers of models it does not serve, as a reload
 * emptied the whole cache before. Scores, limits, timeouts and keys are left out: they choose among candidates that
 * all give a right answer, or do not change what is asked.
 */
function computeFingerprint(snapshot: GatewaySnapshot): string {
  const { config, catalog } = snapshot;
  const deployments = catalog.deployments.map(deploymentIdentity).sort();
  return createHash("sha256")
    .update(
      JSON.stringify([
        deployments,
        config.metaModels,
        config.server.clientModels,
        config.server.clientPaid,
        config.routing.paid,
      ]),
    )
    .digest("base64url")
    .slice(0, 22);
}

/** What one deployment is asked and how (upstream-request.ts `buildPayload`, `upstreamRequest`), as one string. */
function deploymentIdentity(deployment: Deployment): string {
  const { settings } = deployment.provider;
  const { body } = deployment;
  return JSON.stringify([
    settings.name,
    settings.baseUrl,
    // Extra headers may select a behaviour upstream (a routing header, an API version); hashed with the rest, never shown.
    settings.headers,
    settings.injectStreamUsage,
    settings.responsesApi,
    settings.rerankApi,
    deployment.model.publicName,
    deployment.model.id,
    deployment.kind,
    deployment.cost,
    deployment.capabilities.reasoning === true,
    // The configured role order, and whether a prefill is marked `prefix: true`, change the messages a candidate is
    // sent (providers/message-order.ts).
    deploymentMessageOrder(deployment, undefined),
    settings.assistantPrefix,
    body === undefined ? null : [body.defaults, body.override, body.drop],
  ]);
}

/** Whether answers kept under `before` are never given again under `after` (their keys carry its fingerprint). */
export function hasNewFingerprint(before: GatewaySnapshot, after: GatewaySnapshot): boolean {
  return answerFingerprint(before) !== answerFingerprint(after);
}

/**
 * Whether the answers kept in memory before a config swap can no longer be reached: the cache was turned off, or they
 * are kept under another fingerprint (a reload, a discovery refresh with other models). cached-answers.ts
 * isWorthKeeping drops an answer still on its way across such a swap.
 */
export function hasOutdatedCache(before: GatewaySnapshot, after: GatewaySnapshot): boolean {
  return before.config.cache.enabled && (!after.config.cache.enabled || hasNewFingerprint(before, after));
}
