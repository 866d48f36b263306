// The catalog: every provider+model pair ("deployment") the gateway can route to, and every name that
// addresses one. Built once per config (and per discovery refresh), then read-only: swapping the config at run
// time means building a new Catalog and replacing the reference.
import type { ModelKind, ModelSettings, ProviderSettings } from "../config/types.ts";
import { type BodyRules, mergeBodyRules } from "./body-rules.ts";
import { modelKind, normaliseModelName } from "./model-names.ts";
import {
  providerRulesForCompletions,
  providerRulesForKind,
  streamedSpeechWarning,
  withoutStreamedSpeech,
} from "./provider-rules-by-kind.ts";

export interface ProviderRuntime {
  readonly settings: ProviderSettings;
  /** `scheme://host:port` for undici. */
  readonly origin: string;
  /** Path prefix of the base URL, e.g. `/openai/v1`, without a trailing slash. */
  readonly basePath: string;
  /**
   * The base URL's query string with its `?` (Azure OpenAI's `?api-version=2024-10-21`, a proxy's `?key=`), or "".
   * It goes after the endpoint path of every call: such a provider refuses a call without it.
   */
  readonly baseQuery: string;
}

export interface Deployment {
  /** Dense index, for per-request arrays. */
  readonly index: number;
  /** `provider/publicName`: unique, used in stats, cooldowns and logs. */
  readonly key: string;
  readonly provider: ProviderRuntime;
  readonly model: ModelSettings;
  readonly kind: ModelKind;
  readonly isDiscovered: boolean;
  /**
   * Context window: config, else discovery, else the model metadata table (its `max_input_tokens`). With a
   * different `maxOutputTokens` it limits the prompt alone; else the prompt and the output share it
   * (router/context-fit.ts).
   */
  readonly contextTokens: number | undefined;
  /** Output limit: config `max_output_tokens`, else from the same source as `contextTokens`; undefined = unknown. */
  readonly maxOutputTokens: number | undefined;
  /** Capabilities: config, else the metadata table; undefined = unknown (not excluded by fit checks). */
  readonly capabilities: DeploymentCapabilities;
  /** Whether a request costs money: model `cost`, else the provider's `free_models`, else its `cost`. */
  readonly cost: CostClass;
  /** What the config changes in the body this deployment is sent (`body:`); undefined: nothing. */
  readonly body?: BodyRules | undefined;
  /**
   * The same for a legacy `/v1/completions` body (a chat model only): of the provider's rules only the fields that
   * API takes (provider-rules-by-kind.ts `providerRulesForCompletions`), the model's own as written.
   */
  readonly completionsBody?: BodyRules | undefined;
}

export type CostClass = "free" | "paid";

/**
 * The name model metadata and quality priors know a provider by: its preset's when it has one (`groq` for the
 * second key's `groq.2`, or for a legacy `my-groq` entry recognised as groq by its URL), else its own. LiteLLM's
 * table keys models by provider (`groq/llama-3.3-70b-versatile`: 32,768 output tokens); under an unknown name the
 * lookup fell back to another host's entry of the same model (128,000).
 */
export function metadataProviderName(settings: ProviderSettings): string {
  return settings.presetOrigin?.preset ?? settings.name;
}

/**
 * A deployment's cost class. Precedence: the model's own `cost` (config, then the preset's `known_models`), an
 * upstream id matching the provider's `free_models` (OpenRouter's `:free` variants), the provider's `cost`.
 */
export function costClassOf(model: ModelSettings, settings: ProviderSettings): CostClass {
  if (model.cost !== undefined) return model.cost;
  if (settings.freeModels.some((pattern) => new RegExp(pattern, "i").test(model.id))) return "free";
  return settings.cost;
}

export interface DeploymentCapabilities {
  readonly tools: boolean | undefined;
  readonly vision: boolean | undefined;
  readonly jsonSchema: boolean | undefined;
  /** Takes `reasoning_effort`; only `true` gets it (docs/protocols.md "Reasoning"). */
  readonly reasoning: boolean | undefined;
}

/** Fills in what the config and discovery left open (context, capabilities), e.g. from model metadata. */
export type DeploymentEnricher = (
  provider: ProviderSettings,
  model: ModelSettings,
  discoveredContextTokens: number | undefined,
) => {
  contextTokens: number | undefined;
  maxOutputTokens: number | undefined;
  capabilities: DeploymentCapabilities;
};

