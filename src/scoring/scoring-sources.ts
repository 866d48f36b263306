// Loads what the score needs at startup: the shipped leaderboard snapshots, the model metadata table and the
// adjustments file; and turns the `scoring:` config section into weights. A missing or broken optional source
// costs only its score term (with a warning), never the start.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError, type ConfigIssue } from "../config/config-error.ts";
import type { GatewayConfig } from "../config/types.ts";
import { type AdjustmentGroup, AdjustmentsFileError, loadAdjustments } from "./adjustments.ts";
import {
  BOARD_NAMES,
  type BoardName,
  DEFAULT_BOARD_WEIGHTS,
  type LeaderboardSet,
  loadLeaderboards,
} from "./leaderboards.ts";
import { loadModelMetadata, type ModelMetadataTable } from "./model-metadata.ts";
import type { ScoringSources } from "./model-profile.ts";
import { DEFAULT_SCORING_WEIGHTS, type ScoringWeights } from "./score.ts";

/** The project root (two levels above this file): shipped data lives in `data/`. */
const PROJECT_ROOT = resolve(import.meta.dirname, "..", "..");
export const LEADERBOARD_DIR = join(PROJECT_ROOT, "data", "leaderboards");
export const MODEL_METADATA_PATH = join(PROJECT_ROOT, "data", "model-metadata", "model_prices_and_context_window.json");

/** Short names accepted in `scoring.leaderboards`. */
const BOARD_ALIASES: Readonly<Record<string, readonly BoardName[]>> = {
  bigcodebench: ["bigcodebench_full", "bigcodebench_hard"],
  aider: ["aider_polyglot"],
  lmarena: ["lmarena_text"],
  ...Object.fromEntries(BOARD_NAMES.map((name) => [name, [name]])),
};

const weightKeys = Object.keys(DEFAULT_SCORING_WEIGHTS) as (keyof ScoringWeights)[];

export const scoringSectionSchema = z.strictObject({
  ...Object.fromEntries(weightKeys.map((key) => [key, z.number().optional()])),
  leaderboards: z.union([z.array(z.string()), z.record(z.string(), z.number().nonnegative())]).optional(),
  adjustments_file: z.string().optional(),
  /** Base URL serving the same files as data/leaderboards/ (same relative paths); fetched in the background. */
  leaderboard_refresh_url: z.url({ protocol: /^https?$/ }).optional(),
  /** ms between refreshes from that URL; default 24 h. */
  leaderboard_refresh_interval_ms: z.number().int().positive().optional(),
  health_half_life_ms: z.number().int().positive().optional(),
});

export interface ScoringSettings {
  readonly weights: ScoringWeights;
  readonly boardWeights: Readonly<Partial<Record<BoardName, number>>>;
  readonly adjustmentsPath: string | undefined;
  readonly healthHalfLifeMs: number | undefined;
  readonly leaderboardRefreshUrl: string | undefined;
  readonly leaderboardRefreshIntervalMs: number;
}

/** Validates `scoring:` (the config schema leaves it open so this module owns its keys). */
export function scoringSettings(config: GatewayConfig): ScoringSettings {
  const parsed = scoringSectionSchema.safeParse(config.scoring);
  const locate = keyLocator(config.sourcePath);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.flatMap((issue): ConfigIssue[] => {
        const path = ["scoring", ...issue.path.map(String)];
        if (issue.code === "unrecognized_keys") {
          // One line per unknown key, each at its own line, like the rest of the config's errors.
          return issue.keys.map((key) => ({
            location: locate([...path, key]),
            path: [...path, key].join("."),
            message: `unknown key; known: ${[...weightKeys, "leaderboards", "adjustments_file", "health_half_life_ms"].join(", ")}`,
          }));
        }
        return [{ location: locate(path), path: path.join("."), message: issue.message }];
      }),
    );
  }
  const section = parsed.data as Record<string, unknown> & z.infer<typeof scoringSectionSchema>;
  const weights = { ...DEFAULT_SCORING_WEIGHTS };
  for (const key of weightKeys) {
    const value = section[key];
    if (typeof value === "number") weights[key] = value;
  }
  let boardWeights: Partial<Record<BoardName, number>> = { ...DEFAULT_BOARD_WEIGHTS };
  if (section.leaderboards !== undefined) {
    boardWeights = {};
    const entries = Array.isArray(section.leaderboards)
      ? section.leaderboards.map((name) => [name, 1] as const)
      : Object.entries(section.leaderboards);
    const issues: ConfigIssue[] = [];
    entries.forEach(([name, weight], position) => {
      const boards = BOARD_ALIASES[name];
      if (boards === undefined) {
        const path = Array.isArray(section.leaderboards) ? String(position) : name;
        issues.push({
          location: locate(["scoring", "leaderboards", path]),
          path: `scoring.leaderboards.${path}`,
          message: `unknown leaderboard "${name}"; known: ${Object.keys(BOARD_ALIASES).join(", ")}`,
        });
        return;
      }
      for (const board of boards) boardWeights[board] = weight;
    });
    if (issues.length > 0) throw new ConfigError(issues);
  }
  const configDir =
    config.sourcePath === undefined || config.sourcePath.startsWith("<") ? process.cwd() : dirname(config.sourcePath);
  const adjustmentsPath =
    section.adjustments_file === undefined
      ? join(configDir, "model-adjustments.yaml")
      : resolve(configDir, section.adjustments_file);
  return {
    weights,
    boardWeights,
    adjustmentsPath,
    healthHalfLifeMs: section.health_half_life_ms,
    leaderboardRefreshUrl: section.leaderboard_refresh_url,
    leaderboardRefreshIntervalMs: section.leaderboard_refresh_interval_ms ?? 86_400_000,
  };
}

