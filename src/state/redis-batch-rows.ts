// The Files and Batch APIs' rows in Redis, shared by every gateway process on the same Redis and key prefix, so that
// a file uploaded on one replica feeds a batch created on another, and any replica can take over a batch whose runner
// died. Keys (one hash tag, `{batches}`, so a Redis Cluster keeps them in one slot and every script and MULTI works
// there too):
//   {batches}:seq            string: a counter ordering rows as they were added (oldest first, as the state file's rowid)
//   {batches}:files          sorted set: file id, scored by its seq
//   {batches}:file-rows      hash: file id -> row JSON ({id, owner, createdAtMs, json})
//   {batches}:content:<id>   list: the file's bytes in chunks of CONTENT_CHUNK_BYTES
//   {batches}:batches        sorted set: batch id, scored by its seq
//   {batches}:batch-rows     hash: batch id -> row JSON
//   {batches}:runnable       set: ids of the batches not finished (what the replicas poll to take over)
//   {batches}:results:<id>   sorted set: the batch's finished lines (ResultRow JSON), scored by line index, so they
//                            are read in line order as the state file's are (a list from an earlier version, in the
//                            order the lines finished, is made one at the first put or read: IN_LINE_ORDER_LUA (redis-batch-rows-lua.ts),
//                            a few hundred lines per script run, through {batches}:results-converting:<id>)
//   {batches}:done:<id>      hash: line index -> the SHA-1 of its result's JSON, so a line's result is added once
//                            whoever writes it, and a write of the same result again says it is the one kept
//                            (earlier versions wrote 1: such a line's rewrite is refused, as it was then, unless no
//                            result is kept under its index: an earlier version's write that failed, PUT_RESULT_LUA)
//   {batches}:lease:<id>     string: the replica running the batch (SET NX PX, renewed while it runs)
//   {batches}:lock           string: the writer holding the books' count bounds (see `exclusive`)
// Keys named from an id are built in the scripts from a declared key of the same tag: the same Cluster slot.
// Memory: every file's bytes (uploads, output and error files) live in Redis until deleted, expired or evicted, so
// Redis needs up to about batches.max_files x batches.max_file_bytes for them (docs/configuration.md "batches").
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { BatchRow, BatchRows, FileRow, ResultRow } from "./batch-rows.ts";
import { LocalMutex, PageSize } from "./batch-rows.ts";
import {
  DROP_IF_HELD_LUA,
  IN_LINE_ORDER_LUA,
  PUT_RESULT_LUA,
  REPLACE_BATCH_LUA,
  TAKE_LEASE_LUA,
} from "./redis-batch-rows-lua.ts";
import {
  closeClient,
  connectWithin,
  createCommandClient,
  createSubscriberClient,
  type RedisConnection,
  seedNode,
  subscriberOptions,
} from "./redis-client.ts";
import { ClusterSubscriber, nodesOf } from "./redis-cluster-subscriber.ts";
import { type ScriptCommand, withScripts } from "./redis-scripts.ts";

/** ms a command may take: a file's content is up to `batches.max_file_bytes` in one read. */
const COMMAND_TIMEOUT_MS = 10_000;
/** A file's bytes are stored in pieces of this size: no single Redis value (or reply bulk) holds a whole upload. */
const CONTENT_CHUNK_BYTES = 1024 * 1024;
/** ms the books' lock is held at most (a writer that died lets go after it). */
const LOCK_TTL_MS = 10_000;
/** ms between tries of a taken lock, and how long a writer waits for it before its request fails. */
const LOCK_RETRY_MS = 20;
const LOCK_WAIT_MS = 15_000;

/** ms before the first retry of a refused SUBSCRIBE; doubled at each retry, up to SUBSCRIBE_RETRY_MAX_MS. */
const SUBSCRIBE_RETRY_MS = 100;
const SUBSCRIBE_RETRY_MAX_MS = 2_000;
/** Longest batch id a nudge may carry (the gateway's are `batch_` and 32 hex digits). */
const MAX_NUDGE_ID_LENGTH = 100;

