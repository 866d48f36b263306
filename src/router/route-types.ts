// The router's data: what a request asks of the route (RouteRequest), what the router may ask of the gateway's
// books (RouterContext), and the plan it returns (RoutePlan), kept apart from the algorithm (plan-route.ts).
import type { MetaModel, ModelKind, RoutingSettings } from "../config/types.ts";
import type { Availability, CooldownCause } from "../limits/availability.ts";
import type { FeatureRefusal, FeatureSizes } from "../limits/refused-features.ts";
import type { OutputLimitName } from "../providers/body-rules.ts";
import type { Catalog, Deployment } from "../providers/catalog.ts";
import type { ContextLimits } from "./context-fit.ts";
import type { RequestFeature } from "./request-features.ts";

export interface RouteRequest {
  /** The `model` field as sent: a name, a meta model, `provider/name`, `priority-auto` or a comma-separated list. */
  readonly model: string;
  /** Body `models: [...]` (OpenRouter's fallback convention), tried after `model`. */
  readonly fallbackModels: readonly string[];
  /** Which family of models the endpoint needs. */
  readonly kind: ModelKind;
  /**
   * The endpoint's path below a provider's base URL (EndpointSpec `upstreamPath`, e.g. `/images/generations`): a
   * provider that does not serve it (its `served_paths`, or a route refusal learned, RouterContext.unservedEndpoint)
   * is left out. Undefined: not checked.
   */
  readonly endpointPath?: string | undefined;
  /**
   * The prompt's estimated tokens (token-estimate.ts), before any deployment's calibration; undefined when
   * unknown (no context or token budget check then).
   */
  readonly promptTokens?: number | undefined;
  /**
   * The tokens the context fit compares with a window when they are not `promptTokens` (which the budget checks
   * count): an embeddings request's longest input, 0 for a rerank. Undefined: `promptTokens`.
   */
  readonly contextTokens?: number | undefined;
  /** The request's field holding the prompt, named by a refusal for its size: `messages` unless said. */
  readonly promptParam?: string | undefined;
  readonly needsTools?: boolean;
  readonly needsVision?: boolean;
  readonly needsJsonSchema?: boolean;
  /**
   * What the request asks of a candidate (request-features.ts): a candidate that refused one of them as not
   * supported is ranked last (RouterContext.refusedFeature).
   */
  readonly features?: readonly RequestFeature[] | undefined;
  /** How many entries its array-valued features hold (request-features.ts featureSizesOf): lessons about a size read it. */
  readonly featureSizes?: FeatureSizes | undefined;
  /** Sticky routing: the deployment this session used last; moved to the front when it is ready. */
  readonly stickyDeploymentKey?: string | undefined;
  /** The requested output tokens: part of the context needed, and of token budgets where the provider reserves them. */
  readonly maxOutputTokens?: number;
  /** The name the client's output limit is under (body-rules.ts `outputLimitNameOf`): counted exactly under rules. */
  readonly outputLimitName?: OutputLimitName | undefined;
  /**
   * That limit as the client's door calls it (`max_output_tokens` on the Responses door), named by a context
   * refusal: `max_tokens` unless said.
   */
  readonly outputLimitParam?: string | undefined;
  /** A legacy `/v1/completions` request: its output is counted under the rules it is sent with (body-rules.ts sentRulesOf). */
  readonly isLegacyCompletion?: boolean | undefined;
  /**
   * A moderation request's inputs: a Llama Guard candidate is called once per input, and each call counts against its
   * request budgets (providers/moderation-api.ts upstreamCallsOf). Undefined: any other request (one call).
   */
  readonly moderationInputs?: number | undefined;
  /**
   * A transcription's or translation's upload, in seconds of audio (limits/audio-duration.ts): what the candidates'
   * `ash`/`asd` budgets are checked for (at least the provider's `min_billed_audio_seconds`). Undefined: no upload.
   */
  readonly audioSeconds?: number | undefined;
  /** When paid models may serve this request, if not `routing.paid`: its client's `paid` (`server.api_keys`). */
  readonly paid?: RoutingSettings["paid"] | undefined;
  /** The model names the request's client may use (its `models` in `server.api_keys`); undefined: every model. */
  readonly allowedModels?: readonly string[] | undefined;
}

export type SkipCause =
  | "cooldown"
  | "context"
  | "tools"
  | "vision"
  | "json_schema"
  | "kind"
  | "budget"
  | "paid"
  /** The provider has no route for the request's endpoint: declared (`served_paths`) or learned from a 404/405. */
  | "endpoint";

