// Loads what the score needs: the shipped leaderboard snapshots and the model metadata table (on first use, see
// scoring-memo.ts) and the adjustments file (the `scoring:` config section itself is validated and resolved with the
// config). A missing or broken optional source costs only its score term (with a warning), never the start.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import type { GatewayConfig, ScoringConfig } from "../config/types.ts";
import { PROJECT_ROOT } from "../source-paths.ts";
import { type AdjustmentGroup, AdjustmentsFileError, loadAdjustments } from "./adjustments.ts";
import type { LeaderboardSet } from "./leaderboards.ts";
import type { ModelMetadataTable } from "./model-metadata.ts";
import type { ScoringSources } from "./model-profile.ts";
import { loadShippedScoringData, scoringDataFiles, stampsOf } from "./scoring-data-cache.ts";
import { MEMO_DERIVING_MODULES, ScoringMemo } from "./scoring-memo.ts";

export const LEADERBOARD_DIR = join(PROJECT_ROOT, "data", "leaderboards");
export const MODEL_METADATA_PATH = join(PROJECT_ROOT, "data", "model-metadata", "model_prices_and_context_window.json");
/**
 * The parsed and indexed form of the two above (scoring-data-cache.ts), in the default discovery cache folder of the
 * project itself (not of the working directory: it belongs to the shipped data), written by the first start.
 */
export const SCORING_DATA_CACHE_PATH = join(PROJECT_ROOT, "data", "cache", "scoring-data.json");
/** What the score derived from that data per model (scoring-memo.ts), beside it. */
export const SCORING_MEMO_PATH = join(PROJECT_ROOT, "data", "cache", "scoring-memo.json");
const SCORING_DATA_PATHS = {
  leaderboardDir: LEADERBOARD_DIR,
  metadataPath: MODEL_METADATA_PATH,
  cachePath: SCORING_DATA_CACHE_PATH,
};

export interface ScoringSettings extends ScoringConfig {
  /** `scoring.adjustments_file` resolved against the config file's folder (default `model-adjustments.yaml`). */
  readonly adjustmentsPath: string;
}

/** The `scoring:` section (validated with the config) plus the adjustments file's path. */
export function scoringSettings(config: GatewayConfig): ScoringSettings {
  const configDir =
    config.sourcePath === undefined || config.sourcePath.startsWith("<") ? process.cwd() : dirname(config.sourcePath);
  const file = config.scoring.adjustmentsFile;
  return {
    ...config.scoring,
    adjustmentsPath: file === undefined ? join(configDir, "model-adjustments.yaml") : resolve(configDir, file),
  };
}

interface SharedData {
  readonly leaderboards: LeaderboardSet;
  readonly metadata: ModelMetadataTable | undefined;
}

/** Leaderboards and metadata are the same for every config: loaded once per process, on first use. */
let sharedData: SharedData | undefined;
/** The memo of what the score derived from them (scoring-memo.ts), shared the same way. */
let sharedMemo: ScoringMemo | undefined;

/** Replaces the leaderboards every later snapshot uses (after a successful refresh). */
export function replaceLeaderboards(leaderboards: LeaderboardSet): void {
  sharedData = { leaderboards, metadata: loadSharedData().metadata };
  // The memo stands for the shipped boards: from now on every lookup runs on the refreshed ones (and is not kept).
  sharedMemo = ScoringMemo.open(undefined, undefined);
}

function loadSharedData(): SharedData {
  sharedData ??= loadShippedScoringData(SCORING_DATA_PATHS);
  return sharedData;
}

function memo(): ScoringMemo {
  sharedMemo ??= ScoringMemo.open(
    SCORING_MEMO_PATH,
    stampsOf([...scoringDataFiles(SCORING_DATA_PATHS), ...MEMO_DERIVING_MODULES]),
  );
  return sharedMemo;
}

/**
 * The sources of a snapshot's scores. The shipped data behind `leaderboards` and `metadata` is loaded when a score
 * first reads it, which a start whose lookups are all in the memo never does.
 */
export function loadScoringSources(settings: ScoringSettings): ScoringSources {
  const adjustments = readAdjustmentsFile(settings.adjustmentsPath, settings.adjustmentsFile !== undefined);
  return {
    get leaderboards() {
      return loadSharedData().leaderboards;
    },
    get metadata() {
      return loadSharedData().metadata;
    },
    memo: memo(),
    adjustments,
    boardWeights: settings.boardWeights,
  };
}

/**
 * The scoring adjustments file's groups; none when it does not exist, unless the config named it (`isNamed`). Throws
 * ConfigError with every problem of the file, each at its line.
 */
export function readAdjustmentsFile(path: string, isNamed: boolean): AdjustmentGroup[] {
  if (!existsSync(path)) {
    if (!isNamed) return [];
    throw new ConfigError([{ location: path, path: "scoring.adjustments_file", message: "file not found" }]);
  }
  try {
    return loadAdjustments(readFileSync(path, "utf8"), path);
  } catch (error) {
    if (!(error instanceof AdjustmentsFileError)) throw error;
    throw new ConfigError(error.issues);
  }
}
