// `GET /v1/gateway/route?model=X` and `llm-gateway route X --explain`: the plan a request for X would get
// right now, with every score term and, for each candidate left out, why.
import { type Clock, isoTime } from "../clock.ts";
import type { ModelKind } from "../config/types.ts";
import { shownReason } from "../errors/shown-reason.ts";
import { isNeverFit } from "../limits/budget-types.ts";
import { learnedLimitsOf } from "../limits/learned-context.ts";
import type { FeatureSizes, RefusedFeatures } from "../limits/refused-features.ts";
import { outputTokensFor } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import {
  changesAnything,
  explainMessageOrdering,
  type MessageOrder,
  type MessageOrderSource,
  type PrefixHandling,
} from "../providers/message-order.ts";
import { boardQuality, type ModelProfile } from "../scoring/model-profile.ts";
import type { HealthPenaltyTerm, ScoreBreakdown } from "../scoring/score.ts";
import { type ContextLimits, contextFit, isSharedWindow } from "./context-fit.ts";
import type { RouteCandidate, RoutePlan, RouteRequest } from "./plan-route.ts";
import { featuresOfNeeds } from "./request-features.ts";

/** What an explanation reads: the live planner and scorer, and the current snapshot's profiles and settings. */
export interface RouteExplainSource {
  readonly snapshot: {
    readonly profiles: readonly ModelProfile[];
    readonly scoring: { readonly weights: { readonly MODEL_LEADERBOARD_SCORE_SCALAR: number } };
    readonly config: { readonly routing: { readonly strategy: string } };
  };
  plan(request: RouteRequest): RoutePlan;
  /** The prompt estimate as calibrated per deployment, as the plan's context check uses it. */
  readonly promptCalibration?: {
    promptTokensFor(deployment: { readonly key: string }, estimatedTokens: number): number;
    /** The limits the plan's context check reads (a window learned to be shared: PromptCalibration.limitsFor). */
    limitsFor(deployment: Deployment): ContextLimits;
  };
  /** `isProbe`: the terms as a recovery probe is ranked (its failures ignored). */
  explainScore(deployment: Deployment, options?: { readonly isProbe?: boolean }): ScoreBreakdown | undefined;
  /** The learned refusals (a learned role order, a refused `prefix`), read at `clock`'s time. */
  readonly refusedFeatures?: Pick<RefusedFeatures, "refusalOf">;
  readonly clock?: Clock;
}

export interface ExplainedTerm {
  readonly normalised: number;
  readonly weighted: number;
  readonly is_neutral: boolean;
}

/** Every term of a candidate's score: `score = base_priority × (priority + weighted terms) − health_penalty`. */
export interface ExplainedTerms {
  readonly base_priority: number;
  readonly priority: number;
  /**
   * With `board` set (a meta model filter with `leaderboard:`), the quality on that board only. `is_estimated`:
   * no board knows the model and the value is its prior, estimated from what `estimated_from` lists.
   */
  readonly leaderboard: ExplainedTerm & {
    readonly board: string | null;
    readonly is_estimated: boolean;
    readonly estimated_from: readonly string[] | null;
  };
  readonly params: ExplainedTerm;
  readonly context: ExplainedTerm;
  readonly adjustment: { readonly value: number; readonly weighted: number; readonly matched: readonly string[] };
  /**
   * The penalty as the ranking used it. `probe`: this request would be the candidate's recovery probe, ranked in
   * its place with its failures ignored (only latency counts); `reason` then says so and what the failures would
   * have cost. Either way the terms add up to `score`.
   */
  readonly health_penalty: {
    readonly weighted: number;
    readonly is_cold: boolean;
    readonly failure_rate: number | null;
    readonly latency: number | null;
    readonly probe: boolean;
    readonly reason: string | null;
  };
}

