// Where the Files and Batch APIs keep files and batches for one gateway, from the state settings: the embedded SQLite
// file `state.path` (tables of their own, the files' bytes in `<state.path>.files/`), else (":memory:" or "") this
// process's memory. With `state.redis_url`, Redis (keys `{batches}...`), shared by every replica on it: each batch is
// run by the replica holding its lease, and taken over when that one dies (docs/protocols.md "Batches").
import type { Clock } from "../clock.ts";
import type { BatchSettings, GatewayConfig } from "../config/types.ts";
import type { Logger } from "../logger.ts";
import { BatchBooks } from "../pipeline/batch-books.ts";
import { type BatchObject, isFinished } from "../protocols/batches/batch-objects.ts";
import type { BatchSetup } from "../server/batch-routes.ts";
import { isDamagedFileError } from "../sqlite-file.ts";
import { type BatchRows, MemoryBatchRows } from "../state/batch-rows.ts";
import { EmbeddedBatchRows } from "../state/embedded-batch-rows.ts";

export interface BatchStore {
  readonly setup: BatchSetup;
  close(): Promise<void>;
}

/** `settings`: the serving config's bounds (a reload changes them). */
export async function createBatchStore(
  config: GatewayConfig,
  clock: Clock,
  settings: () => BatchSettings,
  logger: Logger,
): Promise<BatchStore> {
  const { state } = config;
  if (state.redisUrl !== undefined) {
    // Loaded only with Redis, as the kept responses' store is.
    const { RedisBatchRows } = await import("../state/redis-batch-rows.ts");
    const rows = new RedisBatchRows(state.redisUrl, state.redisKeyPrefix, state.redisCluster, isRunnableJson);
    await rows.connect();
    const books = new BatchBooks(rows, clock, settings);
    return { setup: { books }, close: () => books.close() };
  }
  const rows: BatchRows =
    state.path === "" || state.path === ":memory:" ? new MemoryBatchRows() : embeddedOrMemory(state.path, logger);
  const books = new BatchBooks(rows, clock, settings);
  return { setup: { books }, close: () => books.close() };
}

/** A batch's JSON that is not finished: Redis keeps its id in the set the replicas poll for batches to take over. */
function isRunnableJson(json: string): boolean {
  return !isFinished((JSON.parse(json) as BatchObject).status);
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
