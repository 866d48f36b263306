// Where kept Responses API answers and conversations (the Conversations API) live for one gateway, from the state
// settings: Redis when `state.redis_url` is set (shared with every gateway on it), else the embedded SQLite file
// `state.path`, else (":memory:" or "") this process's memory. Answers and conversations are kept apart (tables or
// keys of their own), each bounded by `responses.store` (read at startup: a reload does not resize).
import type { Clock } from "../clock.ts";
import type { GatewayConfig } from "../config/types.ts";
import { ServiceUnavailableError, StoreWriteLateError } from "../errors/gateway-error.ts";
import type { Logger } from "../pipeline/gateway-runtime.ts";
import { randomIds } from "../protocols/ids.ts";
import { ConversationRowsInMemory } from "../protocols/responses/conversation-rows-memory.ts";
import { type ConversationRows, Conversations } from "../protocols/responses/conversations.ts";
import type { BoundedStep } from "../protocols/responses/kept-read-options.ts";
import { inMemory, inRows, type KeptResponses } from "../protocols/responses/kept-responses.ts";
import { ResponseStore } from "../protocols/responses/response-store.ts";
import type { KeptResponsesStatus } from "../server/health-state.ts";
import { KEPT_CONVERSATIONS } from "../state/embedded-kept-responses.ts";
import { KeptResponsesFile } from "../state/kept-responses-file.ts";
import { MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS, type ToolCallExtrasStore } from "../state/tool-call-extras.ts";

export interface KeptResponsesStore {
  readonly kept: KeptResponses;
  readonly conversations: Conversations;
  /**
   * The tool calls' `extra_content` the Messages and Responses doors keep between turns (Gemini's thought
   * signatures): shared through Redis with it, else this process's memory, which the embedded state file keeps
   * with the other books (a restart does not cost the sessions under way their signatures).
   */
  readonly toolCallExtras: ToolCallExtrasStore;
  readonly kind: "memory" | "embedded" | "redis";
  close(): Promise<void>;
  /**
   * A second signal: the answers waiting for the state file's write lock are written now, synchronously, if the
   * lock is free (no wait: the state file's own write has just waited for it). Nothing else is pending.
   */
  writeBeforeExit(): void;
  /** For /health: where kept answers live now (damaged tables move the embedded ones to memory). */
  status(): KeptResponsesStatus;
  /**
   * `listener` is told how many answers were lost after their requests' records were published (the state file's
   * answers waiting for its lock, dropped past the memory bounds): the metric counts them, as it counts records.
   */
  onAnswersLost(listener: (count: number) => void): void;
}

/**
 * A failed write of a kept answer is read back (it may have run after all) every this many ms, at most this many
 * times while the store does not answer: past ~30 s of outage the id stays not kept (a read that finds it forgets it).
 */
const LANDED_CHECK_INTERVAL_MS = 1_000;
const LANDED_CHECKS = 30;
/** Most failed writes waiting to be read back (as many as NotKeptAnswers remembers): the oldest give way. */
const MAX_LANDED_CHECKS = 10_000;

/**
 * The failed writes' read-backs, on one timer: each tick runs them one after the other and stops at the first the
 * store does not answer (every one waiting is then a try down). One timer and one read at a time, however many answers
 * failed: a timer and a read per answer each second sent ~50 reads a second per 100 answers to a stalled Redis.
 */
function landedChecks(): { recheck: (check: () => Promise<void>) => void; stopChecks: () => void } {
  const waiting = new Map<() => Promise<void>, number>(); // check -> tries left
  let timer: NodeJS.Timeout | undefined;
  let isChecking = false;
  const stopChecks = (): void => {
    clearInterval(timer);
    timer = undefined;
    waiting.clear();
  };
  const tick = async (): Promise<void> => {
    if (isChecking) return;
    isChecking = true;
    try {
      for (const check of [...waiting.keys()]) {
        try {
          await check();
          waiting.delete(check);
        } catch {
          for (const [other, triesLeft] of waiting) {
            if (triesLeft > 1) waiting.set(other, triesLeft - 1);
            else waiting.delete(other);
          }
          break;
        }
      }
    } finally {
      isChecking = false;
      if (waiting.size === 0) stopChecks();
    }
  };
  const recheck = (check: () => Promise<void>): void => {
    waiting.set(check, LANDED_CHECKS);
    if (waiting.size > MAX_LANDED_CHECKS) waiting.delete(waiting.keys().next().value as () => Promise<void>);
    if (timer !== undefined) return;
    timer = setInterval(() => void tick(), LANDED_CHECK_INTERVAL_MS);
    // Nothing to keep the process for: an id not read back only stays "not kept".
    timer.unref();
  };
  return { recheck, stopChecks };
}

