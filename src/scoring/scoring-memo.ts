// What the score derived from the shipped data for each model it met (leaderboard matches, size from BigCodeBench,
// the model table's entry, a quality prior before its age discount), kept in one small file so that the next start
// with the same models does not load the data at all. Loading it (scoring-data-cache.ts: ~570 KB of JSON, its name
// indexes, then the prior's population of every board row) was ~50 ms of a ~400 ms start and ~1 MB of idle RSS.
// Entries are keyed by every input of the lookup they stand for, so an entry is never wrong for another config;
// the file as a whole is trusted only while the data files and the code that derives the entries have the sizes
// and times it was written with (the data cache's rule, same caveat: a file rewritten with the same size and its
// old time restored by hand would not be noticed). It holds the entries its writer used, then those of earlier
// writers (other configs: a test run, a bench, `npm run demo`, bin/warm-caches.js), newest first, up to
// MAX_FILE_CHARS: a miss's data stays in the process for its life (+3.3 MB idle RSS, bench/README.md section 43),
// while the file is read, whole, by every start.
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { sourcePath } from "../source-paths.ts";
import { type FileStamp, sameStamps, writeFileAtomically } from "./scoring-data-cache.ts";

/** Bumped when the file's shape or an entry's meaning changes. */
const FORMAT_VERSION = 1;

/**
 * Characters of JSON the file may hold: the entries used now always, then other configs' entries, newest first,
 * while they fit. Every start reads and parses the whole file and keeps its entries (~1.4x the text in V8's heap),
 * so other configs' entries cost each start ~1 ms of CPU per 128 KB and that memory (bench/START-UP.md "Load the
 * scoring data at all"): 64 KiB holds ~100 entries, the bench's config takes 2 (1.8 KB), a test's 1-6.
 */
export const MAX_FILE_CHARS = 64 * 1024;

/**
 * Bytes of file a start reads at all: a bigger one is a miss, not read. A write keeps the file within MAX_FILE_CHARS
 * save for one config's own entries (~600 bytes a model: 8 MiB is ~13,000 models, ~100 ms to parse), so only a
 * runaway or hostile file is this big, and reading it whole cost every start its parse: a 93 MB file 5 s and 584 MB
 * of RSS, and a crash under a 128 MB heap limit (an out-of-memory abort is no exception a catch turns into a miss).
 */
export const MAX_READ_BYTES = 8 * 1024 * 1024;

/** The modules whose code decides what an entry holds, besides those the data cache already covers. */
export const MEMO_DERIVING_MODULES = [
  "scoring/scoring-memo.ts",
  "scoring/model-profile.ts",
  "scoring/quality-prior.ts",
  "scoring/params.ts",
  // The boards' names and order (which board a match is listed under first) and the default weights.
  "config/scoring-schema.ts",
].map(sourcePath);

interface MemoFile {
  readonly version: number;
  readonly stamps: readonly FileStamp[];
  /** JSON-encoded lookup key → value (`null` for undefined). */
  readonly entries: Readonly<Record<string, unknown>>;
}

export class ScoringMemo {
  readonly #path: string | undefined;
  readonly #stamps: readonly FileStamp[] | undefined;
  readonly #stored: ReadonlyMap<string, unknown>;
  /**
   * The entries the snapshot being built used (since the last `persist`): written whatever their size. A snapshot
   * built whole from these (a reload with the same models) computes nothing.
   */
  #used = new Map<string, unknown>();
  /**
   * Entries earlier snapshots of this process used and the current one has not (yet): the last snapshot's all, older
   * ones' (a reload dropped a provider or a discovered model) newest first while they fit in MAX_FILE_CHARS; written
   * after the current ones as other configs' are. Until 2026-12-08 every entry used since start stayed "used now", in the process and
   * in every write beyond the file's bound: a gateway reloading for months with changing discovered models grew both.
   */
  #earlier = new Map<string, unknown>();
  #isChanged = false;

  /**
   * The memo kept at `path`, with its entries only if it was written under these stamps. Without a path or stamps
   * (a data file is missing) it still memoises within the process, and never writes.
   */
  static open(path: string | undefined, stamps: readonly FileStamp[] | undefined): ScoringMemo {
    return new ScoringMemo(path, stamps, path === undefined || stamps === undefined ? new Map() : read(path, stamps));
  }

  private constructor(
    path: string | undefined,
    stamps: readonly FileStamp[] | undefined,
    stored: ReadonlyMap<string, unknown>,
  ) {
    this.#path = path;
    this.#stamps = stamps;
    this.#stored = stored;
  }

