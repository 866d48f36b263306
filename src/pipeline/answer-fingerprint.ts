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
 * The shape of the answers this gateway keeps, part of every key: bump it whenever a change makes the answer kept for
 * a request differ from what this gateway would now give it (a rewrite of the body, a check that refuses answers it
 * passed). A shared Redis outlives the gateway that filled it: a rolling deploy's new replicas read the old ones'
 * rows, and rows are given until `cache.ttl_ms` ends. Without it, rows kept before embeddings were re-encoded into
 * the client's `encoding_format` (floats for OpenAI's SDK, which asks for base64 and decodes garbage from them) were
 * given by the gateways that do, the config being the same. A new version orphans the old rows (they age out).
 * 1: the answers kept before the version was in the key (their keys carry none, so none of a version equals theirs).
 * 2: embeddings in the client's encoding, in `index` order, with one right `index` per input (upstream/embeddings-answer.ts).
 */
export const ANSWER_FORMAT_VERSION = 2;

/**
 * Computed once per snapshot (a config, a discovery refresh), at the first lookup: a request costs one WeakMap read.
 * Kept apart from the snapshot so that a gateway without the cache never computes it.
 */
const fingerprints = new WeakMap<GatewaySnapshot, string>();

/**
 * A short digest of what decides answers on this snapshot; equal on two replicas exactly when that is equal and they
 * keep answers of the same shape. `formatVersion`: another version's, to name the rows a gateway of it keeps (tests).
 */
export function answerFingerprint(snapshot: GatewaySnapshot, formatVersion = ANSWER_FORMAT_VERSION): string {
  if (formatVersion !== ANSWER_FORMAT_VERSION) return computeFingerprint(snapshot, formatVersion);
  let fingerprint = fingerprints.get(snapshot);
  if (fingerprint === undefined) {
    fingerprint = computeFingerprint(snapshot, formatVersion);
    fingerprints.set(snapshot, fingerprint);
  }
  return fingerprint;
}

/**
 * The answers' format version, every deployment's upstream identity (sorted, so the order providers are listed or discovered in does not count),
 * and the rules that decide which of them a request may reach: meta models, the clients' `models` and `paid`, and
 * `routing.paid`. Whole-config rather than per model on purpose: a request's candidates are resolved by planning,
 * after the lookup (a meta model filters over the catalog), and resolving them for the key would cost every hit
 * a plan. The cost: a changed provider or model also retires the answers of models it does not serve, as a reload
 * emptied the whole cache before. Scores, limits, timeouts and keys are left out: they choose among candidates that
 * all give a right answer, or do not change what is asked.
 */
function computeFingerprint(snapshot: GatewaySnapshot, formatVersion: number): string {
  const { config, catalog } = snapshot;
  const deployments = catalog.deployments.map(deploymentIdentity).sort();
  return createHash("sha256")
    .update(
      JSON.stringify([
        formatVersion,
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