export async function createKeptResponsesStore(
  config: GatewayConfig,
  clock: Clock,
  logger: Logger,
  /** The embedded state store's (StateBackend.toolCallExtras), which it writes to the file; else undefined. */
  persistedToolCallExtras?: MemoryToolCallExtras,
): Promise<KeptResponsesStore> {
  const localToolCallExtras = persistedToolCallExtras ?? new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, clock);
  const limits = config.responses.store;
  const { state } = config;
  // Said once when puts begin to fail and once when one works again, not at every answer: a Redis outage or a full
  // disk fails the put of every Responses request (store defaults to true) and flooded the log with one line each.
  let isPutFailing = false;
  const onPutError = (error: unknown): void => {
    if (isPutFailing) return;
    isPutFailing = true;
    logger.warn(
      { error: error instanceof Error ? error.message : String(error) },
      "kept responses: could not keep an answer; a later previous_response_id naming it will not be found (said once until an answer is kept again)",
    );
  };
  // The write's bound (responses.store.write_timeout_ms): a Redis paused or a Cluster without a master answers late or
  // never, and the request (its record, a stream's last events) waits for the write. Also a read a write follows (a
  // cancel's), so that the operation as a whole answers within it.
  const bounded = <T>(write: Promise<T>, what: BoundedStep = "write"): Promise<T> =>
    withinMs(write, limits.writeTimeoutMs, what);
  let lostListener: ((count: number) => void) | undefined;
  const onAnswersLost = (listener: (count: number) => void): void => {
    lostListener = listener;
  };
  const onLost = (count: number): void => lostListener?.(count);
  // A failed write read back (kept-responses.ts inRows): every LANDED_CHECK_INTERVAL_MS until the store answers.
  const { recheck, stopChecks } = landedChecks();
  const onPutWorked = (): void => {
    if (!isPutFailing) return;
    isPutFailing = false;
    logger.info({}, "kept responses: answers are kept again");
  };
  // An answer's items not added to its conversation: rare (a store failing, a conversation at its bound), so each
  // is said; the answer was sent.
  const conversationsOver = (rows: ConversationRows): Conversations =>
    new Conversations(
      rows,
      limits.maxBytes,
      clock,
      randomIds,
      (error) =>
        logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          "conversations: an answer's items could not be added to its conversation",
        ),
      bounded,
    );
  if (state.redisUrl !== undefined) {
    // Loaded only with Redis: ioredis costs ~6 MB of memory and ~40 ms of CPU at start.
    const { RedisKeptResponses } = await import("../state/redis-kept-responses.ts");
    const rows = new RedisKeptResponses(state.redisUrl, state.redisKeyPrefix, state.redisCluster, limits, clock);
    const conversationRows = new RedisKeptResponses(
      state.redisUrl,
      state.redisKeyPrefix,
      state.redisCluster,
      limits,
      clock,
      "conversations",
    );
    const { RedisToolCallExtras } = await import("../state/redis-tool-call-extras.ts");
    const toolCallExtras = new RedisToolCallExtras(
      state.redisUrl,
      state.redisKeyPrefix,
      state.redisCluster,
      localToolCallExtras,
    );
    await Promise.all([rows.connect(), conversationRows.connect(), toolCallExtras.connect()]);
    return {
      kept: inRows(rows, onPutError, onPutWorked, bounded, undefined, recheck),
      conversations: conversationsOver(conversationRows),
      toolCallExtras,
      kind: "redis",
      onAnswersLost,
      close: async () => {
        stopChecks();
        await Promise.all([rows.close(), conversationRows.close(), toolCallExtras.close()]);
      },
      writeBeforeExit: () => {},
      status: () => ({ kind: "redis", isDegraded: false, detail: "shared through Redis" }),
    };
  }
  if (state.path === "" || state.path === ":memory:") {
    return {
      kept: inMemory(new ResponseStore(limits, clock)),
      conversations: conversationsOver(new ConversationRowsInMemory(limits, clock)),
      toolCallExtras: localToolCallExtras,
      kind: "memory",
      onAnswersLost,
      close: async () => {},
      writeBeforeExit: () => {},
      status: () => ({
        kind: "memory",
        isDegraded: false,
        detail: "in this process's memory (state.path is not a file)",
      }),
    };
  }
  // Damaged kept-answer tables move the kept answers to memory with a warning, not stop the start.
  const rows = new KeptResponsesFile(state.path, limits, clock, logger);
  let conversationRows: KeptResponsesFile;
  try {
    conversationRows = new KeptResponsesFile(state.path, limits, clock, logger, KEPT_CONVERSATIONS);
  } catch (error) {
    await rows.close();
    throw error;
  }
  return {
    kept: inRows(rows, onPutError, onPutWorked, bounded, onLost, recheck),
    conversations: conversationsOver(conversationRows),
    toolCallExtras: localToolCallExtras,
    kind: "embedded",
    onAnswersLost,
    // Both at once: their last writes wait for the same lock under the same bound, not one after the other.
    close: async () => {
      stopChecks();
      await Promise.all([rows.close(), conversationRows.close()]);
    },
    writeBeforeExit: () => {
      rows.writeBeforeExit();
      conversationRows.writeBeforeExit();
    },
    status: () =>
      rows.isInMemory || conversationRows.isInMemory
        ? {
            kind: "embedded",
            isDegraded: true,
            detail: rows.isInMemory
              ? `the kept answers' tables in ${state.path} are damaged: answers are kept in this process's memory until a restart (the log says how to repair)`
              : `the conversations' tables in ${state.path} are damaged: conversations are kept in this process's memory until a restart (the log says how to repair)`,
          }
        : { kind: "embedded", isDegraded: false, detail: state.path },
  };
}

/**
 * `write`, or a rejection once `timeoutMs` passed without its settling (it may still land: a later read finds it). A
 * `read` (before a write) past it is said so without the landing: it wrote nothing.
 */
function withinMs<T>(write: Promise<T>, timeoutMs: number, what: BoundedStep): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    // A 503 of its own (the layers above pass a store's GatewayError on): "cannot be reached" would be wrong, it
    // was reached and may yet write. Not to be retried blindly: a retry of an append that lands appends twice. A read
    // past it wrote nothing: an ordinary 503, retried.
    const message = `The store of kept responses and conversations did not answer within ${timeoutMs} ms (responses.store.write_timeout_ms)`;
    const error =
      what === "write"
        ? new StoreWriteLateError(`${message}; the write may still land: read back what it wrote before trying again.`)
        : new ServiceUnavailableError(`${message}. Try again shortly.`);
    timer = setTimeout(() => reject(error), timeoutMs);
    // The request waiting for the write holds the process; the bound alone must not hold an exit.
    timer.unref();
  });
  return Promise.race([write, late]).finally(() => clearTimeout(timer));
}
