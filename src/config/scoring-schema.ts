// The `scoring:` section: score weights and leaderboard choice, with their defaults. It lives with the config
// (not in scoring/) so the whole file is validated in one pass, each problem at its file:line; scoring/ reads
// the names and defaults from here. Every term is explained in docs/scoring.md.
import { z } from "zod";
import { PARSE_ONCE } from "./schema-helpers.ts";

export type BoardName = "bigcodebench_full" | "bigcodebench_hard" | "aider_polyglot" | "lmarena_text" | "livebench";

export const BOARD_NAMES: readonly BoardName[] = [
  "bigcodebench_full",
  "bigcodebench_hard",
  "aider_polyglot",
  "lmarena_text",
  "livebench",
];

/**
 * Default weight of each board in the quality mean. General chat preference (LMArena) and a broad,
 * contamination-limited benchmark (LiveBench) lead; the coding boards count less because a coding score says
 * less about a general chat request, and BigCodeBench stops at 2025-04.
 */
export const DEFAULT_BOARD_WEIGHTS: Readonly<Record<BoardName, number>> = Object.freeze({
  lmarena_text: 1,
  livebench: 1,
  aider_polyglot: 0.5,
  bigcodebench_full: 0.25,
  bigcodebench_hard: 0.25,
});

/** Short names accepted in `scoring.leaderboards`. */
const BOARD_ALIASES: Readonly<Record<string, readonly BoardName[]>> = {
  bigcodebench: ["bigcodebench_full", "bigcodebench_hard"],
  aider: ["aider_polyglot"],
  lmarena: ["lmarena_text"],
  ...Object.fromEntries(BOARD_NAMES.map((name) => [name, [name]])),
};

/** The score's weights; upper-case keys as in the original project's config. */
const weightsShape = {
  /** Points for a perfect leaderboard quality (term 0..1). */
  MODEL_LEADERBOARD_SCORE_SCALAR: z.number().default(10), // points
  /** Points for 1000B parameters on the log scale (term 0..1, 0 at 1B). */
  MODEL_PARAM_SCORE_SCALAR: z.number().default(3), // points
  /** Points for a 1M-token context on the log scale (term 0..1, 0 at 4k). */
  MODEL_CTX_SCORE_SCALAR: z.number().default(2), // points
  /** Multiplies the summed adjustment priorities (adjustments are already in points). */
  MODEL_ADJUSTMENT_SCALAR: z.number().default(1), // factor
  /** Points taken for a 100% failure rate (scaled by failure rate). */
  HEALTH_PENALTY_SCALAR: z.number().default(10), // points
  /** Points taken for latency at or above the ceiling (log scale from the floor). */
  HEALTH_LATENCY_PENALTY_SCALAR: z.number().default(2), // points
  /** Below this many (decayed) samples a candidate is cold and not penalised. */
  HEALTH_MIN_SAMPLES: z.number().default(3), // samples
  /** Latency at or under this costs nothing. */
  HEALTH_LATENCY_FLOOR_MS: z.number().default(1_000), // ms
  /** Latency at or over this costs the full latency penalty. */
  HEALTH_LATENCY_CEILING_MS: z.number().default(30_000), // ms
  /** Leaderboard term when no board knows the model. */
  NEUTRAL_LEADERBOARD: z.number().default(0.5), // 0..1
  /** Parameter term when the size is unknown (0.5 is about 32B). */
  NEUTRAL_PARAMS: z.number().default(0.5), // 0..1
  /** Context term when the window is unknown (0.5 is 64k tokens). */
  NEUTRAL_CONTEXT: z.number().default(0.5), // 0..1
};

const WEIGHT_NAMES = Object.keys(weightsShape) as (keyof typeof weightsShape)[];

const weightsSchema = z.object(weightsShape);
export type ScoringWeights = Readonly<z.output<typeof weightsSchema>>;
export const DEFAULT_SCORING_WEIGHTS: ScoringWeights = Object.freeze(weightsSchema.parse({}, PARSE_ONCE));

/** zod's code for an issue a schema adds itself (a constant: docs/errors.md's parity test reads `code: "..."`). */
export const ZOD_CUSTOM_ISSUE = "custom";

/** `[lmarena, aider]` (weight 1 each) or `{ lmarena: 1, aider: 0.5 }`; aliases expand to their boards. */
const leaderboardsSchema = z
  .union([z.array(z.string()), z.record(z.string(), z.number().nonnegative())])
  .transform((value, context): Partial<Record<BoardName, number>> => {
    const entries = Array.isArray(value) ? value.map((name) => [name, 1] as const) : Object.entries(value);
    const weights: Partial<Record<BoardName, number>> = {};
    entries.forEach(([name, weight], position) => {
      const boards = BOARD_ALIASES[name];
      if (boards === undefined) {
        context.addIssue({
          code: ZOD_CUSTOM_ISSUE,
          path: [Array.isArray(value) ? position : name],
          message: `unknown leaderboard "${name}"; known: ${Object.keys(BOARD_ALIASES).join(", ")}`,
        });
        return;
      }
      for (const board of boards) weights[board] = weight;
    });
    return weights;
  });

const sectionShape = {
  ...weightsShape,
  /** Which boards count, with their weights; default DEFAULT_BOARD_WEIGHTS. */
  leaderboards: leaderboardsSchema.optional(),
  /** Adjustments file, relative to the config file; default `model-adjustments.yaml` next to it. */
  adjustments_file: z.string().optional(),
  /** Base URL serving the same files as data/leaderboards/ (same relative paths); fetched in the background. */
  leaderboard_refresh_url: z.url({ protocol: /^https?$/ }).optional(),
  /** Time between refreshes from that URL. */
  leaderboard_refresh_interval_ms: z.number().int().positive().default(86_400_000), // ms: 24 h
  /** Half-life of the health statistics; unset: the health tracker's own default. */
  health_half_life_ms: z.number().int().positive().optional(), // ms
};

/** `scoring:` resolved: full weights, board weights, and the rest camelCased. */
export const scoringSchema = z
  .strictObject(sectionShape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `known: ${Object.keys(sectionShape).join(", ")}` : undefined,
  })
  .prefault({})
  .transform((section) => ({
    weights: Object.freeze(Object.fromEntries(WEIGHT_NAMES.map((name) => [name, section[name]]))) as ScoringWeights,
    boardWeights: section.leaderboards ?? { ...DEFAULT_BOARD_WEIGHTS },
    adjustmentsFile: section.adjustments_file,
    leaderboardRefreshUrl: section.leaderboard_refresh_url,
    leaderboardRefreshIntervalMs: section.leaderboard_refresh_interval_ms,
    healthHalfLifeMs: section.health_half_life_ms,
  }));