/** The batches' scripts (redis-batch-rows-lua.ts), each call's keys under the `{batches}` tag (one Cluster slot). */
const BATCH_SCRIPTS = {
  replaceBatch: { lua: REPLACE_BATCH_LUA, numberOfKeys: 2 },
  putResult: { lua: PUT_RESULT_LUA, numberOfKeys: 3 },
  inLineOrder: { lua: IN_LINE_ORDER_LUA, numberOfKeys: 2 },
  dropIfHeld: { lua: DROP_IF_HELD_LUA, numberOfKeys: 1 },
  takeLease: { lua: TAKE_LEASE_LUA, numberOfKeys: 1 },
} as const;

export class RedisBatchRows implements BatchRows {
  readonly kind = "redis";
  readonly isShared = true;
  readonly #redis: RedisConnection & Record<keyof typeof BATCH_SCRIPTS, ScriptCommand>;
  readonly #base: string;
  /** Whether a batch's JSON is one not finished (the caller knows the shape; state/ does not). */
  readonly #isRunnable: (json: string) => boolean;
  readonly #mutex = new LocalMutex();
  /**
   * The nudges' connection (a connection in subscribe mode runs nothing else), made as the cooldowns' is
   * (redis-state.ts): plain PUBLISH/SUBSCRIBE, which a Redis Cluster delivers from any node to every node, heard
   * through a ClusterSubscriber there. Made at the first `onRunnable`: books that nobody runs from never open it.
   */
  #subscriber: ClusterSubscriber | ReturnType<typeof createSubscriberClient> | undefined;
  readonly #url: string;
  readonly #isCluster: boolean;
  readonly #channel: string;
  #isClosed = false;

  constructor(url: string, keyPrefix: string, isCluster: boolean, isRunnable: (json: string) => boolean) {
    this.#redis = withScripts(createCommandClient(url, isCluster, COMMAND_TIMEOUT_MS), BATCH_SCRIPTS);
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#base = `${keyPrefix}{batches}`;
    this.#channel = `${keyPrefix}batches`;
    this.#url = url;
    this.#isCluster = isCluster;
    this.#isRunnable = isRunnable;
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await connectWithin(this.#redis);
    } catch {
      // reconnects in the background; commands fail at once until then
    }
  }

