// Where the Files and Batch APIs keep files and batches for one gateway, from the state settings: the embedded SQLite
// file `state.path` (tables of their own, the files' bytes in `<state.path>.files/`), else (":memory:" or "") this
// process's memory. With `state.redis_url` they are refused: a batch is run by the process that holds it, and nothing
// yet hands a batch to another replica (docs/protocols.md "Batches").
import type { Clock } from "../clock.ts";
import type { BatchSettings, GatewayConfig } from "../config/types.ts";
import type { Logger } from "../logger.ts";
import { BatchBooks } from "../pipeline/batch-books.ts";
import type { BatchSetup } from "../server/batch-routes.ts";
import { isDamagedFileError } from "../sqlite-file.ts";
import { type BatchRows, MemoryBatchRows } from "../state/batch-rows.ts";
import { EmbeddedBatchRows } from "../state/embedded-batch-rows.ts";

export interface BatchStore {
  readonly setup: BatchSetup;
  close(): void;
}

/** `settings`: the serving config's bounds (a reload changes them). */
export function createBatchStore(
  config: GatewayConfig,
  clock: Clock,
  settings: () => BatchSettings,
  logger: Logger,
): BatchStore {
  const { state } = config;
  if (state.redisUrl !== undefined) {
    return {
      setup: {
        refusal:
          "The Files and Batch APIs are not available with state.redis_url: files and batches would live in one replica only, and a batch would stop with it. Run batches on a gateway with an embedded state file (state.path).",
      },
      close: () => {},
    };
  }
  const rows: BatchRows =
    state.path === "" || state.path === ":memory:" ? new MemoryBatchRows() : embeddedOrMemory(state.path, logger);
  const books = new BatchBooks(rows, clock, settings);
  return { setup: { books }, close: () => books.close() };
}

/**
 * The state file's batch tables; damage found when they are created (the file's free-page list, as the kept answers
 * find it) keeps files and batches in memory until a restart, with a warning, rather than stopping the start.
 */
function embeddedOrMemory(path: string, logger: Logger): BatchRows {
  try {
    return new EmbeddedBatchRows(path);
  } catch (error) {
    if (!isDamagedFileError(error)) throw error;
    logger.warn(
      { path, error: error instanceof Error ? error.message : String(error) },
      `batches: the state file ${path} is damaged; files and batches are kept in this process's memory until a restart (move the file aside, or rebuild it with sqlite3's .recover)`,
    );
    return new MemoryBatchRows();
  }
}
