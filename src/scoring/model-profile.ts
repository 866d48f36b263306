// Everything static the score needs about one provider+model, looked up once when the catalog is built and
// cached by the caller: leaderboard quality, parameters, context window, capabilities, adjustments, kind.
import { createHash } from "node:crypto";
import { type ModelKind, modelKind, normaliseModelName } from "../providers/model-names.ts";
import { type Adjustment, type AdjustmentGroup, adjustmentFor } from "./adjustments.ts";
import {
  type BoardName,
  bigCodeBenchSizeB,
  type LeaderboardQuality,
  type LeaderboardSet,
  leaderboardQuality,
} from "./leaderboards.ts";
import { type DataFacts, isDataFacts, isPriorEstimate } from "./memo-entry-shapes.ts";
import { lookupModelMetadata, type ModelCapabilities, type ModelMetadataTable } from "./model-metadata.ts";
import { type ResolvedParams, resolveParamsB } from "./params.ts";
import {
  estimateBeforeAge,
  familyOf,
  type KnownModel,
  priorPopulation,
  type QualityPrior,
  withAgeDiscount,
} from "./quality-prior.ts";
import { precomputeStaticScore, type ScoringWeights, type StaticScore } from "./score.ts";
import type { ScoringMemo } from "./scoring-memo.ts";

export interface ScoringSources {
  readonly leaderboards: LeaderboardSet;
  readonly metadata: ModelMetadataTable | undefined;
  readonly adjustments: readonly AdjustmentGroup[];
  /** Config `scoring.leaderboards`: weight per board; boards left out are not consulted. */
  readonly boardWeights: Readonly<Partial<Record<BoardName, number>>>;
  /** Lookups in `leaderboards` and `metadata` kept from an earlier start (scoring-memo.ts); without it, all run. */
  readonly memo?: ScoringMemo | undefined;
}

export interface ModelOverrides {
  /** Config `leaderboard_name`: the row name to match instead of the model id. */
  readonly leaderboardName?: string | undefined;
  /** Config `params_b`. */
  readonly paramsB?: number | undefined;
  /** A context window from config or from the provider's model list; beats the metadata table. */
  readonly contextTokens?: number | undefined;
  /** Config `max_output_tokens`; beats the output limit of whichever source gave the context. */
  readonly maxOutputTokens?: number | undefined;
}

export interface ModelProfile {
  readonly provider: string;
  readonly modelId: string;
  /** `normaliseModelName(modelId)`: the cross-provider alias. */
  readonly alias: string;
  readonly kind: ModelKind;
  readonly leaderboard: LeaderboardQuality;
  readonly params: ResolvedParams | undefined;
  readonly contextTokens: number | undefined;
  /**
   * The output limit: the override's, else the metadata table's when the context came from it too (a config or
   * discovered context is one shared window unless the config also states an output limit).
   */
  readonly maxOutputTokens: number | undefined;
  readonly contextSource: "override" | "metadata" | undefined;
  /** From the metadata table; undefined when the model is not in it. */
  readonly capabilities: ModelCapabilities | undefined;
  readonly metadataKey: string | undefined;
  readonly adjustment: Adjustment;
  /** No board knows the model: its estimated quality, which stands in for the leaderboard term. */
  readonly prior?: QualityPrior | undefined;
}

export function profileModel(
  sources: ScoringSources,
  provider: string,
  modelId: string,
  overrides: ModelOverrides = {},
): ModelProfile {
  const {
    leaderboard,
    bigCodeBenchSizeB: sizeB,
    metadata,
  } = remember(
    sources,
    ["profile", provider, modelId, overrides.leaderboardName ?? null, sortedWeights(sources.boardWeights)],
    () => dataFacts(sources, provider, modelId, overrides.leaderboardName),
    isDataFacts,
  );
  const params = resolveParamsB({ modelId, configParamsB: overrides.paramsB, bigCodeBenchSizeB: sizeB });
  const hasOverrideContext = overrides.contextTokens !== undefined && overrides.contextTokens > 0;
  const contextTokens = hasOverrideContext ? overrides.contextTokens : metadata?.contextTokens;
  const maxOutputTokens = overrides.maxOutputTokens ?? (hasOverrideContext ? undefined : metadata?.maxOutputTokens);
  return {
    provider,
    modelId,
    alias: normaliseModelName(modelId),
    kind: modelKind(modelId),
    leaderboard,
    params,
    contextTokens,
    maxOutputTokens,
    contextSource: hasOverrideContext ? "override" : contextTokens === undefined ? undefined : "metadata",
    capabilities: metadata?.capabilities,
    metadataKey: metadata?.key,
    adjustment: adjustmentFor(sources.adjustments, modelId),
  };
}

