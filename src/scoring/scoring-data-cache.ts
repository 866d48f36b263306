// The shipped scoring data (leaderboard snapshots, LiteLLM's model table) parsed and indexed once, then kept as
// one compact JSON file of what the score reads: rows, parsed row names, table entries with their aliases. Parsing
// the sources costs a start ~200 ms of CPU and ~20 MB of memory (the 45 KB Aider YAML alone ~100 ms through
// `yaml`, the 1.5 MB table and its aliases ~50 ms); reading the compact file costs a few ms. The file is keyed by a
// SHA-256 of the source files AND of the code that derives it (this folder's parsers, name matching, model-name
// aliases), so an edited snapshot or parser is never answered from a stale file: it is rebuilt from the sources.
// The file also records each fingerprinted file's size and modification time: while they are unchanged, a start
// trusts the fingerprint without reading and hashing the ~2 MB again (~25 ms). Any edit changes the time (a file
// rewritten with the same size and its old time restored by hand would not be noticed); other times with the same
// contents (a checkout, a copy) cost one hash, after which the new times are recorded.
// Everything here is synchronous: a start whose scores all come from the memo (scoring-memo.ts) never loads this
// data, and one that does loads it on first use, inside the synchronous catalog build. Reading a few files from the
// page cache costs microseconds; the parse and the indexes cost the same CPU either way.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { BoardName } from "../config/scoring-schema.ts";
import { sourcePath } from "../source-paths.ts";
import {
  LEADERBOARD_FILES,
  type Leaderboard,
  type LeaderboardRow,
  type LeaderboardSet,
  loadLeaderboards,
  type SizedRow,
} from "./leaderboards.ts";
import {
  type AliasedMetadataEntry,
  indexModelMetadata,
  type ModelMetadataEntry,
  type ModelMetadataTable,
  readModelMetadataEntries,
} from "./model-metadata.ts";
import {
  assembleNameIndex,
  type NamedRow,
  type NameIndex,
  type ParsedRowName,
  type ParseNameOptions,
  parseRowName,
} from "./name-match.ts";

/** Bumped when the file's shape changes (the code hash below changes with it anyway). */
const FORMAT_VERSION = 1;

/** The modules whose code decides what the file holds (paths under src/): any edit to one of them invalidates it. */
const DERIVING_MODULES = [
  "scoring/scoring-data-cache.ts",
  "scoring/leaderboards.ts",
  "scoring/name-match.ts",
  "scoring/model-metadata.ts",
  "providers/model-names.ts",
  "config/request-bounds.ts",
];

export interface ScoringDataPaths {
  /** `data/leaderboards/` (the files in LEADERBOARD_FILES). */
  readonly leaderboardDir: string;
  /** LiteLLM's `model_prices_and_context_window.json`. */
  readonly metadataPath: string;
  /** Where the compact form is kept (written best effort: a read-only folder only costs the parse). */
  readonly cachePath: string;
}

export interface ShippedScoringData {
  readonly leaderboards: LeaderboardSet;
  readonly metadata: ModelMetadataTable | undefined;
  /** `cached`: read from the compact file; `rebuilt`: parsed from the sources (and the file written if it could). */
  readonly source: "cached" | "rebuilt";
}

interface CachedBoard {
  readonly name: BoardName;
  readonly scoreLabel: string;
  readonly options: ParseNameOptions;
  readonly rows: readonly LeaderboardRow[];
  readonly names: readonly ParsedRowName[];
}

/** key, LiteLLM provider, mode, context, max output, tools, vision, json_schema, reasoning, alias. */
type CachedEntry = [
  string,
  string | null,
  string | null,
  number | null,
  number | null,
  0 | 1,
  0 | 1,
  0 | 1,
  0 | 1,
  string,
];

/** A fingerprinted file as it was when the fingerprint was taken: [path, size, mtimeMs]. */
export type FileStamp = readonly [string, number, number];

interface CachedScoringData {
  readonly version: number;
  readonly fingerprint: string;
  /** The fingerprinted files' sizes and times: while they are all the same, their contents are not read again. */
  readonly stamps?: readonly FileStamp[];
  readonly boards: readonly CachedBoard[];
  readonly sizes: { readonly rows: readonly SizedRow[]; readonly names: readonly ParsedRowName[] } | null;
  readonly metadata: readonly CachedEntry[] | null;
}

/**
 * The leaderboards and the model table as `loadLeaderboards` and `parseModelMetadata` give them: from the compact
 * file when its fingerprint is the sources' and code's, else parsed from the sources and the file (re)written.
 * A missing or broken source behaves as without the cache: no boards, or no table.
 */
export function loadShippedScoringData(paths: ScoringDataPaths): ShippedScoringData {
  const files = scoringDataFiles(paths);
  // Taken before any content is read: a file edited meanwhile gets a newer stamp than the one recorded.
  const stamps = stampsOf(files);
  const cached = readCacheFile(paths.cachePath);
  // Fast path (every start after the first): the files have the sizes and times recorded with the fingerprint, so
  // their ~2 MB are neither read nor hashed again (~25 ms of a start).
  if (cached !== undefined && stamps !== undefined && sameStamps(cached.stamps, stamps)) {
    return { ...fromCache(cached), source: "cached" };
  }
  const fingerprint = attempt(() => fingerprintOf(files));
  if (fingerprint !== undefined && cached !== undefined && cached.fingerprint === fingerprint) {
    // Same contents, other times (a checkout, a copy): recorded again, so that the next start takes the fast path.
    if (stamps !== undefined) attempt(() => writeCache(paths.cachePath, { ...cached, stamps }));
    return { ...fromCache(cached), source: "cached" };
  }
  const leaderboards = attempt(() => loadLeaderboards(paths.leaderboardDir));
  const entries = attempt(() => readModelMetadataEntries(readFileSync(paths.metadataPath, "utf8")));
  if (fingerprint !== undefined && leaderboards !== undefined && entries !== undefined) {
    attempt(() => writeCache(paths.cachePath, toCached(fingerprint, stamps, leaderboards, entries)));
  }
  return {
    leaderboards: leaderboards ?? { boards: new Map(), bigCodeBenchSizes: undefined },
    metadata: entries === undefined ? undefined : indexModelMetadata(entries),
    source: "rebuilt",
  };
}

