// What the score derived from the shipped data for each model it met (leaderboard matches, size from BigCodeBench,
// the model table's entry, a quality prior before its age discount), kept in one small file so that the next start
// with the same models does not load the data at all. Loading it (scoring-data-cache.ts: ~570 KB of JSON, its name
// indexes, then the prior's population of every board row) was ~50 ms of a ~400 ms start and ~1 MB of idle RSS.
// Entries are keyed by every input of the lookup they stand for, so an entry is never wrong for another config;
// the file as a whole is trusted only while the data files and the code that derives the entries have the sizes
// and times it was written with (the data cache's rule, same caveat: a file rewritten with the same size and its
// old time restored by hand would not be noticed). It holds the entries the last snapshot of its writer used: two
// configs started in turn each miss once per switch, and a miss costs what every start cost before.
import { readFileSync } from "node:fs";
import { sourcePath } from "../source-paths.ts";
import { type FileStamp, sameStamps, writeFileAtomically } from "./scoring-data-cache.ts";

/** Bumped when the file's shape or an entry's meaning changes. */
const FORMAT_VERSION = 1;

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
  /** The entries used since the memo was opened: what the file holds after `persist`. */
  readonly #used = new Map<string, unknown>();
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
   * property is absent), so a start from the file and one without it build the same profiles.
   */
  remember<T>(key: readonly unknown[], compute: () => T): T {
    const text = JSON.stringify(key);
    if (this.#used.has(text)) return this.#used.get(text) as T;
    let value: unknown;
    if (this.#stored.has(text)) value = this.#stored.get(text);
    else {
      value = throughJson(compute());
      this.#isChanged = true;
    }
    this.#used.set(text, value);
    return value as T;
  }

  /** Writes the entries used so far when one of them was computed (best effort: a read-only folder costs a miss). */
  persist(): void {
    if (!this.#isChanged || this.#path === undefined || this.#stamps === undefined) return;
    const file: MemoFile = {
      version: FORMAT_VERSION,
      stamps: this.#stamps,
      entries: Object.fromEntries([...this.#used].map(([key, value]) => [key, value ?? null])),
    };
    try {
      writeFileAtomically(this.#path, JSON.stringify(file));
      this.#isChanged = false;
    } catch {
      // Kept for a later snapshot's attempt; this start is served the same.
    }
  }
}

function read(path: string, stamps: readonly FileStamp[]): Map<string, unknown> {
  try {
    const file = JSON.parse(readFileSync(path, "utf8")) as MemoFile;
    if (file.version !== FORMAT_VERSION || !sameStamps(file.stamps, stamps)) return new Map();
    return new Map(Object.entries(file.entries).map(([key, value]) => [key, value ?? undefined]));
  } catch {
    return new Map();
  }
}

function throughJson(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
