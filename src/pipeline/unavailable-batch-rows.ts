// Shared batch rows (Redis) whose store fails (unreachable, too slow) answer a 503 saying so, as the request log and
// conversations do, rather than an opaque 500 logged as a gateway bug; without the store's own words (a connection
// error may name the Redis URL, credentials included).
import { GatewayError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import type { BatchRows } from "../state/batch-rows.ts";

/** ms a client is told to wait before it tries again. */
const RETRY_AFTER_MS = 1_000;

function guard<T>(work: Promise<T>): Promise<T> {
  return work.catch((error: unknown) => {
    if (error instanceof GatewayError) throw error;
    throw new ServiceUnavailableError("The store of files and batches (Redis) cannot be reached; try again shortly.", {
      cause: error,
      retryAfterMs: RETRY_AFTER_MS,
    });
  });
}

async function* guardedPages<T>(pages: AsyncGenerator<T>): AsyncGenerator<T> {
  for (;;) {
    const page = await guard(pages.next());
    if (page.done === true) return;
    yield page.value;
  }
}

export function unavailableOnFailure(rows: BatchRows): BatchRows {
  return {
    kind: rows.kind,
    isShared: rows.isShared,
    putFile: (row, content) => guard(rows.putFile(row, content)),
    file: (id) => guard(rows.file(id)),
    fileContent: (id) => guard(rows.fileContent(id)),
    files: () => guard(rows.files()),
    deleteFile: (id) => guard(rows.deleteFile(id)),
    putBatch: (row) => guard(rows.putBatch(row)),
    replaceBatch: (row, expectedJson) => guard(rows.replaceBatch(row, expectedJson)),
    batch: (id) => guard(rows.batch(id)),
    batches: () => guard(rows.batches()),
    ...(rows.runnableBatchIds === undefined
      ? {}
      : { runnableBatchIds: () => guard((rows.runnableBatchIds as () => Promise<readonly string[]>).call(rows)) }),
    deleteBatch: (id) => guard(rows.deleteBatch(id)),
    putResult: (batchId, result) => guard(rows.putResult(batchId, result)),
    resultPages: (batchId, pageBytes) => guardedPages(rows.resultPages(batchId, pageBytes)),
    exclusive: (work) => guard(rows.exclusive(work)),
    takeLease: (batchId, holder, ttlMs) => guard(rows.takeLease(batchId, holder, ttlMs)),
    dropLease: (batchId, holder) => guard(rows.dropLease(batchId, holder)),
    ...(rows.onRunnable === undefined
      ? {}
      : { onRunnable: (listener: (batchId: string | undefined) => void) => rows.onRunnable?.(listener) }),
    close: () => rows.close(),
  };
}
