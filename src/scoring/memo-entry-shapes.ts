// What a scoring memo entry (scoring-memo.ts) must look like to be used: the file is trusted for its stamps, not for
// its shape, and a start reads its entries' fields straight into scores. A corrupted or hand-edited entry (null, a
// string, a quality of 50 or "0.9") threw at the catalog build (the start failed) or went into a score as it was;
// one that fails these checks is a miss: computed again, as without the file, and written right by that start.
import { BOARD_NAMES } from "../config/scoring-schema.ts";
import { isRecord } from "../is-record.ts";
import type { LeaderboardQuality } from "./leaderboards.ts";
import type { ModelMetadata } from "./model-metadata.ts";
import type { QualityPrior } from "./quality-prior.ts";

/** What a profile reads from the shipped data (model-profile.ts): the memoised part. */
export interface DataFacts {
  readonly leaderboard: LeaderboardQuality;
  readonly bigCodeBenchSizeB: number | undefined;
  readonly metadata: ModelMetadata | undefined;
}

const MATCH_LEVELS: readonly unknown[] = ["exact", "tokens", "alias", "family"];
const METADATA_MATCHES: readonly unknown[] = ["provider", "bare", "alias"];
const CAPABILITIES = ["tools", "vision", "jsonSchema", "reasoning"] as const;

/** A profile's data facts: leaderboard quality and matches, BigCodeBench size, the model table's entry. */
export function isDataFacts(value: unknown): value is DataFacts {
  if (!isRecord(value) || !isOptionalPositive(value.bigCodeBenchSizeB)) return false;
  const { leaderboard, metadata } = value;
  if (!isRecord(leaderboard) || !isOptionalUnit(leaderboard.value) || !Array.isArray(leaderboard.matches)) return false;
  return leaderboard.matches.every(isMatch) && (metadata === undefined || isMetadata(metadata));
}

/** An unknown model's quality estimate before its age discount; undefined (stored as null) when there is none. */
export function isPriorEstimate(value: unknown): value is QualityPrior | undefined {
  if (value === undefined) return true;
  return (
    isRecord(value) &&
    isUnit(value.value) &&
    isUnit(value.cap) &&
    isOptionalPositive(value.capB) &&
    Array.isArray(value.basis) &&
    value.basis.every((line) => typeof line === "string")
  );
}

function isMatch(value: unknown): boolean {
  return (
    isRecord(value) &&
    BOARD_NAMES.some((board) => board === value.board) &&
    typeof value.row === "string" &&
    Array.isArray(value.rows) &&
    value.rows.every((row) => typeof row === "string") &&
    MATCH_LEVELS.includes(value.level) &&
    isUnit(value.normalised)
  );
}

function isMetadata(value: unknown): boolean {
  if (!isRecord(value) || typeof value.key !== "string" || !METADATA_MATCHES.includes(value.matchedBy)) return false;
  const { capabilities } = value;
  return (
    isOptionalString(value.litellmProvider) &&
    isOptionalString(value.mode) &&
    isOptionalPositive(value.contextTokens) &&
    isOptionalPositive(value.maxOutputTokens) &&
    isRecord(capabilities) &&
    CAPABILITIES.every((name) => typeof capabilities[name] === "boolean")
  );
}

/** A quality: 0..1 (boards are normalised to it, and so are the estimates from them). */
function isUnit(value: unknown): value is number {
  return typeof value === "number" && value >= 0 && value <= 1;
}

function isOptionalUnit(value: unknown): boolean {
  return value === undefined || isUnit(value);
}

function isOptionalPositive(value: unknown): boolean {
  return value === undefined || (typeof value === "number" && Number.isFinite(value) && value > 0);
}

function isOptionalString(value: unknown): boolean {
  return value === undefined || typeof value === "string";
}
