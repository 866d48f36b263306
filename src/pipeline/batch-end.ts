// A batch's end: its output and error files written from its lines' results (expired lines named in the error file),
// and its final status, counts and usage.
import {
  BATCH_EXPIRED_CODE,
  BATCH_EXPIRED_MESSAGE,
  type BatchLine,
  type BatchObject,
  isFinished,
  type StoredBatch,
  type StoredFile,
  unansweredLine,
} from "../protocols/batches/batch-objects.ts";
import { randomIds } from "../protocols/ids.ts";
import { type ActiveBatch, type BatchSteps, RESULTS_PAGE_BYTES } from "./active-batch.ts";
import { FileParts, nextTurn, usageOf } from "./batch-lines.ts";

/** `batch_expired` lines made between two turns of the event loop. */
const EXPIRED_LINES_PER_TURN = 1_000;

/** How the batch ends now, once nothing is in flight; undefined while it has lines to run or results to write. */
export function endStatus(active: ActiveBatch, isStopping: boolean): "completed" | "cancelled" | "expired" | undefined {
  // Stopping: the lines that returned unwritten are not done; the batch resumes after a restart, never ends here.
  // A result still unwritten: the files would miss its line (BatchResults ends the batch once it is written).
  if (active.inFlight > 0 || active.unwritten.size > 0 || isStopping || active.isSettled) return undefined;
  if (active.isExpiring) return "expired";
  if (active.isCancelling) return "cancelled";
  if (active.pending.length > 0 || active.parked.size > 0) return undefined;
  return "completed";
}

/**
 * Writes the output and error files from the lines' results and the batch's final state. `expiredLines`: every
 * line; those without a result get `batch_expired` lines in the error file.
 */
export async function finishBatch(
  steps: BatchSteps,
  id: string,
  status: "completed" | "cancelled" | "expired",
  expiredLines: readonly BatchLine[],
  active: ActiveBatch,
): Promise<void> {
  const now = steps.nowSeconds();
  if (status === "completed") {
    await steps.update(id, (batch) =>
      isFinished(batch.status) ? undefined : { ...batch, status: "finalizing", finalizing_at: now },
    );
  }
  const stored = await steps.books.batch(id);
  if (stored === undefined || isFinished(stored.batch.status)) return;
  const answered = new Set<number>();
  const output = new FileParts();
  const errors = new FileParts();
  // A page at a time, with turns of the event loop between: 50,000 results read, joined and written at once froze
  // the gateway for seconds (batches-hostile.test.ts "a large batch's end").
  for await (const page of steps.books.resultPages(id, RESULTS_PAGE_BYTES)) {
    for (const result of page) {
      answered.add(result.index);
      (result.isError ? errors : output).add(result.line);
    }
    await nextTurn();
  }
  let written = 0;
  for (const line of expiredLines) {
    if (answered.has(line.index)) continue;
    errors.add(unansweredLine(randomIds("batch_req_"), line.customId, BATCH_EXPIRED_CODE, BATCH_EXPIRED_MESSAGE));
    if (++written % EXPIRED_LINES_PER_TURN === 0) await nextTurn();
  }
  const outputFileId = await writeFile(steps, stored, output, "output", errors.count > 0 ? 1 : 0);
  const errorFileId = await writeFile(steps, stored, errors, "error", 0);
  const total = active.lines.length;
  const usage = active.usage;
  const final = (batch: BatchObject): BatchObject => ({
    ...batch,
    status,
    output_file_id: outputFileId,
    error_file_id: errorFileId,
    request_counts: {
      total,
      completed: output.count,
      // An expired line counts as failed: it is in the error file.
      failed: errors.count,
    },
    usage: usageOf(batch.usage, usage),
    ...(status === "completed" ? { completed_at: now, finalizing_at: now } : {}),
    ...(status === "cancelled" ? { cancelled_at: now } : {}),
    ...(status === "expired" ? { expired_at: now } : {}),
  });
  const ended = await steps.update(id, (batch) => (isFinished(batch.status) ? undefined : final(batch)));
  // Ended meanwhile by another writer (a replica that took over after this one's lease lapsed): these files are
  // no batch's, and go.
  if (ended === undefined) {
    for (const fileId of [outputFileId, errorFileId]) {
      if (fileId !== null) await steps.books.deleteFile(fileId, stored.owner === "" ? null : stored.owner);
    }
  }
}

/** A `batch_output` file of the batch's owner (none for no lines, as OpenAI's `error_file_id` is then null). */
async function writeFile(
  steps: BatchSteps,
  stored: StoredBatch,
  lines: FileParts,
  kind: "output" | "error",
  filesStillToCome: number,
): Promise<string | null> {
  if (lines.count === 0) return null;
  const content = lines.finish();
  const createdAt = steps.nowSeconds();
  const file: StoredFile = {
    id: randomIds("file-"),
    owner: stored.owner,
    bytes: lines.bytes,
    createdAt,
    expiresAt: createdAt + Math.floor(steps.runtime.snapshot.config.batches.retentionMs / 1000),
    filename: `${stored.batch.id}_${kind}.jsonl`,
    purpose: "batch_output",
  };
  await steps.books.addOutputFile(file, content, filesStillToCome);
  return file.id;
}