export interface RouteCandidate {
  readonly deployment: Deployment;
  readonly score: number;
  /** Index of the requested name (in a comma list or fallback array) that brought this candidate in. */
  readonly group: number;
  /** The leaderboard the score was taken from (a meta model filter with `leaderboard:`); undefined: all boards. */
  readonly board?: string | undefined;
  /** This request would be the candidate's recovery probe: its score is `probeScore` (failures ignored). */
  readonly isProbe?: boolean;
  /** A suspect with an attempt in flight: placed after every other ready candidate of its group, whatever its score. */
  readonly isLastResort?: boolean;
  /**
   * It refused a feature of this request as not supported, not long ago: placed after every candidate that did not
   * (of every group), tried only when they all failed.
   */
  readonly refusedFeature?: FeatureRefusal;
}

export interface RouteSkip {
  readonly deployment: Deployment;
  readonly cause: SkipCause;
  readonly reason: string;
  readonly score: number;
  /** When the candidate becomes available again (cooldowns). */
  readonly untilMs?: number;
  /** For `cooldown` skips: why it cools (a 429-type limit, a parked key, an open circuit). */
  readonly cooldownCause?: CooldownCause;
  /** As in RouteCandidate: the leaderboard the score was taken from. */
  readonly board?: string | undefined;
  /**
   * The shared pool (one key's account-wide budget, `provider:NAME`) whose exhaustion left this candidate out:
   * every model of the pool is skipped together until `untilMs`.
   */
  readonly pool?: string | undefined;
  /** A `budget` skip for a full concurrency slot alone: `untilMs` is when the gateway looks again (budget-types.ts). */
  readonly isSlot?: true;
}

export interface RoutePlan {
  readonly requested: string;
  /** Ready candidates, best first. */
  readonly candidates: readonly RouteCandidate[];
  /** A cooling candidate worth waiting for (see `maxWaitForBetterMs`), tried first after `untilMs`. */
  readonly waitFor: (RouteCandidate & { readonly untilMs: number }) | undefined;
  readonly skipped: readonly RouteSkip[];
  /** Requested names that matched nothing (only reported; an error is raised when nothing matched at all). */
  readonly unknownNames: readonly string[];
}

export interface RouterContext {
  readonly catalog: Catalog;
  readonly metaModels: Readonly<Record<string, MetaModel>>;
  readonly routing: RoutingSettings;
  readonly nowMs: number;
  /** Current score of a deployment (static terms and live health). Higher is better. */
  score(deployment: Deployment): number;
  /**
   * The score with the leaderboard term taken from one board only (meta model filters with `leaderboard:`);
   * undefined when that board does not know the deployment.
   */
  scoreOnBoard?(deployment: Deployment, board: string): number | undefined;
  /**
   * Parameter count in billions as the score knows it (config, BigCodeBench, parsed from the id), for
   * `min_params_b` filters; without it only a configured `params_b` counts.
   */
  paramsB?(deployment: Deployment): number | undefined;
  /**
   * The prompt estimate for one deployment, calibrated from what its provider reported before
   * (limits/prompt-calibration.ts). Default: the estimate as it is.
   */
  promptTokensFor?(deployment: Deployment, estimatedTokens: number): number;
  /**
   * The context limits the fit check reads (context-fit.ts): the deployment's, or one shared window once a refusal
   * showed that its listed separate output limit counts against the input limit. Default: the deployment's.
   */
  contextLimitsFor?(deployment: Deployment): ContextLimits;
  /**
   * What the deployment refused, not long ago, of these features of the request (limits/refused-features.ts);
   * undefined: nothing. Side-effect free. Default: nothing learned.
   */
  refusedFeature?(deployment: Deployment, features: readonly RequestFeature[]): FeatureRefusal | undefined;
  /**
   * The lesson that this provider has no route for `endpointPath` (a 405 or a router's 404 not long ago,
   * limits/unserved-endpoints.ts); undefined: none. Side-effect free. Default: nothing learned.
   */
  unservedEndpoint?(deployment: Deployment, endpointPath: string): FeatureRefusal | undefined;
  /** Side-effect free availability check. */
  availability(deployment: Deployment): Availability;
  /**
   * The score of a candidate whose next request is its recovery probe: its failures ignored, so that the probe
   * is ranked in the candidate's place (below the fallback it would never happen). Default: `score`.
   */
  probeScore?(deployment: Deployment): number;
  /**
   * Budget pre-check; returns why and until when the deployment is over budget, or undefined. `pool`: the shared
   * scope that is empty, when it is the provider's account-wide pool rather than the deployment's own budget.
   */
  budgetCheck?(
    deployment: Deployment,
  ): { reason: string; untilMs: number; pool?: string | undefined; isSlot?: true } | undefined;
  /**
   * The shared pool a cooling deployment is skipped with (its key's account-wide cooldown), when it is one;
   * undefined for the deployment's own cooldown.
   */
  coolingPool?(deployment: Deployment): string | undefined;
  /** Uniform [0,1) random source for the `spread` strategy; injected so tests are deterministic. */
  random?(): number;
}
