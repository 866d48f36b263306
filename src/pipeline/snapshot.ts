// A config snapshot: the config, the catalog built from it (configured and discovered models), each
// deployment's static score and profile, and its budget scopes. Built whole and swapped whole, so a reload
// never mixes two configs and in-flight requests finish on the snapshot they started with.
import { createHash } from "node:crypto";
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import type { GatewayConfig } from "../config/types.ts";
import {
  AUDIO_SCOPE_SUFFIX,
  audioRulesFromLimits,
  type BudgetScope,
  POOL_SCOPE_PREFIX,
  rulesFromLimits,
} from "../limits/budgets.ts";
import type { Logger } from "../logger.ts";
import {
  buildCatalog,
  type Catalog,
  type Deployment,
  type DiscoveredModel,
  metadataProviderName,
} from "../providers/catalog.ts";
import { discoverModels } from "../providers/discovery.ts";
import { unservedClientModels } from "../router/client-models.ts";
import { unservedMetaModels } from "../router/resolve-names.ts";
import type { AdjustmentGroup } from "../scoring/adjustments.ts";
import {
  boardQuality,
  type ModelProfile,
  profileModel,
  staticScoreFor,
  withQualityPriors,
} from "../scoring/model-profile.ts";
import type { StaticScore } from "../scoring/score.ts";
import { loadScoringSources, type ScoringSettings, scoringSettings } from "../scoring/scoring-sources.ts";

export interface GatewaySnapshot {
  readonly config: GatewayConfig;
  readonly catalog: Catalog;
  /** Static score per deployment index (priority, leaderboard, size, context, adjustments). */
  readonly staticScores: readonly StaticScore[];
  /** What the score knows about each deployment (leaderboard matches, params, context source, adjustments). */
  readonly profiles: readonly ModelProfile[];
  readonly scoring: ScoringSettings;
  /**
   * Budget scopes per deployment index: [provider pool (if it has limits or counts per account), the deployment
   * itself].
   */
  readonly budgetScopes: readonly (readonly BudgetScope[])[];
  /**
   * Each deployment's audio-seconds scopes (`ash`/`asd` of its provider's pool and of the model), by its index: a
   * transcription or translation reserves its upload's seconds there beside its request (recorder.ts); empty for
   * every deployment without those budgets, and never looked at for other requests.
   */
  readonly audioScopes: readonly (readonly BudgetScope[])[];
  /** Budget scope per client name with `limits` (`server.api_keys` entries `{ key, name, limits }`). */
  readonly clientScopes: ReadonlyMap<string, BudgetScope>;
  /** Discovery warnings and per-provider discovery source, for /health. */
  readonly discovery: ReadonlyMap<string, { source: string; warning?: string | undefined; count: number }>;
  /** Meta models naming models nothing serves (router/resolve-names.ts `unservedMetaModels`), logged as warnings. */
  readonly metaModelWarnings: readonly string[];
  /** `configHash` of the config and the adjustments file this snapshot read (`/health` `config.hash`). */
  readonly configHash: string;
}

export async function buildSnapshot(
  config: GatewayConfig,
  dispatcher: Dispatcher,
  clock: Clock,
  logger: Logger | undefined,
  isDiscoveryForced: boolean,
  warnedRules: ReadonlySet<string> = new Set(),
): Promise<GatewaySnapshot> {
  const discovered = new Map<string, readonly DiscoveredModel[]>();
  const discovery = new Map<string, { source: string; warning?: string | undefined; count: number }>();
  await Promise.all(
    config.providers
      .filter((provider) => provider.models === undefined)
      .map(async (provider) => {
        const result = await discoverModels(provider, {
          settings: config.discovery,
          maxResponseBytes: config.upstreamLimits.maxResponseBytes,
          dispatcher,
          clock,
          isForced: isDiscoveryForced,
        });
        discovered.set(provider.name, result.models);
        discovery.set(provider.name, { source: result.source, warning: result.warning, count: result.models.length });
        if (result.warning !== undefined) logger?.warn({ provider: provider.name }, result.warning);
      }),
  );
  const scoring = scoringSettings(config);
  const sources = loadScoringSources(scoring);
  const profiles: ModelProfile[] = [];
  const catalog = buildCatalog(config.providers, discovered, (provider, model, discoveredContextTokens) => {
    const profile = profileModel(sources, metadataProviderName(provider), model.id, {
      leaderboardName: model.leaderboardName,
      paramsB: model.paramsB,
      contextTokens: model.contextTokens ?? discoveredContextTokens,
      maxOutputTokens: model.maxOutputTokens,
    });
    profiles.push(profile);
    return {
      contextTokens: profile.contextTokens,
      maxOutputTokens: profile.maxOutputTokens,
      capabilities: {
        tools: model.tools ?? profile.capabilities?.tools,
        vision: model.vision ?? profile.capabilities?.vision,
        jsonSchema: model.jsonSchema ?? profile.capabilities?.jsonSchema,
        reasoning: model.reasoning ?? profile.capabilities?.reasoning,
      },
    };
  });
  const profilesWithPriors = withQualityPriors(profiles, sources, clock.now());
  // What this snapshot looked up in the shipped data, kept for the next start (a few KB; nothing when all was kept).
  sources.memo?.persist();
  const staticScores = catalog.deployments.map((deployment) =>
    staticScoreFor(
      profilesWithPriors[deployment.index] as ModelProfile,
      { basePriority: deployment.provider.settings.basePriority, priority: deployment.model.priority },
      scoring.weights,
    ),
  );
  // Checked against the catalog just built (discovered models included), with the static scores: a model is left
  // out of a filter only when its score says never, which health does not change.
  const nameContext = {
    catalog,
    metaModels: config.metaModels,
    score: (deployment: Deployment) => staticScores[deployment.index]?.staticTotal ?? 0,
    scoreOnBoard: (deployment: Deployment, board: string) => {
      const profile = profilesWithPriors[deployment.index];
      return profile === undefined ? undefined : boardQuality(profile, board);
    },
    paramsB: (deployment: Deployment) => profilesWithPriors[deployment.index]?.params?.valueB,
  };
  const metaModelWarnings = [
    ...unservedMetaModels(nameContext),
    ...unservedClientModels(config.server.clientModels, nameContext),
  ];
  // A rule left out is told once, when a config first has it: the snapshot is rebuilt at every reload and discovery
  // refresh, and the same line every time buried the other warnings (`warnedRules`: the serving snapshot's).
  for (const warning of catalog.ruleWarnings) if (!warnedRules.has(warning)) logger?.warn({}, warning);
  for (const warning of metaModelWarnings) logger?.warn({}, warning);
  return {
    config,
    catalog,
    staticScores,
    profiles: profilesWithPriors,
    scoring,
    budgetScopes: buildBudgetScopes(catalog),
    audioScopes: buildAudioScopes(catalog),
    clientScopes: clientBudgetScopes(config.server.clientLimits),
    discovery,
    metaModelWarnings,
    configHash: configHash(config, sources.adjustments),
  };
}

