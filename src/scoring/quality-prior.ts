// A fair prior for a model no leaderboard knows: its quality estimated from what is known about it (its size, its
// family, its release date, its provider's other models) instead of the neutral 0.5, which ranked names nobody
// has measured above known, decent models. Never above the median of known models of its size. Pure: the
// population is built from data handed in, time comes from the caller's clock. Rules in docs/scoring.md.
import { normaliseModelName } from "../providers/model-names.ts";
import type { BoardName, LeaderboardSet } from "./leaderboards.ts";
import { parseParamsB } from "./params.ts";

/** One model whose quality is measured: a leaderboard row, or a deployment a leaderboard matched. */
export interface KnownModel {
  readonly name: string;
  /** Leaderboard quality, 0..1. */
  readonly quality: number;
  readonly paramsB: number | undefined;
  /** `family` of the name (below). */
  readonly family: string | undefined;
  /** Set for deployments of the catalog: whose other models these are. */
  readonly provider?: string | undefined;
}

export interface PriorTarget {
  readonly provider: string;
  readonly modelId: string;
  readonly paramsB: number | undefined;
}

export interface QualityPrior {
  /** The estimated quality, 0..1. */
  readonly value: number;
  /** What it was estimated from, one phrase each, for explanations. */
  readonly basis: readonly string[];
  /** The ceiling applied: the median of known models of its size (or of all known models when its size is unknown). */
  readonly capB: number | undefined;
  readonly cap: number;
}

/** A size band holds the known models within this factor of the target's size (log2 distance ≤ 1). */
const SIZE_BAND_LOG2 = 1;
/** Too few models in the band: widen it once to ×4. */
const WIDE_SIZE_BAND_LOG2 = 2;
/** Fewer known models than this do not make a median worth using for a signal. */
const MIN_SAMPLES = 3;
/** A model released longer ago than this starts losing to newer ones of its size. */
const AGE_GRACE_MS = 548 * 86_400_000; // 18 months
/** Each further year costs this share of the estimate … */
const AGE_PENALTY_PER_YEAR = 0.1;
/** … but never more than this in all. */
const MAX_AGE_PENALTY = 0.3;
const YEAR_MS = 365.25 * 86_400_000;
/**
 * What being unmeasured costs: the boards list the models people use and talk about, so a name none of them
 * lists is more often an obscure or niche model than a hidden gem. Without it a model nobody measured sits at
 * its size's median, above known models of that size that are merely below average. 15 % puts an unmeasured
 * model of a common size at about the 40th percentile of the known models of that size (32B and 70B against the
 * shipped boards): below `qwen-2.5-coder-32b` (0.46), the example of a known, decent model it outranked.
 */
const UNMEASURED_DISCOUNT = 0.15;

/**
 * The family of a model name: the first word of its normalised name (`llama`, `qwen`, `gemma`, `mistral`,
 * `deepseek`), or undefined when that word is a number or too short to mean a lineage.
 */
export function familyOf(name: string): string | undefined {
  const first = normaliseModelName(name).split(/[-.]/)[0] ?? "";
  const word = /^[a-z]+/.exec(first)?.[0];
  return word === undefined || word.length < 2 ? undefined : word;
}

/**
 * The release month written in an id, as epoch ms: a full date (`20240806`, `2024-08-06`) or a `YYMM` snapshot
 * 2301–2912 (`mistral-small-2503`). Undefined when the id carries none.
 */
export function releaseDateOf(modelId: string): number | undefined {
  const id = modelId.toLowerCase();
  const full = /(?:^|[^\d])(20[2-3]\d)-?(0[1-9]|1[0-2])-?([0-3]\d)(?:$|[^\d])/.exec(id);
  if (full?.[1] !== undefined && full[2] !== undefined) return Date.UTC(Number(full[1]), Number(full[2]) - 1, 1);
  const yymm = /(?:^|[-_:])(2[3-9])(0[1-9]|1[0-2])(?:$|[-_:])/.exec(id);
  if (yymm?.[1] !== undefined && yymm[2] !== undefined) {
    return Date.UTC(2000 + Number(yymm[1]), Number(yymm[2]) - 1, 1);
  }
  return undefined;
}

/**
 * Every measured model the estimate may compare with: each row of every board with a positive weight (its size
 * parsed from its name, as for ids) and each catalog deployment a board matched (its combined quality).
 */