/** The result, or undefined when it throws (a missing source, a read-only cache folder). */
function attempt<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch {
    return undefined;
  }
}

/** What the fingerprint covers: the deriving code and every source file. */
export function scoringDataFiles(paths: ScoringDataPaths): string[] {
  return [
    ...DERIVING_MODULES.map(sourcePath),
    ...LEADERBOARD_FILES.map((file) => join(paths.leaderboardDir, file)),
    paths.metadataPath,
  ];
}

/** SHA-256 over the format version and the files' contents; throws when one is missing. */
function fingerprintOf(files: readonly string[]): string {
  const hash = createHash("sha256").update(`scoring-data v${FORMAT_VERSION}\n`);
  for (const file of files) {
    const content = readFileSync(file);
    hash.update(`${content.length}\n`).update(content);
  }
  return hash.digest("hex");
}

/** Each file's size and time; undefined when one is missing (then there is no fast path). */
export function stampsOf(files: readonly string[]): FileStamp[] | undefined {
  try {
    return files.map((file) => {
      const fileStat = statSync(file);
      return [file, fileStat.size, fileStat.mtimeMs] as const;
    });
  } catch {
    return undefined;
  }
}

export function sameStamps(recorded: readonly FileStamp[] | undefined, current: readonly FileStamp[]): boolean {
  if (!Array.isArray(recorded) || recorded.length !== current.length) return false;
  return current.every((stamp, position) => {
    const other = recorded[position];
    return other !== undefined && other[0] === stamp[0] && other[1] === stamp[1] && other[2] === stamp[2];
  });
}

/** The cache file, if it is one of this format. */
function readCacheFile(cachePath: string): CachedScoringData | undefined {
  try {
    const cached = JSON.parse(readFileSync(cachePath, "utf8")) as CachedScoringData;
    return cached.version === FORMAT_VERSION ? cached : undefined;
  } catch {
    return undefined;
  }
}

function fromCache(cached: CachedScoringData): {
  leaderboards: LeaderboardSet;
  metadata: ModelMetadataTable | undefined;
} {
  const boards = new Map<BoardName, Leaderboard>();
  for (const board of cached.boards) {
    boards.set(board.name, {
      name: board.name,
      scoreLabel: board.scoreLabel,
      rows: board.rows,
      index: assembleNameIndex(board.rows, board.names, board.options),
    });
  }
  return {
    leaderboards: {
      boards,
      bigCodeBenchSizes:
        cached.sizes === null ? undefined : assembleNameIndex(cached.sizes.rows, cached.sizes.names, {}),
    },
    metadata: cached.metadata === null ? undefined : indexModelMetadata(cached.metadata.map(fromCachedEntry)),
  };
}

function toCached(
  fingerprint: string,
  stamps: readonly FileStamp[] | undefined,
  leaderboards: LeaderboardSet,
  entries: readonly AliasedMetadataEntry[],
): CachedScoringData {
  const sizes = leaderboards.bigCodeBenchSizes;
  return {
    version: FORMAT_VERSION,
    fingerprint,
    ...(stamps === undefined ? {} : { stamps }),
    boards: [...leaderboards.boards.values()].map((board) => ({
      name: board.name,
      scoreLabel: board.scoreLabel,
      options: board.index.options,
      rows: board.rows,
      names: parsedNamesOf(board.rows, board.index),
    })),
    sizes: sizes === undefined ? null : { rows: sizes.rows, names: parsedNamesOf(sizes.rows, sizes) },
    metadata: entries.map(toCachedEntry),
  };
}

function parsedNamesOf<Row extends NamedRow>(rows: readonly Row[], index: NameIndex<Row>): ParsedRowName[] {
  return rows.map((row) => parseRowName(row, index.options));
}

function toCachedEntry({ entry, alias }: AliasedMetadataEntry): CachedEntry {
  const { capabilities } = entry;
  return [
    entry.key,
    entry.litellmProvider ?? null,
    entry.mode ?? null,
    entry.contextTokens ?? null,
    entry.maxOutputTokens ?? null,
    capabilities.tools ? 1 : 0,
    capabilities.vision ? 1 : 0,
    capabilities.jsonSchema ? 1 : 0,
    capabilities.reasoning ? 1 : 0,
    alias,
  ];
}

function fromCachedEntry(cached: CachedEntry): AliasedMetadataEntry {
  const [key, litellmProvider, mode, contextTokens, maxOutputTokens, tools, vision, jsonSchema, reasoning, alias] =
    cached;
  const entry: ModelMetadataEntry = {
    key,
    litellmProvider: litellmProvider ?? undefined,
    mode: mode ?? undefined,
    contextTokens: contextTokens ?? undefined,
    maxOutputTokens: maxOutputTokens ?? undefined,
    capabilities: {
      tools: tools === 1,
      vision: vision === 1,
      jsonSchema: jsonSchema === 1,
      reasoning: reasoning === 1,
    },
  };
  return { entry, alias };
}

/** Written whole to a temporary name and renamed: a concurrent reader sees the old file or the new one. */
export function writeFileAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

function writeCache(cachePath: string, data: CachedScoringData): void {
  writeFileAtomically(cachePath, JSON.stringify(data));
}
