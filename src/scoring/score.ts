// The candidate score:
//   score = base_priority × (priority + Σ SCALAR·term + MODEL_ADJUSTMENT_SCALAR·adjustments) − health penalty
// with each term normalised to 0..1 first. Everything but health is static per provider+model, so it is
// computed once (`precomputeStaticScore`) and a request only adds live health (`scoreWithHealth`).
// Every term, unit and default is described in docs/scoring.md.

import { DEFAULT_SCORING_WEIGHTS, type ScoringWeights } from "../config/scoring-schema.ts";

// The weights, their units and defaults are part of the `scoring:` config section.
export { DEFAULT_SCORING_WEIGHTS, type ScoringWeights };

/** The parameter range the log scale spans: 1B -> 0, 1000B -> 1. */
const PARAMS_LOG_CEILING = Math.log2(1000);
/** The context range the log scale spans: 4096 tokens -> 0, 1 048 576 tokens -> 1. */
const CONTEXT_LOG_FLOOR = Math.log2(4096);
const CONTEXT_LOG_CEILING = Math.log2(1_048_576);

function clamp01(value: number): number {
  return Math.min(Math.max(value, 0), 1);
}

/** log2(params)/log2(1000), clamped: 1B -> 0, 8B -> 0.30, 70B -> 0.62, 405B -> 0.87, 1000B+ -> 1. */
export function normaliseParams(paramsB: number): number {
  return paramsB > 0 ? clamp01(Math.log2(paramsB) / PARAMS_LOG_CEILING) : 0;
}

/** Log scale from 4k to 1M tokens, clamped: 8k -> 0.125, 32k -> 0.375, 128k -> 0.625, 1M+ -> 1. */
export function normaliseContext(tokens: number): number {
  return tokens > 0 ? clamp01((Math.log2(tokens) - CONTEXT_LOG_FLOOR) / (CONTEXT_LOG_CEILING - CONTEXT_LOG_FLOOR)) : 0;
}

export interface ScoreTerm {
  /** The term on its 0..1 scale (the neutral value when unknown). */
  readonly normalised: number;
  /** Its contribution before base priority: scalar × normalised. */
  readonly weighted: number;
  /** The input was unknown and the neutral value stood in. */
  readonly isNeutral: boolean;
  /** The input was estimated (the leaderboard prior of an unmeasured model), not measured. */
  readonly isEstimated?: boolean;
}

export interface StaticScoreInput {
  /** Provider multiplier (config `base_priority`), default 1 at the config layer. */
  readonly basePriority: number;
  /** Per model+provider points (config `priority`). */
  readonly priority: number;
  /** Leaderboard quality 0..1, undefined when no board matched. */
  readonly leaderboard: number | undefined;
  /** `leaderboard` is an estimate (quality-prior.ts), not a board's measurement. */
  readonly isLeaderboardEstimated?: boolean;
  readonly paramsB: number | undefined;
  readonly contextTokens: number | undefined;
  /** Summed adjustment priorities (points). */
  readonly adjustment: number;
}

export interface StaticScore {
  readonly basePriority: number;
  readonly priority: number;
  readonly leaderboard: ScoreTerm;
  readonly params: ScoreTerm;
  readonly context: ScoreTerm;
  readonly adjustment: { readonly value: number; readonly weighted: number };
  /** basePriority × (priority + weighted terms + weighted adjustment): the score of a healthy candidate. */
  readonly staticTotal: number;
}

export interface HealthInput {
  readonly successEwma?: number;
  readonly latencyEwmaMs?: number;
  readonly samples: number;
}

export interface HealthPenaltyTerm {
  /** Points subtracted from the score (after base priority). */
  readonly weighted: number;
  /** 1 − successEwma, or undefined when cold or unknown. */
  readonly failureRate: number | undefined;
  /** Latency on its 0..1 log scale, or undefined when cold or unknown. */
  readonly latencyNormalised: number | undefined;
  /** Fewer samples than HEALTH_MIN_SAMPLES: not penalised. */
  readonly isCold: boolean;
}

export interface ScoreInput extends StaticScoreInput {
  readonly health: HealthInput;
}

export interface ScoreBreakdown {
  readonly total: number;
  readonly terms: {
    readonly priority: number;
    readonly leaderboard: ScoreTerm;
    readonly params: ScoreTerm;
    readonly context: ScoreTerm;
    readonly adjustment: { readonly value: number; readonly weighted: number };
    readonly healthPenalty: HealthPenaltyTerm;
  };
  readonly basePriority: number;
}