export function priorPopulation(
  leaderboards: LeaderboardSet,
  weights: Readonly<Partial<Record<BoardName, number>>>,
  deployments: readonly KnownModel[],
): KnownModel[] {
  const population: KnownModel[] = [...deployments];
  for (const [name, board] of leaderboards.boards) {
    if (!((weights[name] ?? 0) > 0)) continue;
    for (const row of board.rows) {
      population.push({
        name: row.name,
        quality: row.normalised,
        paramsB: parseParamsB(row.name),
        family: familyOf(row.name),
      });
    }
  }
  return population;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function sizeBand(population: readonly KnownModel[], paramsB: number): { band: KnownModel[]; widthLog2: number } {
  for (const widthLog2 of [SIZE_BAND_LOG2, WIDE_SIZE_BAND_LOG2]) {
    const band = population.filter(
      (known) =>
        known.paramsB !== undefined && known.paramsB > 0 && Math.abs(Math.log2(known.paramsB / paramsB)) <= widthLog2,
    );
    if (band.length >= MIN_SAMPLES || widthLog2 === WIDE_SIZE_BAND_LOG2) return { band, widthLog2 };
  }
  return { band: [], widthLog2: WIDE_SIZE_BAND_LOG2 };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * The estimate: the mean of the medians that are known (models of its size, of its family, of its provider),
 * less 15 % for being unmeasured, less an age discount when its id dates it more than 18 months before `nowMs`,
 * and never above the median of
 * known models of its size (of all known models when its size is unknown). Undefined when nothing is measured.
 */
export function estimateQuality(
  target: PriorTarget,
  population: readonly KnownModel[],
  nowMs: number,
): QualityPrior | undefined {
  const estimate = estimateBeforeAge(target, population);
  return estimate === undefined ? undefined : withAgeDiscount(estimate, target.modelId, nowMs);
}

/**
 * The estimate up to its age discount and cap (`value` not capped yet): what the population tells, which the scoring
 * memo keeps, while the age discount moves with the clock.
 */
export function estimateBeforeAge(target: PriorTarget, population: readonly KnownModel[]): QualityPrior | undefined {
  const overall = median(population.map((known) => known.quality));
  if (overall === undefined) return undefined;
  const signals: number[] = [];
  const basis: string[] = [];
  let cap = overall;
  let capB: number | undefined;

  if (target.paramsB !== undefined && target.paramsB > 0) {
    const { band, widthLog2 } = sizeBand(population, target.paramsB);
    const sizeMedian = median(band.map((known) => known.quality));
    if (sizeMedian !== undefined) {
      signals.push(sizeMedian);
      cap = sizeMedian;
      capB = target.paramsB;
      const factor = 2 ** widthLog2;
      basis.push(
        `size ${target.paramsB}B: median ${round(sizeMedian)} of ${band.length} known models within ×${factor}`,
      );
    }
  }
  const family = familyOf(target.modelId);
  if (family !== undefined) {
    const relatives = population.filter((known) => known.family === family);
    const familyMedian = median(relatives.map((known) => known.quality));
    if (familyMedian !== undefined && relatives.length >= MIN_SAMPLES) {
      signals.push(familyMedian);
      basis.push(`family ${family}: median ${round(familyMedian)} of ${relatives.length} known models`);
    }
  }
  const siblings = population.filter((known) => known.provider === target.provider);
  const providerMedian = median(siblings.map((known) => known.quality));
  if (providerMedian !== undefined) {
    signals.push(providerMedian);
    basis.push(`provider ${target.provider}: median ${round(providerMedian)} of its ${siblings.length} known models`);
  }
  if (signals.length === 0) {
    signals.push(overall);
    basis.push(`median ${round(overall)} of all ${population.length} known models`);
  }
  const value = (signals.reduce((sum, signal) => sum + signal, 0) / signals.length) * (1 - UNMEASURED_DISCOUNT);
  basis.push(`−${Math.round(UNMEASURED_DISCOUNT * 100)} % for being unmeasured`);
  return { value, basis, capB, cap };
}

/** The age discount, then the cap (of `estimateBeforeAge`). */
export function withAgeDiscount(estimate: QualityPrior, modelId: string, nowMs: number): QualityPrior {
  const { capB, cap } = estimate;
  let value = estimate.value;
  const basis = [...estimate.basis];

  const releasedMs = releaseDateOf(modelId);
  if (releasedMs !== undefined && nowMs - releasedMs > AGE_GRACE_MS) {
    const years = (nowMs - releasedMs - AGE_GRACE_MS) / YEAR_MS;
    const penalty = Math.min(MAX_AGE_PENALTY, AGE_PENALTY_PER_YEAR * years);
    value *= 1 - penalty;
    basis.push(`released ${new Date(releasedMs).toISOString().slice(0, 7)}: −${Math.round(penalty * 100)} % for age`);
  }
  if (value > cap) {
    value = cap;
    basis.push(
      capB === undefined
        ? `capped at the median of all known models (${round(cap)})`
        : `capped at the median of known models of its size (${round(cap)})`,
    );
  }
  return { value, basis, capB, cap };
}
