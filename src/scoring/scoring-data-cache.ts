// The shipped scoring data (leaderboard snapshots, LiteLLM's model table) parsed and indexed once, then kept as
// one compact JSON file of what the score reads: rows, parsed row names, table entries with their aliases. Parsing
// the sources costs a start ~200 ms of CPU and ~20 MB of memory (the 45 KB Aider YAML alone ~100 ms through
// `yaml`, the 1.5 MB table and its aliases ~50 ms); reading the compact file costs a few ms. The file is keyed by a
// SHA-256 of the source files AND of the code that derives it (this folder's parsers, name matching, model-name
// aliases), so an edited snapshot or parser is never answered from a stale file: it is rebuilt from the sources.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
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

/** [key, litellm_provider, mode, context tokens, max output tokens, tools, vision, json schema, alias] */
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

interface CachedScoringData {
  readonly version: number;
  readonly fingerprint: string;
  readonly boards: readonly CachedBoard[];
  readonly sizes: { readonly rows: readonly SizedRow[]; readonly names: readonly ParsedRowName[] } | null;
  readonly metadata: readonly CachedEntry[] | null;
}

/**
 * The leaderboards and the model table as `loadLeaderboards` and `parseModelMetadata` give them: from the compact
 * file when its fingerprint is the sources' and code's, else parsed from the sources and the file (re)written.
 * A missing or broken source behaves as without the cache: no boards, or no table.
 */
export async function loadShippedScoringData(paths: ScoringDataPaths): Promise<ShippedScoringData> {
  const fingerprint = await fingerprintOf(paths).catch(() => undefined);
  if (fingerprint !== undefined) {
    const cached = await readCache(paths.cachePath, fingerprint);
    if (cached !== undefined) return { ...cached, source: "cached" };
  }
  const [leaderboards, entries] = await Promise.all([
    loadLeaderboards(paths.leaderboardDir).catch((): LeaderboardSet | undefined => undefined),
    readFile(paths.metadataPath, "utf8")
      .then(readModelMetadataEntries)
      .catch(() => undefined),
  ]);
  if (fingerprint !== undefined && leaderboards !== undefined && entries !== undefined) {
    await writeCache(paths.cachePath, toCached(fingerprint, leaderboards, entries)).catch(() => undefined);
  }
  return {
    leaderboards: leaderboards ?? { boards: new Map(), bigCodeBenchSizes: undefined },
    metadata: entries === undefined ? undefined : indexModelMetadata(entries),
    source: "rebuilt",
  };
}

/** SHA-256 over the format version, the deriving code and every source file; throws when a source is missing. */
async function fingerprintOf(paths: ScoringDataPaths): Promise<string> {
  const files = [
    ...DERIVING_MODULES.map(sourcePath),
    ...LEADERBOARD_FILES.map((file) => join(paths.leaderboardDir, file)),
    paths.metadataPath,
  ];
  const contents = await Promise.all(files.map((file) => readFile(file)));
  const hash = createHash("sha256").update(`scoring-data v${FORMAT_VERSION}\n`);
  for (const content of contents) hash.update(`${content.length}\n`).update(content);
  return hash.digest("hex");
}

async function readCache(
  cachePath: string,
  fingerprint: string,
): Promise<{ leaderboards: LeaderboardSet; metadata: ModelMetadataTable | undefined } | undefined> {
  let cached: CachedScoringData;
  try {
    cached = JSON.parse(await readFile(cachePath, "utf8")) as CachedScoringData;
  } catch {
    return undefined;
  }
  if (cached.version !== FORMAT_VERSION || cached.fingerprint !== fingerprint) return undefined;
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
  leaderboards: LeaderboardSet,
  entries: readonly AliasedMetadataEntry[],
): CachedScoringData {
  const sizes = leaderboards.bigCodeBenchSizes;
  return {
    version: FORMAT_VERSION,
    fingerprint,
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
async function writeCache(cachePath: string, data: CachedScoringData): Promise<void> {
  await mkdir(dirname(cachePath), { recursive: true });
  const temporary = `${cachePath}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(temporary, JSON.stringify(data));
    await rename(temporary, cachePath);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
