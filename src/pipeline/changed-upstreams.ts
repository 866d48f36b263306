// Which upstream each deployment and provider name points at, across reloads: the base URL, the key, the values of
// credential-named `headers` (Azure's `api-key` is its key) and (for a deployment) the upstream model id. What was learned under a name (cooldowns, health, budgets, refused features,
// prompt calibrations) is about that upstream: another key is another account, with its own quota, another model
// another tokenizer (docs/configuration.md, "Reloading the config").
// A reload that points a name elsewhere forgets what was learned of it, and what an attempt sent before the reload
// answers afterwards is not taught to the new upstream. Names are remembered after a reload removed them, so a
// provider added back with another key starts afresh, and one added back unchanged keeps what it had. A client's
// budget scope is forgotten when a reload leaves no client of its name with budgets.
import { credentialHeaderValues } from "../config/provider-secrets.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import type { BudgetLedger } from "../limits/budget-types.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import { unservedEndpointsKey } from "../limits/unserved-endpoints.ts";
import type { Deployment } from "../providers/catalog.ts";
import { deploymentMessageOrder } from "../providers/message-order.ts";
import type { LiveScores } from "../scoring/live-scores.ts";
import type { GatewaySnapshot } from "./snapshot.ts";
import { POOL_SCOPE_PREFIX } from "./snapshot.ts";

export interface ChangedUpstreams {
  readonly deploymentKeys: readonly string[];
  /**
   * Deployments pointing at the same upstream whose `body:` rules, `message_order` or `assistant_prefix` changed
   * (bodyRulesIdentity): the request it is sent is another one, so what it refused as not supported (a parameter
   * the rules now drop, a learned order or `prefix` refusal) is forgotten; the rest is kept.
   */
  readonly bodyChangedKeys?: readonly string[];
  readonly providerNames: readonly string[];
  /** Their budget scopes (a deployment's own, a provider's pool). */
  readonly budgetScopeIds: readonly string[];
}

type ProviderSettings = GatewaySnapshot["config"]["providers"][number];

function providerUpstream(settings: ProviderSettings): string {
  // In header name order: the same headers written in another order are the same account.
  const byName = Object.entries(settings.headers ?? {}).sort(([left], [right]) => (left < right ? -1 : 1));
  const credentials = credentialHeaderValues(Object.fromEntries(byName));
  return credentials.length === 0
    ? `${settings.baseUrl}\n${settings.apiKeys[0]}`
    : `${settings.baseUrl}\n${settings.apiKeys[0]}\n${credentials.join("\n")}`;
}

/** Per deployment object (a snapshot's are immutable): asked on every attempt, built once. */
const upstreamOf = new WeakMap<Deployment, string>();

function deploymentUpstream(deployment: Deployment): string {
  let upstream = upstreamOf.get(deployment);
  if (upstream === undefined) {
    upstream = `${providerUpstream(deployment.provider.settings)}\n${deployment.model.id}`;
    upstreamOf.set(deployment, upstream);
  }
  return upstream;
}

/**
 * What the config says of how the deployment's requests are rewritten: its `body:` rules, its `message_order` (model
 * and provider) and its provider's `assistant_prefix`. A reload changing any of them sends it another request, so
 * what it refused of the old one is forgotten: a learned `message_order:prefix` would otherwise keep stripping the
 * field the operator has just said the host takes, and a learned order would override the order just configured.
 * Effective values, not what is written: `message_order: strict` written on a Mistral-family id (strict already), or a
 * model's body default equal to its provider's (the merge then lists the field last), sends the same request, and
 * forgetting what the deployment taught for it would only make it learn the same lessons again by failing.
 */
function bodyRulesIdentity(deployment: Deployment): string {
  const rules = deployment.body;
  return JSON.stringify([
    rules === undefined ? null : sortedKeys(rules.defaults),
    rules === undefined ? null : sortedKeys(rules.override),
    rules === undefined ? null : [...rules.drop].sort(),
    deploymentMessageOrder(deployment, undefined),
    deployment.provider.settings.assistantPrefix,
  ]);
}