function dataFacts(
  sources: ScoringSources,
  provider: string,
  modelId: string,
  leaderboardName: string | undefined,
): DataFacts {
  return {
    leaderboard: leaderboardQuality(sources.leaderboards, modelId, {
      weights: sources.boardWeights,
      ...(leaderboardName === undefined ? {} : { leaderboardName }),
    }),
    bigCodeBenchSizeB: bigCodeBenchSizeB(sources.leaderboards, modelId, leaderboardName),
    metadata: sources.metadata === undefined ? undefined : lookupModelMetadata(sources.metadata, modelId, { provider }),
  };
}

function remember<T>(
  sources: ScoringSources,
  key: readonly unknown[],
  compute: () => T,
  isValid: (value: unknown) => value is T,
): T {
  return sources.memo === undefined ? compute() : sources.memo.remember(key, compute, isValid);
}

/** The weights sorted by board name: part of a memo key, whatever order the config wrote them in. */
function sortedWeights(weights: Readonly<Partial<Record<BoardName, number>>>): [string, number | undefined][] {
  return Object.keys(weights)
    .sort()
    .map((board) => [board, weights[board as BoardName]]);
}

/**
 * The profiles with a quality prior for every chat model no board knows, estimated against the boards' rows and
 * the deployments a board did match (docs/scoring.md "Unknown models"). `nowMs` dates the age discount.
 */
export function withQualityPriors(
  profiles: readonly ModelProfile[],
  sources: ScoringSources,
  nowMs: number,
): ModelProfile[] {
  if (profiles.every((profile) => profile.leaderboard.value !== undefined || profile.kind !== "chat")) {
    return [...profiles];
  }
  const measured: KnownModel[] = profiles.flatMap((profile) =>
    profile.leaderboard.value === undefined
      ? []
      : [
          {
            name: profile.modelId,
            quality: profile.leaderboard.value,
            paramsB: profile.params?.valueB,
            family: familyOf(profile.modelId),
            provider: profile.provider,
          },
        ],
  );
  // Built only when an estimate is not in the memo: it reads every row of every board.
  let population: KnownModel[] | undefined;
  // The estimates depend on the whole population: its inputs, hashed, are part of every key.
  const populationKey = createHash("sha256")
    .update(JSON.stringify([sortedWeights(sources.boardWeights), measured]))
    .digest("base64url");
  return profiles.map((profile) => {
    if (profile.leaderboard.value !== undefined || profile.kind !== "chat") return profile;
    const target = { provider: profile.provider, modelId: profile.modelId, paramsB: profile.params?.valueB };
    const estimate = remember(
      sources,
      ["prior", target.provider, target.modelId, target.paramsB ?? null, populationKey],
      () => {
        population ??= priorPopulation(sources.leaderboards, sources.boardWeights, measured);
        return estimateBeforeAge(target, population);
      },
      isPriorEstimate,
    );
    return estimate === undefined ? profile : { ...profile, prior: withAgeDiscount(estimate, profile.modelId, nowMs) };
  });
}

export interface PriorityInput {
  readonly basePriority: number;
  readonly priority: number;
}

/** The static part of the score for a profile; the router adds live health with `scoreWithHealth`. */
export function staticScoreFor(profile: ModelProfile, priorities: PriorityInput, weights: ScoringWeights): StaticScore {
  return precomputeStaticScore(
    {
      basePriority: priorities.basePriority,
      priority: priorities.priority,
      leaderboard: profile.leaderboard.value ?? profile.prior?.value,
      isLeaderboardEstimated: profile.leaderboard.value === undefined && profile.prior !== undefined,
      paramsB: profile.params?.valueB,
      contextTokens: profile.contextTokens,
      adjustment: profile.adjustment.total,
    },
    weights,
  );
}

/**
 * A deployment's leaderboard quality (0..1) on one board, or on every variant of an alias (`bigcodebench` covers
 * `bigcodebench_full` and `bigcodebench_hard`): the mean of the matched rows; undefined when the board does not
 * know the model.
 */
export function boardQuality(profile: ModelProfile, board: string): number | undefined {
  const matches = profile.leaderboard.matches.filter(
    (match) => match.board === board || match.board.startsWith(`${board}_`),
  );
  if (matches.length === 0) return undefined;
  return matches.reduce((sum, match) => sum + match.normalised, 0) / matches.length;
}