export interface ExplainedCandidate {
  readonly rank: number;
  readonly provider: string;
  readonly model: string;
  readonly upstream_id: string;
  readonly score: number;
  readonly terms: ExplainedTerms | null;
  readonly leaderboard_matches: readonly { board: string; row: string; normalised: number }[];
  /** The context window, or with a different `max_output_tokens` the prompt's own limit (context-fit.ts). */
  readonly context_tokens: number | null;
  /**
   * A smaller window one of the deployment's context-length refusals stated (limits/learned-context.ts): the plan
   * fits requests to `tokens` instead of `context_tokens` until the lesson ends; null when none holds.
   */
  readonly learned_context: { readonly tokens: number; readonly learned_at: string; readonly reason: string } | null;
  readonly max_output_tokens: number | null;
  /** `shared`: prompt + max_tokens must fit `context_tokens`; `separate`: the prompt alone; null: unknown. */
  readonly context_window: "shared" | "separate" | null;
  /** With `tokens=`: the numbers the context check compared (null without a prompt size or a known context). */
  readonly context_fit: string | null;
  readonly params_b: number | null;
  /** `free` or `paid` (config `cost`, `free_models`, presets); with `routing.paid: last_resort` paid ones come last. */
  readonly cost: "free" | "paid";
  /**
   * A suspect candidate with an attempt in flight: ranked after every other ready candidate of its group whatever
   * its score (docs/routing.md "Recovery").
   */
  readonly last_resort: boolean;
  /**
   * It refused a feature of this request as not supported (`tools`, `images`, `json_schema`, a parameter) not long
   * ago: ranked after every candidate that did not, until `until` (docs/routing.md "Learned refusals"). `min_entries`:
   * a refusal for its size, which holds for requests with at least that many entries of it (`parameters=stop:6`).
   */
  readonly refused_feature: { feature: string; reason: string; until: string; min_entries: number | null } | null;
  /**
   * The fields the config's `body:` rules change in what this candidate is sent (names only: a value in the config
   * is the operator's, not the client's to read); null without rules.
   */
  readonly body_rules: { defaults: string[]; override: string[]; drop: string[] } | null;
  /**
   * How this candidate's chat messages are rewritten before they are sent (docs/configuration.md "Message order"):
   * `order` (`strict`, `alternate`), where it comes from (`config`, `model_id`: a Mistral-family id, `learned`: a
   * refusal it answered, in `learned_from`), and `prefix`: `mark` (a trailing assistant gets `prefix: true`), `leave`
   * (sent as written), `remove` (the host refused the field). Null when the messages go as the client wrote them.
   */
  readonly message_order: {
    order: MessageOrder;
    source: MessageOrderSource;
    prefix: PrefixHandling;
    learned_from: string | null;
  } | null;
}

export interface RouteExplanation {
  readonly model: string;
  readonly kind: ModelKind;
  readonly strategy: string;
  readonly candidates: readonly ExplainedCandidate[];
  readonly wait_for: { provider: string; model: string; until: string } | null;
  readonly skipped: readonly {
    provider: string;
    model: string;
    cause: string;
    reason: string;
    until: string | null;
    score: number;
    cost: "free" | "paid";
    /** The account-wide pool (`provider:NAME`) skipped as a whole, or null for the candidate's own state. */
    pool: string | null;
  }[];
  readonly unknown_names: readonly string[];
}