/** A JSON value with every object's keys in one order: the order fields are written in changes nothing sent. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys((value as Record<string, unknown>)[key])]),
  );
}

export class UpstreamIdentities {
  /** Every deployment key and provider name ever served, with the upstream it last pointed at. */
  readonly #deployments = new Map<string, string>();
  /** Every deployment key ever served, with its last `body:` rules (bodyRulesIdentity). */
  readonly #bodies = new Map<string, string>();
  readonly #providers = new Map<string, string>();
  /** The serving snapshot's deployments, by key. */
  #serving = new Map<string, Deployment>();

  constructor(first: GatewaySnapshot) {
    this.apply(first);
  }

  /** The serving snapshot becomes `next`: returns the names that now point at another upstream than before. */
  apply(next: GatewaySnapshot): ChangedUpstreams {
    const deploymentKeys: string[] = [];
    const bodyChangedKeys: string[] = [];
    for (const deployment of next.catalog.deployments) {
      const upstream = deploymentUpstream(deployment);
      const was = this.#deployments.get(deployment.key);
      if (was !== undefined && was !== upstream) deploymentKeys.push(deployment.key);
      this.#deployments.set(deployment.key, upstream);
      const rules = bodyRulesIdentity(deployment);
      const rulesWere = this.#bodies.get(deployment.key);
      if (rulesWere !== undefined && rulesWere !== rules && was === upstream) bodyChangedKeys.push(deployment.key);
      this.#bodies.set(deployment.key, rules);
    }
    const providerNames: string[] = [];
    for (const settings of next.config.providers) {
      const upstream = providerUpstream(settings);
      const was = this.#providers.get(settings.name);
      if (was !== undefined && was !== upstream) providerNames.push(settings.name);
      this.#providers.set(settings.name, upstream);
    }
    this.#serving = new Map(next.catalog.deployments.map((deployment) => [deployment.key, deployment]));
    return {
      deploymentKeys,
      bodyChangedKeys,
      providerNames,
      budgetScopeIds: [
        ...deploymentKeys.map((key) => `deployment:${key}`),
        ...providerNames.map((name) => `${POOL_SCOPE_PREFIX}${name}`),
      ],
    };
  }

  /**
   * Whether what is known under this deployment's name is about the upstream it points at (false: a deployment of
   * an older snapshot, pointed elsewhere by a reload since; what its attempts learn is about the old upstream).
   */
  isKnownAs(deployment: Deployment): boolean {
    return this.#deployments.get(deployment.key) === deploymentUpstream(deployment);
  }

  /** Whether the serving config still has this deployment, pointing at the same upstream. */
  isServing(deployment: Deployment): boolean {
    return this.#serving.has(deployment.key) && this.isKnownAs(deployment);
  }

  /**
   * What a deployment of an older snapshot is now: itself while it points at the same upstream, the serving
   * snapshot's deployment of its name when a reload pointed that at another one, undefined when a reload removed it.
   */
  servingAs(deployment: Deployment): Deployment | undefined {
    return this.isServing(deployment) ? deployment : this.#serving.get(deployment.key);
  }
}

/** The books a reload makes forget (the runtime's). */
export interface ForgettingBooks {
  readonly availability: Pick<AvailabilityBook, "forget" | "forgetProvider">;
  readonly scores: Pick<LiveScores, "forget">;
  readonly budgets: Pick<BudgetLedger, "forget">;
  readonly refusedFeatures: Pick<RefusedFeatures, "forget">;
  readonly promptCalibration: Pick<PromptCalibration, "forget">;
}

/**
 * Forgets what was learned of deployments and providers that now go to another upstream or key (`changed`), and
 * the budget scope of every client `previous` had budgets for and `next` has not: removed, renamed, or its `limits`
 * dropped. Such a scope is counted by no request any more, and would otherwise stay in the ledger and the state
 * file for good (a client added back later starts afresh). With Redis only this replica's view is forgotten: the
 * fleet's shared counters hold; only the limits a 429 stated for the old upstream, stored for processes that start
 * later, are deleted and dropped by every replica (redis-ledger.ts `forget`), as are the deployment's refused
 * features and calibration (state/redis-refused-features.ts, state/redis-learned-facts.ts).
 */
export function forgetChanged(
  changed: ChangedUpstreams,
  previous: GatewaySnapshot,
  next: GatewaySnapshot,
  books: ForgettingBooks,
): void {
  for (const key of changed.deploymentKeys) {
    books.availability.forget(key);
    books.scores.forget(key);
    books.refusedFeatures.forget(key);
    books.promptCalibration.forget(key);
  }
  for (const key of changed.bodyChangedKeys ?? []) books.refusedFeatures.forget(key);
  for (const name of changed.providerNames) {
    books.availability.forgetProvider(name);
    // The routes it lacked were the old upstream's: another host (or key) may have them.
    books.refusedFeatures.forget(unservedEndpointsKey(name));
  }
  for (const scopeId of changed.budgetScopeIds) books.budgets.forget(scopeId);
  for (const [name, scope] of previous.clientScopes) {
    if (!next.clientScopes.has(name)) books.budgets.forget(scope.id);
  }
}
