// Leaderboard snapshots (data/leaderboards/) as per-board tables normalised to 0..1, and the weighted quality
// of a model across the boards that know it. Normalisation and weights are explained in docs/scoring.md.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { BOARD_NAMES, type BoardName, DEFAULT_BOARD_WEIGHTS } from "../config/scoring-schema.ts";
import { isRecord } from "../is-record.ts";
import { buildNameIndex, type MatchLevel, matchName, type NamedRow, type NameIndex } from "./name-match.ts";

// Which boards exist and their default weights are part of the `scoring:` config section.
export { BOARD_NAMES, type BoardName, DEFAULT_BOARD_WEIGHTS };

export interface LeaderboardRow extends NamedRow {
  /** The board's own number: percent for the benchmarks, an Elo-like rating for LMArena. */
  readonly score: number;
  /**
   * `score` on 0..1 where 1 is the board's best: the share of the best score on percent boards (BigCodeBench:
   * of the best in the row's split), twice the expected win rate against the best on LMArena.
   */
  readonly normalised: number;
}

export interface Leaderboard {
  readonly name: BoardName;
  /** What `score` is, for explanations: `arena_score`, `pass@1 instruct (else complete)`, ... */
  readonly scoreLabel: string;
  readonly rows: readonly LeaderboardRow[];
  readonly index: NameIndex<LeaderboardRow>;
}

export interface SizedRow extends NamedRow {
  /** Total parameters in billions, as BigCodeBench lists them. */
  readonly sizeB: number;
}

export interface LeaderboardSet {
  readonly boards: ReadonlyMap<BoardName, Leaderboard>;
  /** BigCodeBench's `size` column for every model it lists, scored or not. */
  readonly bigCodeBenchSizes: NameIndex<SizedRow> | undefined;
}

/** Raw rows before normalisation. */
interface RawRow extends NamedRow {
  readonly score: number;
}

/** Percent boards: the share of the board's best score; 0 solved nothing, 1 is the best model on the board. */
function fractionOfBest(values: readonly number[]): (value: number) => number {
  const best = Math.max(...values);
  return (value) => (best > 0 ? Math.min(Math.max(value / best, 0), 1) : 0);
}

/** Elo points for a 10:1 odds ratio: the logistic scale of LMArena's (Bradley-Terry) ratings. */
const ELO_SCALE = 400;

/**
 * Elo boards: twice the expected win rate against the board's best model, so the best is 1, a model 200 points
 * behind (wins about one game in four) is 0.48, and the scale falls towards 0 like a percent board's does.
 */
function winRateAgainstBest(values: readonly number[]): (value: number) => number {
  const best = Math.max(...values);
  return (value) => 2 / (1 + 10 ** ((best - value) / ELO_SCALE));
}

function toBoard(
  name: BoardName,
  scoreLabel: string,
  rows: readonly LeaderboardRow[],
  hasSettingSuffixes = false,
): Leaderboard {
  return { name, scoreLabel, rows, index: buildNameIndex(rows, { hasSettingSuffixes }) };
}

function normaliseRows(
  rows: readonly RawRow[],
  scaleFor: (values: readonly number[]) => (value: number) => number,
): LeaderboardRow[] {
  const scale = scaleFor(rows.map((row) => row.score));
  return rows.map((row) => ({ ...row, normalised: scale(row.score) }));
}

function finiteNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function huggingFaceRepo(url: unknown): string[] {
  if (typeof url !== "string") return [];
  const match = /huggingface\.co\/([^/?#\s]+\/[^/?#\s]+)/.exec(url);
  return match?.[1] === undefined ? [] : [match[1]];
}

/**
 * BigCodeBench `results.json` / `results-hard.json`. A row scores its `pass@1.instruct` when it has one (chat
 * models are served instruct-style), else `complete`. The two splits differ in difficulty, so a row is measured
 * against the best score of the split it uses.
 */
export function parseBigCodeBench(jsonText: string, name: "bigcodebench_full" | "bigcodebench_hard"): Leaderboard {
  const data: unknown = JSON.parse(jsonText);
  if (!isRecord(data)) throw new Error(`${name}: expected a JSON object keyed by model name`);
  const instruct: RawRow[] = [];
  const complete: RawRow[] = [];
  for (const [model, value] of Object.entries(data)) {
    if (!isRecord(value) || !isRecord(value["pass@1"])) continue;
    const row = { name: model, aliases: huggingFaceRepo(value.link) };
    const instructScore = finiteNumber(value["pass@1"].instruct);
    const completeScore = finiteNumber(value["pass@1"].complete);
    if (instructScore !== undefined) instruct.push({ ...row, score: instructScore });
    else if (completeScore !== undefined) complete.push({ ...row, score: completeScore });
  }
  const instructScale = fractionOfBest(Object.values(data).flatMap((value) => scoreOf(value, "instruct")));
  const completeScale = fractionOfBest(Object.values(data).flatMap((value) => scoreOf(value, "complete")));
  const rows = [
    ...instruct.map((row) => ({ ...row, normalised: instructScale(row.score) })),
    ...complete.map((row) => ({ ...row, normalised: completeScale(row.score) })),
  ];
  return toBoard(name, "pass@1 % (instruct, else complete)", rows);
}

function scoreOf(value: unknown, split: "instruct" | "complete"): number[] {
  if (!isRecord(value) || !isRecord(value["pass@1"])) return [];
  const score = finiteNumber(value["pass@1"][split]);
  return score === undefined ? [] : [score];
}

/** BigCodeBench's `size` (total parameters, billions) for every model that has one. */
function parseBigCodeBenchSizes(jsonText: string): NameIndex<SizedRow> {
  const data: unknown = JSON.parse(jsonText);
  if (!isRecord(data)) throw new Error("bigcodebench: expected a JSON object keyed by model name");
  const rows: SizedRow[] = [];
  for (const [model, value] of Object.entries(data)) {
    if (!isRecord(value)) continue;
    const sizeB = finiteNumber(value.size);
    if (sizeB !== undefined && sizeB > 0) rows.push({ name: model, aliases: huggingFaceRepo(value.link), sizeB });
  }
  return buildNameIndex(rows);
}

/**
 * Aider `polyglot_leaderboard.yml`: `pass_rate_2` (percent solved within two tries). Architect/editor pairs
 * (`o3 (high) + gpt-4.1`) measure two models at once and are left out. The `--model` id of the run is an alias.
 */
export function parseAiderPolyglot(yamlText: string): Leaderboard {
  const data: unknown = parseYaml(yamlText);
  if (!Array.isArray(data)) throw new Error("aider_polyglot: expected a YAML list of runs");
  const rows: RawRow[] = [];
  for (const run of data) {
    if (!isRecord(run) || typeof run.model !== "string") continue;
    const score = finiteNumber(run.pass_rate_2);
    if (score === undefined || run.model.includes(" + ")) continue;
    const command = typeof run.command === "string" ? run.command : "";
    const modelFlag = /--model\s+(\S+)/.exec(command)?.[1];
    // `Qwen3 235B A22B diff, no think, Alibaba API`: the edit format is a run setting, not part of the name.
    const matchName = run.model.replace(/\s+(diff|whole|udiff|diff-fenced)(?=,|\s*\(|$)/i, "");
    rows.push({
      name: run.model,
      matchName,
      aliases: modelFlag === undefined ? [] : [modelFlag],
      score,
    });
  }
  return toBoard("aider_polyglot", "pass_rate_2 %", normaliseRows(rows, fractionOfBest));
}

/** LMArena text `arena_score` (an Elo-like rating, about 1000-1470 in this snapshot). */
export function parseLmArenaText(csvText: string): Leaderboard {
  const records = parseCsvRecords(csvText);
  const rows: RawRow[] = [];
  for (const record of records) {
    const score = Number(record.arena_score);
    const model = record.model;
    if (model === undefined || model === "" || !Number.isFinite(score)) continue;
    rows.push({ name: model, aliases: [...huggingFaceRepo(record.url), ...modelQueryParameter(record.url)], score });
  }
  return toBoard("lmarena_text", "arena_score", normaliseRows(rows, winRateAgainstBest));
}

function modelQueryParameter(url: string | undefined): string[] {
  const match = url === undefined ? null : /[?&]model=([^&#\s]+)/.exec(url);
  return match?.[1] === undefined ? [] : [decodeURIComponent(match[1])];
}

/**
 * LiveBench: the site's global average, i.e. the mean over categories of each category's mean over its tasks
 * (LiveBench `src/Table/Averaging.js`); a task a model has no number for is left out of its category, as there.
 */
export function parseLiveBench(csvText: string, categoriesJson: string): Leaderboard {
  const categories: unknown = JSON.parse(categoriesJson);
  if (!isRecord(categories)) throw new Error("livebench: categories must be an object of task lists");
  const taskLists = Object.values(categories).map((tasks) =>
    Array.isArray(tasks) ? tasks.filter((task): task is string => typeof task === "string") : [],
  );
  const rows: RawRow[] = [];
  for (const record of parseCsvRecords(csvText)) {
    const model = record.model;
    if (model === undefined || model === "") continue;
    const averages = taskLists.flatMap((tasks) => {
      const values = tasks.map((task) => Number.parseFloat(record[task] ?? "")).filter(Number.isFinite);
      return values.length === 0 ? [] : [values.reduce((sum, value) => sum + value, 0) / values.length];
    });
    if (averages.length === 0) continue;
    rows.push({ name: model, score: averages.reduce((sum, value) => sum + value, 0) / averages.length });
  }
  return toBoard("livebench", "global average %", normaliseRows(rows, fractionOfBest), true);
}

/** RFC 4180 CSV (quoted fields, doubled quotes) into records keyed by the header row. */
export function parseCsvRecords(text: string): Array<Record<string, string | undefined>> {
  const table: string[][] = [];
  let row: string[] = [];
  let field = "";
  let isQuoted = false;
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (isQuoted) {
      if (char === '"' && text[at + 1] === '"') {
        field += '"';
        at++;
      } else if (char === '"') {
        isQuoted = false;
      } else {
        field += char;
      }
    } else if (char === '"') {
      isQuoted = true;
    } else if (char === ",") {
      row.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[at + 1] === "\n") at++;
      row.push(field);
      table.push(row);
      row = [];
      field = "";
    } else {
      field += char;
    }
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    table.push(row);
  }
  const [header, ...body] = table;
  if (header === undefined) return [];
  return body
    .filter((cells) => cells.some((cell) => cell !== ""))
    .map((cells) => Object.fromEntries(header.map((column, position) => [column, cells[position]])));
}

/** Reads the snapshots shipped in `data/leaderboards/` (see its README for provenance). */
/** The snapshot files, relative to the leaderboard directory (also the paths a refresh URL must serve). */
export const LEADERBOARD_FILES = [
  "bigcodebench/results.json",
  "bigcodebench/results-hard.json",
  "aider/polyglot_leaderboard.yml",
  "lmarena/lmarena_text.csv",
  "livebench/table_2026_01_08.csv",
  "livebench/categories_2026_01_08.json",
] as const;

/**
 * Read and parsed synchronously: the data is loaded on first use by a score (scoring-sources.ts), inside the
 * synchronous catalog build; a few files from the page cache cost microseconds to read, the parse the same either way.
 */
export function loadLeaderboards(directory: string): LeaderboardSet {
  const read = (path: string): string => readFileSync(join(directory, path), "utf8");
  const [full, hard, aider, lmarena, livebench, categories] = LEADERBOARD_FILES.map(read) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const boards = [
    parseBigCodeBench(full, "bigcodebench_full"),
    parseBigCodeBench(hard, "bigcodebench_hard"),
    parseAiderPolyglot(aider),
    parseLmArenaText(lmarena),
    parseLiveBench(livebench, categories),
  ];
  return {
    boards: new Map(boards.map((board) => [board.name, board])),
    bigCodeBenchSizes: parseBigCodeBenchSizes(full),
  };
}

export interface LeaderboardMatch {
  readonly board: BoardName;
  /** The matched row's name; several rows (snapshots, effort variants) are joined with ` | ` and averaged. */
  readonly row: string;
  readonly rows: readonly string[];
  readonly level: MatchLevel;
  readonly normalised: number;
}

export interface LeaderboardQuality {
  /** Weighted mean of `normalised` over the boards that matched, 0..1; undefined when none did. */
  readonly value: number | undefined;
  readonly matches: readonly LeaderboardMatch[];
}

export interface LeaderboardQualityOptions {
  /** Match this name instead of the model id (config `leaderboard_name`). */
  readonly leaderboardName?: string;
  /** Boards missing here or weighted 0 are not consulted. */
  readonly weights: Readonly<Partial<Record<BoardName, number>>>;
}

export function leaderboardQuality(
  set: LeaderboardSet,
  modelId: string,
  options: LeaderboardQualityOptions,
): LeaderboardQuality {
  const query = options.leaderboardName ?? modelId;
  const matches: LeaderboardMatch[] = [];
  let weightedSum = 0;
  let weightSum = 0;
  for (const name of BOARD_NAMES) {
    const weight = options.weights[name] ?? 0;
    const board = set.boards.get(name);
    if (weight <= 0 || board === undefined) continue;
    const match = matchName(board.index, query);
    if (match === undefined) continue;
    const normalised = match.rows.reduce((sum, row) => sum + row.normalised, 0) / match.rows.length;
    const rowNames = match.rows.map((row) => row.name);
    matches.push({ board: name, row: rowNames.join(" | "), rows: rowNames, level: match.level, normalised });
    weightedSum += weight * normalised;
    weightSum += weight;
  }
  return { value: weightSum > 0 ? weightedSum / weightSum : undefined, matches };
}

/** BigCodeBench's total parameter count for the model, when its matched rows agree on one. */
export function bigCodeBenchSizeB(set: LeaderboardSet, modelId: string, leaderboardName?: string): number | undefined {
  if (set.bigCodeBenchSizes === undefined) return undefined;
  const match = matchName(set.bigCodeBenchSizes, leaderboardName ?? modelId);
  if (match === undefined) return undefined;
  const sizes = new Set(match.rows.map((row) => row.sizeB));
  return sizes.size === 1 ? match.rows[0]?.sizeB : undefined;
}