function term(
  value: number | undefined,
  normalise: (value: number) => number,
  neutral: number,
  scalar: number,
): ScoreTerm {
  const isNeutral = value === undefined || !Number.isFinite(value);
  const normalised = isNeutral ? clamp01(neutral) : normalise(value);
  return { normalised, weighted: scalar * normalised, isNeutral };
}

/** Everything but health: computed once per provider+model when the catalog is built. */
export function precomputeStaticScore(input: StaticScoreInput, weights: ScoringWeights): StaticScore {
  const measured = term(
    input.leaderboard,
    clamp01,
    weights.NEUTRAL_LEADERBOARD,
    weights.MODEL_LEADERBOARD_SCORE_SCALAR,
  );
  const leaderboard: ScoreTerm =
    input.isLeaderboardEstimated === true && !measured.isNeutral ? { ...measured, isEstimated: true } : measured;
  const params = term(input.paramsB, normaliseParams, weights.NEUTRAL_PARAMS, weights.MODEL_PARAM_SCORE_SCALAR);
  const context = term(input.contextTokens, normaliseContext, weights.NEUTRAL_CONTEXT, weights.MODEL_CTX_SCORE_SCALAR);
  const adjustment = { value: input.adjustment, weighted: input.adjustment * weights.MODEL_ADJUSTMENT_SCALAR };
  const inner = input.priority + leaderboard.weighted + params.weighted + context.weighted + adjustment.weighted;
  return {
    basePriority: input.basePriority,
    priority: input.priority,
    leaderboard,
    params,
    context,
    adjustment,
    staticTotal: input.basePriority * inner,
  };
}

/**
 * Points to subtract for poor health: HEALTH_PENALTY_SCALAR × failure rate + HEALTH_LATENCY_PENALTY_SCALAR ×
 * latency on a log scale between the floor and the ceiling. Zero while cold, so new candidates get tried.
 */
export function healthPenalty(health: HealthInput, weights: ScoringWeights): HealthPenaltyTerm {
  if (!(health.samples >= weights.HEALTH_MIN_SAMPLES)) {
    return { weighted: 0, failureRate: undefined, latencyNormalised: undefined, isCold: true };
  }
  const failureRate = health.successEwma === undefined ? undefined : clamp01(1 - health.successEwma);
  const latencyNormalised =
    health.latencyEwmaMs === undefined ? undefined : normaliseLatency(health.latencyEwmaMs, weights);
  const weighted =
    weights.HEALTH_PENALTY_SCALAR * (failureRate ?? 0) +
    weights.HEALTH_LATENCY_PENALTY_SCALAR * (latencyNormalised ?? 0);
  return { weighted, failureRate, latencyNormalised, isCold: false };
}

function normaliseLatency(latencyMs: number, weights: ScoringWeights): number {
  if (latencyMs <= weights.HEALTH_LATENCY_FLOOR_MS) return 0;
  const span = Math.log2(weights.HEALTH_LATENCY_CEILING_MS / weights.HEALTH_LATENCY_FLOOR_MS);
  return span > 0 ? clamp01(Math.log2(latencyMs / weights.HEALTH_LATENCY_FLOOR_MS) / span) : 1;
}

/** The hot path: a precomputed static score minus the live health penalty. No allocation. */
export function scoreWithHealth(staticScore: StaticScore, health: HealthInput, weights: ScoringWeights): number {
  if (!(health.samples >= weights.HEALTH_MIN_SAMPLES)) return staticScore.staticTotal;
  const failure = health.successEwma === undefined ? 0 : clamp01(1 - health.successEwma);
  const latency = health.latencyEwmaMs === undefined ? 0 : normaliseLatency(health.latencyEwmaMs, weights);
  return (
    staticScore.staticTotal - weights.HEALTH_PENALTY_SCALAR * failure - weights.HEALTH_LATENCY_PENALTY_SCALAR * latency
  );
}

/** The full breakdown, for route explanations; `total` equals `scoreWithHealth` on the same inputs. */
export function scoreCandidate(input: ScoreInput, weights: ScoringWeights = DEFAULT_SCORING_WEIGHTS): ScoreBreakdown {
  return explainScore(precomputeStaticScore(input, weights), input.health, weights);
}

export function explainScore(staticScore: StaticScore, health: HealthInput, weights: ScoringWeights): ScoreBreakdown {
  const penalty = healthPenalty(health, weights);
  return {
    total: staticScore.staticTotal - penalty.weighted,
    basePriority: staticScore.basePriority,
    terms: {
      priority: staticScore.priority,
      leaderboard: staticScore.leaderboard,
      params: staticScore.params,
      context: staticScore.context,
      adjustment: staticScore.adjustment,
      healthPenalty: penalty,
    },
  };
}