export { POOL_SCOPE_PREFIX };

/**
 * A client's budgets count its requests in the gateway, whatever upstream serves them; days end at 00:00 UTC. The
 * scope id cannot meet a provider's or a deployment's (`provider:`, `deployment:`), so the same ledger, embedded or
 * Redis, keeps them.
 */
function clientBudgetScopes(limits: GatewayConfig["server"]["clientLimits"]): Map<string, BudgetScope> {
  const scopes = new Map<string, BudgetScope>();
  for (const [name, clientLimits] of Object.entries(limits)) {
    const { rules, concurrency } = rulesFromLimits(clientLimits);
    if (rules.length === 0 && concurrency === undefined) continue;
    scopes.set(name, { id: `${CLIENT_SCOPE_PREFIX}${name}`, rules, concurrency, dayReset: UTC_MIDNIGHT });
  }
  return scopes;
}

/** The id prefix of a client's budget scope. */
export const CLIENT_SCOPE_PREFIX = "client:";

function buildBudgetScopes(catalog: Catalog): BudgetScope[][] {
  const providerScopes = new Map<string, BudgetScope | undefined>();
  for (const runtime of catalog.providers) {
    const settings = runtime.settings;
    const { rules, concurrency } = rulesFromLimits(settings.limits);
    // An account-wide provider always has its pool, even without limits: what its 429s teach is learned there.
    const hasPool = rules.length > 0 || concurrency !== undefined || settings.rateLimitScope === "account";
    providerScopes.set(
      settings.name,
      !hasPool
        ? undefined
        : { id: `${POOL_SCOPE_PREFIX}${settings.name}`, rules, concurrency, dayReset: settings.dayReset },
    );
  }
  return catalog.deployments.map((deployment) => {
    const { rules, concurrency } = rulesFromLimits(deployment.model.limits, deployment.provider.settings.limits);
    const own: BudgetScope = {
      id: `deployment:${deployment.key}`,
      rules,
      concurrency,
      dayReset: deployment.provider.settings.dayReset,
    };
    const pool = providerScopes.get(deployment.provider.settings.name);
    return pool === undefined ? [own] : [pool, own];
  });
}

/** The `ash`/`asd` budgets as scopes of their own (budget-types.ts AUDIO_SCOPE_SUFFIX): the pool's, then the model's. */
function buildAudioScopes(catalog: Catalog): BudgetScope[][] {
  const poolScopes = new Map<string, BudgetScope>();
  for (const runtime of catalog.providers) {
    const settings = runtime.settings;
    const rules = audioRulesFromLimits(settings.limits);
    if (rules.length === 0) continue;
    const id = `${POOL_SCOPE_PREFIX}${settings.name}${AUDIO_SCOPE_SUFFIX}`;
    poolScopes.set(settings.name, { id, rules, concurrency: undefined, dayReset: settings.dayReset });
  }
  return catalog.deployments.map((deployment) => {
    const settings = deployment.provider.settings;
    const scopes: BudgetScope[] = [];
    const pool = poolScopes.get(settings.name);
    if (pool !== undefined) scopes.push(pool);
    const rules = audioRulesFromLimits(deployment.model.limits, settings.limits);
    if (rules.length > 0) {
      const id = `deployment:${deployment.key}${AUDIO_SCOPE_SUFFIX}`;
      scopes.push({ id, rules, concurrency: undefined, dayReset: settings.dayReset });
    }
    return scopes;
  });
}

/**
 * A short hash of the config that changes with any setting, keys included (as hashes: never the keys), and with
 * the scoring adjustments read from their own file: a reload of that file alone changes the scores, so it must
 * change the hash too. The adjustments are hashed as read (names, priorities, patterns), so an edit of comments
 * only leaves the hash alone.
 */
export function configHash(config: GatewayConfig, adjustments: readonly AdjustmentGroup[] = []): string {
  const text = JSON.stringify(config, (key, value: unknown) =>
    (key === "apiKeys" || key === "adminKeys") && Array.isArray(value)
      ? value.map((secret) => createHash("sha256").update(String(secret)).digest("hex"))
      : value,
  );
  // A RegExp has no JSON of its own ({}): its source and flags are what it matches.
  const adjustmentsText = JSON.stringify(
    adjustments.map((group) => [group.name, group.priority, group.patterns.map((pattern) => String(pattern))]),
  );
  return createHash("sha256").update(text).update("\0").update(adjustmentsText).digest("hex").slice(0, 16);
}