export function explainRoute(
  runtime: RouteExplainSource,
  model: string,
  options: {
    kind?: ModelKind;
    /** The endpoint's upstream path (RouteRequest.endpointPath): a provider without that route is shown skipped. */
    endpointPath?: string;
    promptTokens?: number;
    /** The tokens fitted into a window when not `promptTokens` (RouteRequest.contextTokens): 0 for a rerank. */
    contextTokens?: number;
    /** The request's `max_tokens`: counted with the prompt where the output shares the context window. */
    maxOutputTokens?: number;
    /** A legacy `/v1/completions` request (`endpoint=completions`): `max_tokens` under the completions rules. */
    isLegacyCompletion?: boolean;
    /** An upload's seconds of audio (`audio_seconds=`): checked against the candidates' `ash`/`asd` budgets. */
    audioSeconds?: number;
    needsTools?: boolean;
    needsVision?: boolean;
    needsJsonSchema?: boolean;
    /** Body parameters the request would carry (`seed`, `parallel_tool_calls`): a candidate that refused one is last. */
    parameters?: readonly string[];
    /**
     * How many entries the array-valued ones hold (`parameters=stop:6`): a lesson about a size holds for requests at
     * least that large, as when a request is planned. A parameter without one: every lesson about it holds.
     */
    parameterSizes?: FeatureSizes;
    /** The asking client's own `paid` and `models` (server.api_keys): its requests' route, not everyone's. */
    paid?: RouteRequest["paid"];
    allowedModels?: RouteRequest["allowedModels"];
  } = {},
): RouteExplanation {
  const snapshot = runtime.snapshot;
  const kind = options.kind ?? "chat";
  const plan = runtime.plan({
    model,
    fallbackModels: [],
    kind,
    ...(options.endpointPath === undefined ? {} : { endpointPath: options.endpointPath }),
    ...(options.promptTokens === undefined ? {} : { promptTokens: options.promptTokens }),
    ...(options.contextTokens === undefined ? {} : { contextTokens: options.contextTokens }),
    // The query's `max_tokens` is a limit under that name: a rule overriding it counts instead (body-rules.ts).
    ...(options.maxOutputTokens === undefined
      ? {}
      : { maxOutputTokens: options.maxOutputTokens, outputLimitName: "max_tokens" as const }),
    ...(options.isLegacyCompletion === true ? { isLegacyCompletion: true } : {}),
    ...(options.audioSeconds === undefined ? {} : { audioSeconds: options.audioSeconds }),
    ...(options.needsTools === undefined ? {} : { needsTools: options.needsTools }),
    ...(options.needsVision === undefined ? {} : { needsVision: options.needsVision }),
    ...(options.needsJsonSchema === undefined ? {} : { needsJsonSchema: options.needsJsonSchema }),
    features: [...featuresOfNeeds(options), ...(options.parameters ?? [])],
    ...(options.parameterSizes === undefined ? {} : { featureSizes: options.parameterSizes }),
    paid: options.paid,
    allowedModels: options.allowedModels,
  });
  // The plan's check calibrates the prompt per deployment; the explanation shows the same numbers.
  const limitsOf = (deployment: Deployment): ContextLimits => {
    const limits = runtime.promptCalibration?.limitsFor(deployment) ?? deployment;
    const book = runtime.refusedFeatures;
    return book === undefined ? limits : learnedLimitsOf(limits, book, deployment.key, runtime.clock?.now() ?? 0);
  };
  const describeFit = (deployment: Deployment): string | null => {
    const fitted = options.contextTokens ?? options.promptTokens;
    // Nothing fitted (a rerank's requests: no context-fit check): no fit to describe.
    if (fitted === undefined || options.contextTokens === 0) return null;
    const prompt = runtime.promptCalibration?.promptTokensFor(deployment, fitted) ?? fitted;
    return (
      contextFit(
        limitsOf(deployment),
        prompt,
        outputTokensFor(deployment, options.maxOutputTokens ?? 0, "max_tokens", options.isLegacyCompletion),
      )?.description ?? null
    );
  };
  const learned = {
    refusalOf: (deployment: Deployment, features: readonly string[]) =>
      runtime.refusedFeatures?.refusalOf(deployment.key, features, runtime.clock?.now() ?? 0),
  };
  const messageOrderOf = (deployment: Deployment): ExplainedCandidate["message_order"] => {
    const ordering = explainMessageOrdering(deployment, learned);
    if (!changesAnything(ordering)) return null;
    return {
      order: ordering.order,
      source: ordering.source,
      prefix: ordering.prefix,
      learned_from: ordering.learnedFrom ?? null,
    };
  };
  const describe = (candidate: RouteCandidate, rank: number): ExplainedCandidate => {
    const { deployment, score, board } = candidate;
    const isProbe = candidate.isProbe === true;
    const limits = limitsOf(deployment);
    const breakdown = runtime.explainScore(deployment, { isProbe });
    const profile = snapshot.profiles[deployment.index];
    let terms: ExplainedTerms | null = null;
    if (breakdown !== undefined) {
      // A `leaderboard:` meta model ranks by that board alone (see GatewayRuntime.scoreOnBoard): show that term,
      // so that the terms add up to the score shown.
      const quality = board === undefined || profile === undefined ? undefined : boardQuality(profile, board);
      const leaderboard =
        quality === undefined
          ? breakdown.terms.leaderboard
          : {
              normalised: quality,
              weighted: quality * snapshot.scoring.weights.MODEL_LEADERBOARD_SCORE_SCALAR,
              isNeutral: false,
            };
      const health = breakdown.terms.healthPenalty;
      const isEstimated = quality === undefined && leaderboard.isEstimated === true;
      terms = {
        base_priority: breakdown.basePriority,
        priority: breakdown.terms.priority,
        leaderboard: {
          ...roundTerm(leaderboard),
          board: quality === undefined ? null : (board ?? null),
          is_estimated: isEstimated,
          estimated_from: isEstimated ? (profile?.prior?.basis ?? []) : null,
        },
        params: roundTerm(breakdown.terms.params),
        context: roundTerm(breakdown.terms.context),
        adjustment: {
          value: breakdown.terms.adjustment.value,
          weighted: round(breakdown.terms.adjustment.weighted),
          matched: profile?.adjustment.matched ?? [],
        },
        health_penalty: {
          weighted: round(health.weighted),
          is_cold: health.isCold,
          failure_rate: health.failureRate === undefined ? null : round(health.failureRate),
          latency: health.latencyNormalised === undefined ? null : round(health.latencyNormalised),
          probe: isProbe,
          reason: isProbe ? probeReason(runtime.explainScore(deployment)?.terms.healthPenalty) : null,
        },
      };
    }
    return {
      rank,
      provider: deployment.provider.settings.name,
      model: deployment.model.publicName,
      upstream_id: deployment.model.id,
      score: round(score),
      terms,
      leaderboard_matches: (profile?.leaderboard.matches ?? []).map((match) => ({
        board: match.board,
        row: match.row,
        normalised: round(match.normalised),
      })),
      context_tokens: deployment.contextTokens ?? null,
      learned_context: learnedContextOf(limits),
      max_output_tokens: deployment.maxOutputTokens ?? null,
      context_window: limits.contextTokens === undefined ? null : isSharedWindow(limits) ? "shared" : "separate",
      context_fit: describeFit(deployment),
      params_b: profile?.params?.valueB ?? null,
      cost: deployment.cost,
      last_resort: candidate.isLastResort === true,
      refused_feature:
        candidate.refusedFeature === undefined
          ? null
          : {
              feature: candidate.refusedFeature.feature,
              reason: shownReason(candidate.refusedFeature.reason),
              until: isoTime(candidate.refusedFeature.untilMs),
              min_entries: candidate.refusedFeature.minEntries ?? null,
            },
      body_rules:
        deployment.body === undefined
          ? null
          : {
              defaults: Object.keys(deployment.body.defaults),
              override: Object.keys(deployment.body.override),
              drop: [...deployment.body.drop],
            },
      message_order: messageOrderOf(deployment),
    };
  };
  return {
    model,
    kind,
    strategy: snapshot.config.routing.strategy,
    candidates: plan.candidates.map((candidate, index) => describe(candidate, index + 1)),
    wait_for:
      plan.waitFor === undefined
        ? null
        : {
            provider: plan.waitFor.deployment.provider.settings.name,
            model: plan.waitFor.deployment.model.publicName,
            until: isoTime(plan.waitFor.untilMs),
          },
    skipped: plan.skipped.map((skip) => ({
      provider: skip.deployment.provider.settings.name,
      model: skip.deployment.model.publicName,
      cause: skip.cause,
      reason: shownReason(skip.reason),
      // A never-fit budget skip has no time to give (Infinity is no date).
      until: skip.untilMs === undefined || isNeverFit(skip.untilMs) ? null : isoTime(skip.untilMs),
      score: round(skip.score),
      cost: skip.deployment.cost,
      pool: skip.pool ?? null,
    })),
    unknown_names: plan.unknownNames,
  };
}

/** Why a probe's penalty is smaller than its health would say: `usual` is the penalty outside a probe. */
function probeReason(usual: HealthPenaltyTerm | undefined): string {
  const cost =
    usual === undefined || usual.isCold
      ? ""
      : ` (failure rate ${round(usual.failureRate ?? 0)}, penalty ${round(usual.weighted)} outside a probe)`;
  return `recovery probe: ranked in its place with its recent failures ignored${cost}; only latency counts until the probe answers`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function roundTerm(term: { normalised: number; weighted: number; isNeutral: boolean }): ExplainedTerm {
  return { normalised: round(term.normalised), weighted: round(term.weighted), is_neutral: term.isNeutral };
}

function learnedContextOf({ learnedWindow }: ContextLimits): ExplainedCandidate["learned_context"] {
  if (learnedWindow === undefined) return null;
  return { tokens: learnedWindow.limitTokens, learned_at: isoTime(learnedWindow.atMs), reason: learnedWindow.reason };
}