const noEnrichment: DeploymentEnricher = (_provider, model, discoveredContextTokens) => ({
  contextTokens: model.contextTokens ?? discoveredContextTokens,
  maxOutputTokens: model.maxOutputTokens,
  capabilities: { tools: model.tools, vision: model.vision, jsonSchema: model.jsonSchema, reasoning: model.reasoning },
});

export interface DiscoveredModel {
  readonly id: string;
  readonly contextTokens?: number | undefined;
  /** The kind the provider's list states (discovery.ts), else undefined: the id decides (model-names.ts). */
  readonly kind?: ModelKind | undefined;
}

export class Catalog {
  readonly deployments: readonly Deployment[];
  readonly providers: readonly ProviderRuntime[];
  /** Body rules left out of a deployment because its door cannot relay what they ask for (body-rules.ts). */
  readonly ruleWarnings: readonly string[];
  readonly #byName: Map<string, Deployment[]>;
  readonly #byProvider: Map<string, Deployment[]>;

  constructor(
    providers: readonly ProviderRuntime[],
    deployments: readonly Deployment[],
    ruleWarnings: readonly string[] = [],
  ) {
    this.providers = providers;
    this.deployments = deployments;
    this.ruleWarnings = ruleWarnings;
    this.#byName = new Map();
    this.#byProvider = new Map();
    for (const deployment of deployments) {
      const names = new Set([
        deployment.model.publicName.toLowerCase(),
        deployment.model.id.toLowerCase(),
        normaliseModelName(deployment.model.publicName),
        normaliseModelName(deployment.model.id),
      ]);
      for (const name of names) pushTo(this.#byName, name, deployment);
      pushTo(this.#byProvider, deployment.provider.settings.name.toLowerCase(), deployment);
    }
  }

  /** Deployments a (case-insensitive) model name addresses: public name, upstream id or normalised name. */
  byName(name: string): readonly Deployment[] | undefined {
    return this.#byName.get(name.toLowerCase()) ?? this.#byName.get(normaliseModelName(name));
  }

  /**
   * Deployments `name` (case-insensitive) addresses as written: their public name, upstream id or alias. Unlike
   * `byName`, `name` itself is not normalised: `beta/shared-model` must not reach every provider's `shared-model`
   * through its normalised form. An alias (`llama-3.3-70b`) reaches every provider serving the model, also one whose
   * public name is another spelling (`llama-3.3-70b-versatile`, as the Python project's files key models).
   */
  byNameAsWritten(name: string): readonly Deployment[] | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  byProvider(providerName: string): readonly Deployment[] | undefined {
    return this.#byProvider.get(providerName.toLowerCase());
  }

  /** Public names in a stable order: what GET /v1/models lists. */
  publicNames(): { name: string; kind: ModelKind; providers: string[] }[] {
    const byPublic = new Map<string, { name: string; kind: ModelKind; providers: string[] }>();
    for (const deployment of this.deployments) {
      const name = deployment.model.publicName;
      const entry = byPublic.get(name);
      if (entry === undefined)
        byPublic.set(name, { name, kind: deployment.kind, providers: [deployment.provider.settings.name] });
      else if (!entry.providers.includes(deployment.provider.settings.name))
        entry.providers.push(deployment.provider.settings.name);
    }
    return [...byPublic.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}

export function providerRuntime(settings: ProviderSettings): ProviderRuntime {
  const url = new URL(settings.baseUrl);
  return { settings, origin: url.origin, basePath: url.pathname.replace(/\/+$/, ""), baseQuery: url.search };
}

/**
 * Builds the catalog from configured models and, for providers that list none, the discovered ones.
 * A discovered model's public name is its normalised name (docs/model-names.md), so one name reaches the
 * same model on every provider that serves it.
 */
export function buildCatalog(
  providers: readonly ProviderSettings[],
  discovered: ReadonlyMap<string, readonly DiscoveredModel[]>,
  enrich: DeploymentEnricher = noEnrichment,
): Catalog {
  const runtimes: ProviderRuntime[] = [];
  const deployments: Deployment[] = [];
  const ruleWarnings: string[] = [];
  for (const settings of providers) {
    const runtime = providerRuntime(settings);
    runtimes.push(runtime);
    const seen = new Set<string>();
    // One provider's completions rules, shared by all its chat models (a catalog can list hundreds).
    const completionsRules = providerRulesForCompletions(settings.body);
    const add = (model: ModelSettings, isDiscovered: boolean, contextTokens: number | undefined) => {
      const key = `${settings.name}/${model.publicName}`;
      if (seen.has(key)) return;
      seen.add(key);
      const enriched = enrich(settings, model, contextTokens);
      // A `moderation_api` makes it a moderation model whatever its id or the provider's list says (the config refuses
      // it beside another configured `kind`).
      const kind = model.moderationApi === undefined ? (model.kind ?? modelKind(model.id)) : "moderation";
      // A model of another kind than chat gets of its provider's rules only what its requests take (provider-rules-by-kind.ts).
      const providerLevel = providerRulesForKind(settings.body, kind);
      let bodyLevels = [providerLevel, settings.knownModels[model.id.toLowerCase()]?.body, model.body];
      if (kind === "speech") {
        bodyLevels = bodyLevels.map((level) =>
          withoutStreamedSpeech(level, (rule, treatment) =>
            ruleWarnings.push(streamedSpeechWarning(key, rule, treatment)),
          ),
        );
      }
      deployments.push({
        index: deployments.length,
        key,
        provider: runtime,
        model,
        kind,
        isDiscovered,
        contextTokens: enriched.contextTokens,
        maxOutputTokens: enriched.maxOutputTokens,
        capabilities: enriched.capabilities,
        cost: costClassOf(model, settings),
        body: mergeBodyRules(bodyLevels, { generatesText: kind === "chat" }),
        completionsBody: kind === "chat" ? mergeBodyRules([completionsRules, ...bodyLevels.slice(1)]) : undefined,
      });
    };
    if (settings.models !== undefined) {
      for (const model of settings.models) {
        const known = withKnownModel(model, settings);
        add(known, false, known.contextTokens);
      }
      continue;
    }
    for (const found of discovered.get(settings.name) ?? []) {
      add(withKnownModel(discoveredModelSettings(found), settings), true, found.contextTokens);
    }
  }
  return new Catalog(runtimes, deployments, ruleWarnings);
}

/**
 * Fills what the config left open from the provider's `known_models` (usually a preset's knowledge of its free
 * tier). Precedence: configured field, then known model, then (later) discovery and metadata. Limits merge per
 * window, the configured value winning.
 */
function withKnownModel(model: ModelSettings, settings: ProviderSettings): ModelSettings {
  const known = settings.knownModels[model.id.toLowerCase()];
  if (known === undefined) return model;
  return {
    ...model,
    // The two limits are read together (one window, or an input and an output limit): a configured `context`
    // does not take the known model's output limit, which belongs to the known context.
    contextTokens: model.contextTokens ?? known.contextTokens,
    maxOutputTokens: model.maxOutputTokens ?? (model.contextTokens === undefined ? known.maxOutputTokens : undefined),
    maxInputs: model.maxInputs ?? known.maxInputs,
    paramsB: model.paramsB ?? known.paramsB,
    tools: model.tools ?? known.tools,
    vision: model.vision ?? known.vision,
    jsonSchema: model.jsonSchema ?? known.jsonSchema,
    reasoning: model.reasoning ?? known.reasoning,
    prefill: model.prefill ?? known.prefill,
    messageOrder: model.messageOrder ?? known.messageOrder,
    kind: model.kind ?? known.kind,
    moderationApi: model.moderationApi ?? known.moderationApi,
    limits: known.limits === undefined ? model.limits : { ...known.limits, ...model.limits },
    cost: model.cost ?? known.cost,
  };
}

function discoveredModelSettings(found: DiscoveredModel): ModelSettings {
  return {
    publicName: normaliseModelName(found.id),
    id: found.id,
    priority: 0,
    contextTokens: found.contextTokens,
    maxOutputTokens: undefined,
    paramsB: undefined,
    leaderboardName: undefined,
    tools: undefined,
    vision: undefined,
    jsonSchema: undefined,
    reasoning: undefined,
    prefill: undefined,
    messageOrder: undefined,
    kind: found.kind,
    moderationApi: undefined,
    limits: undefined,
    cost: undefined,
    body: undefined,
  };
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else if (!list.includes(value)) list.push(value);
}