  onRunnable(listener: (batchId: string | undefined) => void): void {
    if (this.#subscriber !== undefined || this.#isClosed) return;
    const subscriber = this.#isCluster
      ? new ClusterSubscriber(seedNode(this.#url), () => nodesOf(this.#redis), subscriberOptions(this.#url))
      : createSubscriberClient(this.#url);
    this.#subscriber = subscriber;
    // Its errors are the command connection's, which fail the routes and the runner's steps meanwhile.
    subscriber.on("error", () => {});
    subscriber.on("message", (channel: string, text: string) => {
      if (channel === this.#channel && text.length > 0 && text.length <= MAX_NUDGE_ID_LENGTH) listener(text);
    });
    // Every new connection after the first hears nothing until it subscribes again (autoResubscribe is off, see
    // subscriberOptions); what was published meanwhile was missed: every unfinished batch is looked at.
    let isFirst = true;
    subscriber.on("ready", () => {
      if (isFirst) {
        isFirst = false;
        return;
      }
      void this.#subscribe().then(() => listener(undefined));
    });
    void this.#subscribe();
    subscriber.connect().catch(() => {
      // reconnects in the background; the looks every third of lease_ms cover what is missed meanwhile
    });
  }

  /** SUBSCRIBE, retried until it holds or the rows close (a connection lost before its answer never sends it again). */
  async #subscribe(): Promise<void> {
    for (let delayMs = SUBSCRIBE_RETRY_MS; !this.#isClosed; delayMs = Math.min(delayMs * 2, SUBSCRIBE_RETRY_MAX_MS)) {
      try {
        await this.#subscriber?.subscribe(this.#channel);
        return;
      } catch {
        await sleep(delayMs);
      }
    }
  }

  /** Tells the other replicas a batch may be taken now. A nudge lost is found at their next look: never throws. */
  async #nudge(batchId: string): Promise<void> {
    await this.#redis.publish(this.#channel, batchId).catch(() => {});
  }

  #key(name: string): string {
    return `${this.#base}:${name}`;
  }

  async putFile(row: FileRow, content: Buffer | readonly Buffer[]): Promise<void> {
    const seq = await this.#redis.incr(this.#key("seq"));
    const contentKey = this.#key(`content:${row.id}`);
    const chunks: Buffer[] = [];
    for (const part of Buffer.isBuffer(content) ? [content] : content) {
      for (let offset = 0; offset < part.length; offset += CONTENT_CHUNK_BYTES) {
        chunks.push(part.subarray(offset, offset + CONTENT_CHUNK_BYTES));
      }
    }
    // One MULTI: the row never names bytes that are not there (an empty file is a row with no content list).
    const multi = this.#redis.multi().del(contentKey);
    if (chunks.length > 0) multi.rpush(contentKey, ...chunks);
    await multi.hset(this.#key("file-rows"), row.id, encodeRow(row)).zadd(this.#key("files"), seq, row.id).exec();
  }

  async file(id: string): Promise<FileRow | undefined> {
    return decodeRow(await this.#redis.hget(this.#key("file-rows"), id));
  }

  async fileContent(id: string): Promise<Buffer | undefined> {
    const replies = await this.#redis
      .multi()
      .hexists(this.#key("file-rows"), id)
      .lrangeBuffer(this.#key(`content:${id}`), 0, -1)
      .exec();
    if (replies?.[0]?.[1] !== 1) return undefined;
    const chunks = replies[1]?.[1];
    return Array.isArray(chunks) ? Buffer.concat(chunks as Buffer[]) : Buffer.alloc(0);
  }

  async files(): Promise<readonly FileRow[]> {
    return this.#ordered("files", "file-rows");
  }

  async deleteFile(id: string): Promise<boolean> {
    const replies = await this.#redis
      .multi()
      .zrem(this.#key("files"), id)
      .hdel(this.#key("file-rows"), id)
      .del(this.#key(`content:${id}`))
      .exec();
    return replies?.[1]?.[1] === 1;
  }

  async putBatch(row: BatchRow): Promise<void> {
    const seq = await this.#redis.incr(this.#key("seq"));
    const multi = this.#redis.multi().hset(this.#key("batch-rows"), row.id, encodeRow(row));
    if (this.#isRunnable(row.json)) multi.sadd(this.#key("runnable"), row.id);
    else multi.srem(this.#key("runnable"), row.id);
    // NX: a batch written again keeps its place among the oldest.
    const replies = await multi.zadd(this.#key("batches"), "NX", seq, row.id).exec();
    // A new batch to run: any replica may take it now (the one creating it tries too).
    if (this.#isRunnable(row.json) && replies?.at(-1)?.[1] === 1) await this.#nudge(row.id);
  }

  async replaceBatch(row: BatchRow, expectedJson: string): Promise<boolean> {
    const written = await this.#redis.replaceBatch(
      this.#key("batch-rows"),
      this.#key("runnable"),
      row.id,
      encodeRow({ ...row, json: expectedJson }),
      encodeRow(row),
      this.#isRunnable(row.json) ? "1" : "0",
    );
    return written === 1;
  }

  async batch(id: string): Promise<BatchRow | undefined> {
    return decodeRow(await this.#redis.hget(this.#key("batch-rows"), id));
  }

  async batches(): Promise<readonly BatchRow[]> {
    return this.#ordered("batches", "batch-rows");
  }

  async runnableBatchIds(): Promise<readonly string[]> {
    return this.#redis.smembers(this.#key("runnable"));
  }

  async deleteBatch(id: string): Promise<boolean> {
    const replies = await this.#redis
      .multi()
      .zrem(this.#key("batches"), id)
      .hdel(this.#key("batch-rows"), id)
      .srem(this.#key("runnable"), id)
      .del(this.#key(`results:${id}`), this.#key(`done:${id}`), this.#key(`results-converting:${id}`))
      .exec();
    return replies?.[1]?.[1] === 1;
  }

  async putResult(batchId: string, result: ResultRow): Promise<boolean> {
    for (;;) {
      const written = await this.#redis.putResult(
        this.#key(`results:${batchId}`),
        this.#key(`done:${batchId}`),
        this.#key(`results-converting:${batchId}`),
        String(result.index),
        JSON.stringify(result),
      );
      if (written !== 2) return written === 1;
      await this.#inLineOrder(batchId);
    }
  }

  /** An earlier version's results list made the sorted set, a few lines per script run (IN_LINE_ORDER_LUA). */
  async #inLineOrder(batchId: string): Promise<void> {
    const keys = [this.#key(`results:${batchId}`), this.#key(`results-converting:${batchId}`)];
    while ((await this.#redis.inLineOrder(...keys)) !== 1) {}
  }

  /**
   * Pages in line order: each the lines after the last index read (ZRANGEBYSCORE, parsed alone), so a batch's end never
   * parses 50,000 lines in one turn of the event loop, and a line written meanwhile (a replica whose lease lapsed)
   * shifts no page: none is read twice or skipped, as the state file's `line_index > ?` pages.
   */
  async *resultPages(batchId: string, pageBytes: number): AsyncGenerator<readonly ResultRow[]> {
    const key = this.#key(`results:${batchId}`);
    await this.#inLineOrder(batchId);
    const size = new PageSize(pageBytes);
    for (let afterIndex = -1; ; ) {
      const count = size.lines;
      const lines = await this.#redis.zrangebyscore(key, `(${afterIndex}`, "+inf", "LIMIT", 0, count);
      const page = lines.map((line) => JSON.parse(line) as ResultRow);
      size.saw(page);
      if (page.length > 0) yield page;
      const last = page.at(-1);
      if (lines.length < count || last === undefined) return;
      afterIndex = last.index;
    }
  }

  /**
   * One writer across the replicas: a lock key (SET NX PX with this call's token, dropped only by its holder), so the
   * count bounds' read-then-write (batch-books.ts) is never interleaved with another replica's. Waits its turn; after
   * LOCK_WAIT_MS the call fails (a Redis that does not answer).
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      const token = randomBytes(12).toString("hex");
      const lock = this.#key("lock");
      const deadline = Date.now() + LOCK_WAIT_MS;
      while ((await this.#redis.set(lock, token, "PX", LOCK_TTL_MS, "NX")) !== "OK") {
        if (Date.now() > deadline) throw new Error("the batches' lock in Redis stayed taken");
        await sleep(LOCK_RETRY_MS);
      }
      try {
        return await work();
      } finally {
        await this.#redis.dropIfHeld(lock, token).catch(() => {});
      }
    });
  }

  async takeLease(batchId: string, holder: string, ttlMs: number): Promise<boolean> {
    const taken = await this.#redis.takeLease(this.#key(`lease:${batchId}`), holder, String(ttlMs));
    return taken === 1;
  }

  async dropLease(batchId: string, holder: string): Promise<void> {
    const dropped = await this.#redis.dropIfHeld(this.#key(`lease:${batchId}`), holder);
    // Given up while still unfinished (a graceful exit): another replica resumes it now, not at its next look.
    if (dropped === 1 && (await this.#redis.sismember(this.#key("runnable"), batchId)) === 1) {
      await this.#nudge(batchId);
    }
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    await Promise.all([
      closeClient(this.#redis),
      this.#subscriber === undefined ? undefined : closeClient(this.#subscriber),
    ]);
  }

  async #ordered(index: string, rows: string): Promise<readonly FileRow[]> {
    const ids: string[] = await this.#redis.zrange(this.#key(index), "0", "-1");
    if (ids.length === 0) return [];
    const values = await this.#redis.hmget(this.#key(rows), ...ids);
    return values.flatMap((value) => decodeRow(value) ?? []);
  }
}

function encodeRow(row: FileRow): string {
  return JSON.stringify({ id: row.id, owner: row.owner, createdAtMs: row.createdAtMs, json: row.json });
}

function decodeRow(value: string | null | undefined): FileRow | undefined {
  if (value === null || value === undefined) return undefined;
  return JSON.parse(value) as FileRow;
}