/**
 * `file:line` of a key path in the config file, for errors found after loading (the config loader's line map is
 * gone by then); just the file when the file or the key cannot be found.
 */
function keyLocator(sourcePath: string | undefined): (path: readonly string[]) => string {
  const where = sourcePath ?? "<config>";
  if (sourcePath === undefined || sourcePath.startsWith("<") || !existsSync(sourcePath)) return () => where;
  const lineCounter = new LineCounter();
  const document = parseDocument(readFileSync(sourcePath, "utf8"), { lineCounter });
  return (path) => {
    let node: unknown = document.contents;
    let offset: number | undefined;
    for (const key of path) {
      let keyNode: unknown;
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
        keyNode = pair?.key;
        node = pair?.value;
      } else if (isSeq(node)) {
        keyNode = node.items[Number(key)];
        node = keyNode;
      } else break;
      const start = isNode(keyNode) ? keyNode.range?.[0] : undefined;
      if (start === undefined) break;
      offset = start;
    }
    return offset === undefined ? where : `${where}:${lineCounter.linePos(offset).line}`;
  };
}

let sharedData: Promise<{ leaderboards: LeaderboardSet; metadata: ModelMetadataTable | undefined }> | undefined;

/** Replaces the leaderboards every later snapshot uses (after a successful refresh). */
export function replaceLeaderboards(leaderboards: LeaderboardSet): void {
  const previous = loadSharedData();
  sharedData = previous.then(({ metadata }) => ({ leaderboards, metadata }));
}

/** Leaderboards and metadata are the same for every config: loaded once per process. */
function loadSharedData(): Promise<{ leaderboards: LeaderboardSet; metadata: ModelMetadataTable | undefined }> {
  sharedData ??= (async () => {
    const [leaderboards, metadata] = await Promise.all([
      loadLeaderboards(LEADERBOARD_DIR).catch(
        (): LeaderboardSet => ({ boards: new Map(), bigCodeBenchSizes: undefined }),
      ),
      loadModelMetadata(MODEL_METADATA_PATH).catch(() => undefined),
    ]);
    return { leaderboards, metadata };
  })();
  return sharedData;
}

export async function loadScoringSources(
  settings: ScoringSettings,
  isAdjustmentsFileExplicit: boolean,
): Promise<ScoringSources> {
  const { leaderboards, metadata } = await loadSharedData();
  let adjustments: AdjustmentGroup[] = [];
  const path = settings.adjustmentsPath;
  if (path !== undefined && existsSync(path)) {
    try {
      adjustments = loadAdjustments(readFileSync(path, "utf8"), path);
    } catch (error) {
      if (error instanceof AdjustmentsFileError) {
        // Each issue already starts with `file[:line]: `; keep that as the location instead of repeating the file.
        throw new ConfigError(
          error.issues.map((issue) => {
            const rest = issue.startsWith(path) ? issue.slice(path.length) : undefined;
            const line = rest === undefined ? undefined : /^(:\d+)?: /.exec(rest);
            return rest === undefined || line === null || line === undefined
              ? { location: path, path: "", message: issue }
              : { location: `${path}${line[1] ?? ""}`, path: "", message: rest.slice(line[0].length) };
          }),
        );
      }
      throw error;
    }
  } else if (isAdjustmentsFileExplicit) {
    throw new ConfigError([
      { location: path ?? "<config>", path: "scoring.adjustments_file", message: "file not found" },
    ]);
  }
  return { leaderboards, metadata, adjustments, boardWeights: settings.boardWeights };
}
