// The kept Responses API answers of the embedded mode, in the state file while its kept-answer tables are sound.
// The state store sets a damaged file aside when it opens it, but it reads only its own tables: damage confined to
// the kept answers' pages or to the file's free-page list (which creating the kept tables, or keeping an answer,
// reads) showed only here, where it stopped the start (exit 2, "cannot open state.path") or failed every later
// put and continuation. The file cannot be set aside at that point (the state store has it open and writes to it),
// so the kept answers move to this process's memory instead (the same store on an in-memory SQLite database: the
// same bounds and behaviour), with one warning saying so and what to do; budgets and cooldowns stay in the file.
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { isDamagedFileError } from "../sqlite-file.ts";
import {
  type ConditionalWrite,
  EmbeddedKeptResponses,
  KEPT_RESPONSES,
  type KeptResponseLimits,
  type KeptResponseRow,
  type KeptRowsKind,
  type LostRow,
} from "./embedded-kept-responses.ts";

export class KeptResponsesFile {
  readonly #path: string;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #kind: KeptRowsKind;
  #rows: EmbeddedKeptResponses;
  #isInMemory = false;
  #onLost: ((rows: readonly LostRow[]) => void) | undefined;

  constructor(path: string, limits: KeptResponseLimits, clock: Clock, logger?: Logger, kind = KEPT_RESPONSES) {
    this.#path = path;
    this.#kind = kind;
    this.#limits = limits;
    this.#clock = clock;
    this.#logger = logger;
    try {
      this.#rows = new EmbeddedKeptResponses(path, limits, clock, logger, kind);
    } catch (error) {
      if (!isDamagedFileError(error)) throw error;
      this.#rows = this.#moveToMemory(error);
    }
  }

  /** Whether the kept answers are in memory (the file's kept-answer tables were found damaged). */
  get isInMemory(): boolean {
    return this.#isInMemory;
  }

  /** See EmbeddedKeptResponses.onLost (kept across a move to memory). */
  onLost(listener: (rows: readonly LostRow[]) => void): void {
    this.#onLost = listener;
    this.#rows.onLost(listener);
  }

  put(row: KeptResponseRow): Promise<boolean | undefined> {
    return this.#guarded((rows) => rows.put(row));
  }

  putIfUnchanged(row: KeptResponseRow, expectedJson: string, options?: ConditionalWrite): Promise<boolean> {
    return this.#guarded((rows) => rows.putIfUnchanged(row, expectedJson, options));
  }

  appendEvents(id: string, keptCount: number, events: readonly string[], notAfterMs?: number): Promise<boolean> {
    return this.#guarded((rows) => rows.appendEvents(id, keptCount, events, notAfterMs));
  }

  getEvents(id: string, from: number): Promise<string[]> {
    return this.#guarded((rows) => rows.getEvents(id, from));
  }

  get(id: string): Promise<string | undefined> {
    return this.#guarded((rows) => rows.get(id));
  }

  getByItem(itemId: string): Promise<string | undefined> {
    return this.#guarded((rows) => rows.getByItem(itemId));
  }

  getIdsByItems(itemIds: readonly string[]): Promise<(string | undefined)[]> {
    return this.#guarded((rows) => rows.getIdsByItems(itemIds));
  }

  delete(id: string): Promise<boolean> {
    return this.#guarded((rows) => rows.delete(id));
  }

  /** See EmbeddedKeptResponses.close: the last write waits at most `maxWaitMs` for a lock another process holds. */
  close(maxWaitMs?: number): Promise<void> {
    return this.#rows.close(maxWaitMs);
  }

  /** See EmbeddedKeptResponses.writeBeforeExit. */
  writeBeforeExit(): void {
    this.#rows.writeBeforeExit();
  }

  /** Runs an operation; damage found by it moves the store to memory once, where the operation runs again. */
  async #guarded<T>(operation: (rows: EmbeddedKeptResponses) => Promise<T>): Promise<T> {
    try {
      return await operation(this.#rows);
    } catch (error) {
      if (this.#isInMemory || !isDamagedFileError(error)) throw error;
      try {
        // No wait: the tables are damaged, the rows waiting are lost with them.
        await this.#rows.close(0);
      } catch {
        // A damaged file may fail its last write too; the answers waiting for it are lost with the tables.
      }
      this.#rows = this.#moveToMemory(error);
      return operation(this.#rows);
    }
  }

  #moveToMemory(error: unknown): EmbeddedKeptResponses {
    this.#isInMemory = true;
    const message = error instanceof Error ? error.message : String(error);
    this.#logger?.warn(
      { path: this.#path, error: message },
      `${this.#kind.label}: the ${this.#kind.rows}' tables in ${this.#path} are damaged (${message}); answers are kept in this process's memory until a restart (earlier kept answers are not found). To repair, stop the gateway and move ${this.#path} aside (budgets and cooldowns start afresh), or rebuild it with sqlite3's .recover`,
    );
    const rows = new EmbeddedKeptResponses(":memory:", this.#limits, this.#clock, this.#logger, this.#kind);
    if (this.#onLost !== undefined) rows.onLost(this.#onLost);
    return rows;
  }
}