  /**
   * The value kept for this key, else `compute()`'s. Either way it comes back as JSON gives it (an `undefined`
   * property is absent), so a start from the file and one without it build the same profiles. `isValid` is what a
   * kept value must be to be used (memo-entry-shapes.ts): the stamps say the file is current, not that it is intact,
   * so one of another shape is a miss, computed and written again.
   */
  remember<T>(key: readonly unknown[], compute: () => T, isValid: (value: unknown) => boolean = () => true): T {
    const text = JSON.stringify(key);
    if (this.#used.has(text)) return this.#used.get(text) as T;
    let value: unknown;
    const stored = this.#stored.get(text);
    if (this.#earlier.has(text)) {
      value = this.#earlier.get(text);
      // Like a hit in the file: no write for it (a reload with the same models writes nothing).
      this.#earlier.delete(text);
    } else if (this.#stored.has(text) && isValid(stored)) value = stored;
    else {
      value = throughJson(compute());
      this.#isChanged = true;
    }
    this.#used.set(text, value);
    return value as T;
  }

  /**
   * Writes the entries used so far when one of them was computed, then the file's other entries (as it is now:
   * another process may have written it since this one read it) and those read at open, newest first, while the
   * file stays within MAX_FILE_CHARS. Best effort: a read-only folder costs a miss. Two processes persisting at once
   * each write a whole file (renamed into place, never torn); the last rename wins, and what the other wrote in
   * between is kept only if it read the file after that write: a config lost so misses once more.
   */
  persist(): void {
    const used = this.#used;
    // The next snapshot starts its own `used`; this one's become the newest earlier entries.
    this.#used = new Map();
    this.#earlier = newestWithin(used, this.#earlier, MAX_FILE_CHARS);
    if (!this.#isChanged || this.#path === undefined || this.#stamps === undefined) return;
    const entries: string[] = [];
    const written = new Set<string>();
    let chars = 0;
    const add = (key: string, value: unknown, isUsed: boolean): void => {
      if (written.has(key)) return;
      const text = `${JSON.stringify(key)}:${JSON.stringify(value ?? null)}`;
      // The entries used now are written whatever their size: this config's next start must hit.
      if (!isUsed && chars + text.length + 1 > MAX_FILE_CHARS) return;
      written.add(key);
      entries.push(text);
      chars += text.length + 1;
    };
    for (const [key, value] of used) add(key, value, true);
    for (const [key, value] of this.#earlier) add(key, value, false);
    for (const [key, value] of read(this.#path, this.#stamps)) add(key, value, false);
    for (const [key, value] of this.#stored) add(key, value, false);
    const head = JSON.stringify({ version: FORMAT_VERSION, stamps: this.#stamps });
    try {
      writeFileAtomically(this.#path, `${head.slice(0, -1)},"entries":{${entries.join(",")}}}`);
      this.#isChanged = false;
    } catch {
      // Kept for a later snapshot's attempt; this start is served the same.
    }
  }
}

function read(path: string, stamps: readonly FileStamp[]): Map<string, unknown> {
  let descriptor: number | undefined;
  try {
    // The size of the file opened, not of the path: another writer may rename a new file into place in between.
    descriptor = openSync(path, "r");
    if (fstatSync(descriptor).size > MAX_READ_BYTES) return new Map();
    const file = JSON.parse(readFileSync(descriptor, "utf8")) as MemoFile;
    if (file.version !== FORMAT_VERSION || !sameStamps(file.stamps, stamps)) return new Map();
    return new Map(Object.entries(file.entries).map(([key, value]) => [key, value ?? undefined]));
  } catch {
    return new Map();
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

/**
 * `last` whole (the snapshot just built: the next reload most likely uses the same entries, however many), then the
 * entries of `older` not in it, in their order, while all of their JSON fits in `maxChars`.
 */
function newestWithin(
  last: ReadonlyMap<string, unknown>,
  older: ReadonlyMap<string, unknown>,
  maxChars: number,
): Map<string, unknown> {
  const kept = new Map(last);
  let chars = 0;
  for (const [key, value] of last) chars += entryChars(key, value);
  for (const [key, value] of older) {
    if (kept.has(key)) continue;
    const size = entryChars(key, value);
    if (chars + size > maxChars) break;
    kept.set(key, value);
    chars += size;
  }
  return kept;
}

function entryChars(key: string, value: unknown): number {
  return key.length + JSON.stringify(value ?? null).length + 4;
}

function throughJson(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
