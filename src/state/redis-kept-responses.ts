// Kept Responses API answers in Redis, shared by every gateway process on the same Redis and key prefix, so a
// `previous_response_id` answered by one process continues on another. Keys (one hash tag, so a Redis Cluster
// keeps them in one slot and the delete script and MULTI work there too):
//   {responses}        sorted set: response id, scored by when it was kept (ms)
//   {responses}:rows   hash: response id -> JSON
//   {responses}:meta   hash: response id -> {"bytes":N,"itemIds":[...]}
//   {responses}:items  hash: output item id -> response id
//   {responses}:bytes  string: total bytes of the rows
//   {responses}:owners       hash: owner -> rows it holds (owner: the named client that wrote the row, '' unnamed)
//   {responses}:owner-bytes  hash: owner -> bytes it holds
//   {responses}:by-owner     sorted set, by lex: "owner\0<ms, 15 digits>\0id", an owner's rows oldest first
//   {responses}:events:<id>  list: a streamed background response's events, appended (the one key a script names
//                            without declaring it: built from the tag's key, so in the same Cluster slot)
// Conversations (OpenAI's Conversations API) are rows of the same shape under `{conversations}`, bounded alike; a
// conversation's log (its items, appended a turn at a time: protocols/responses/conversation-log.ts) is its row's
// events list, `{conversations}:events:<id>`.
// Bounded by count, total bytes and age: every put evicts expired rows, then, past a cap, the oldest row of the
// owner holding the most of that cap (rows or bytes; ties: the owner with the older row), so that one client's flood
// evicts its own rows and not another's (protocols/responses/owner-shares.ts says why); with one owner that is the
// oldest row, as before. Rows written before owners were tallied (no `member` in their meta) are evicted only when
// no tallied owner is left, oldest first, or when they expire. Every write and eviction is one Lua script over keys
// of one hash tag (atomic, and Redis Cluster-safe: every key is declared; the scripts are in
// redis-kept-responses-lua.ts). A read ignores a row older than the age cap. The row and limit shapes match
// protocols' KeptResponseRows.
import type { Clock } from "../clock.ts";
import type { ConditionalWrite, KeptResponseLimits, KeptResponseRow } from "./embedded-kept-responses.ts";
import { closeClient, connectWithin, createCommandClient, type RedisConnection } from "./redis-client.ts";
import { type KeptScriptCommands, withKeptScripts } from "./redis-kept-responses-lua.ts";

/** ms a command may take: a continuation waits for its history, so this is longer than the budget checks'. */
const COMMAND_TIMEOUT_MS = 1_000;
/** Rows one eviction script removes at most before it answers (the caller runs it again): a short script. */
const EVICT_BATCH = 100;
/** Item ids one read of the item index asks for at most (getIdsByItems): a short command. */
const ITEMS_PER_READ = 1_000;
/** Eviction scripts one write runs at most (a million rows); the next write goes on. */
const MAX_EVICT_ROUNDS = 10_000;
/**
 * ms a compare and set whose reply was lost waits, at most, for Redis to answer the read that says whether it
 * landed (a reconnection: 100 ms, then up to the 1 s connect timeout), reads UNKNOWN_OUTCOME_RETRY_MS apart.
 */
const UNKNOWN_OUTCOME_WAIT_MS = 3_000;
const UNKNOWN_OUTCOME_RETRY_MS = 50;
/** ms between two reads of Redis's clock (#deadlineOnRedisClock): two clocks drift apart by far less meanwhile. */
const CLOCK_MEASURE_INTERVAL_MS = 60_000;

/** Redis's clock minus this process's (ms), how far off that may be, and when it was measured (this process's). */
interface ClockOffset {
  readonly offsetMs: number;
  readonly uncertaintyMs: number;
  readonly measuredAtMs: number;
}

/** Redis answered, with an error (ioredis's ReplyError): unlike a lost reply, the command's outcome is known. */
function isErrorReply(error: unknown): boolean {
  return error instanceof Error && error.name === "ReplyError";
}

/**
 * The command was never sent: the connection was down when it was issued (no offline queue; ioredis's words, of a
 * single Redis and of a Cluster). Its outcome is known (it did not land): no read says more, and waiting for one
 * made every write during an outage take UNKNOWN_OUTCOME_WAIT_MS.
 */
function isNeverSent(error: unknown): boolean {
  return error instanceof Error && error.message.includes("enableOfflineQueue options is false");
}

/** The owner tallied for a row written by an unnamed key (a client name is never empty). */
const UNNAMED_OWNER = "";

export class RedisKeptResponses {
  readonly kind = "redis";
  readonly #redis: RedisConnection & KeptScriptCommands;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  #clockOffset: ClockOffset | undefined;
  readonly #keys: readonly [
    index: string,
    rows: string,
    meta: string,
    items: string,
    bytes: string,
    owners: string,
    ownerBytes: string,
    byOwner: string,
  ];

  /** `tag`: the keys' hash tag, `responses` or `conversations` (each kind of row in keys of its own). */
  constructor(
    url: string,
    keyPrefix: string,
    isCluster: boolean,
    limits: KeptResponseLimits,
    clock: Clock,
    tag: "responses" | "conversations" = "responses",
  ) {
    this.#redis = withKeptScripts(createCommandClient(url, isCluster, COMMAND_TIMEOUT_MS));
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#limits = limits;
    this.#clock = clock;
    const base = `${keyPrefix}{${tag}}`;
    this.#keys = [
      base,
      `${base}:rows`,
      `${base}:meta`,
      `${base}:items`,
      `${base}:bytes`,
      `${base}:owners`,
      `${base}:owner-bytes`,
      `${base}:by-owner`,
    ];
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await connectWithin(this.#redis);
    } catch {
      // reconnects in the background; commands fail at once until then
    }
  }

  /** false: a row of its touchIds was gone (PUT_LUA); written all the same. */
  async put(row: KeptResponseRow): Promise<boolean> {
    const bytes = Buffer.byteLength(row.json);
    let missing = 0;
    if (bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0) {
      const written = this.#written(row, bytes);
      const touched = row.touchIds ?? [];
      const oldest = String(this.#oldestKeptMs());
      const touch = [oldest, String(touched.length), ...touched];
      missing = Number(
        await this.#redis.keptPut(...this.#keys, row.id, row.json, ...written, ...touch, ...row.itemIds),
      );
    } else {
      await this.#deleteRow(row.id);
    }
    await this.#evict();
    return missing === 0;
  }

  /**
   * Writes `row` only if the kept row is still `expectedJson`; false when another writer changed or deleted it
   * meanwhile (the caller reads it again). A row over the bounds is not kept, as `put` does: the unchanged row is
   * deleted and the answer is false. Then evicts, as `put` does.
   *
   * A script whose reply is lost (the connection dropped, or the command timed out, after it was sent: it may have
   * run) is not taken for a refusal: the row is read again, once Redis answers (UNKNOWN_OUTCOME_WAIT_MS at most), and
   * the answer decided from it: `row` is kept -> written; `expectedJson` still -> it did not land, sent again; another
   * row, or none -> false. A lost reply taken for a failure made a background run's next heartbeat compare against
   * its previous state and end the run as if it had been cancelled, and a final save that had landed was reported as
   * not kept (the answer did not join its conversation).
   */
  async putIfUnchanged(row: KeptResponseRow, expectedJson: string, options: ConditionalWrite = {}): Promise<boolean> {
    const bytes = Buffer.byteLength(row.json);
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) {
      if (this.#isLate(options)) return false;
      await this.#redis.keptDeleteIfUnchanged(...this.#keys, row.id, expectedJson);
      return false;
    }
    const deadlineMs = performance.now() + UNKNOWN_OUTCOME_WAIT_MS;
    let lostReply: unknown;
    for (;;) {
      if (this.#isLate(options)) return false;
      let written: unknown;
      try {
        written = await this.#compareAndSet(row, bytes, expectedJson, options);
      } catch (error) {
        // Redis answered with an error, or the script never left: the outcome is known (nothing to read again).
        if (isErrorReply(error) || (isNeverSent(error) && lostReply === undefined)) throw error;
        lostReply = error;
        const kept = await this.#rowOnceAnswered(row.id, deadlineMs, error);
        if (kept === row.json) break;
        if (kept !== expectedJson) return false;
        if (performance.now() >= deadlineMs) throw error;
        continue;
      }
      if (written === 1) break;
      // Refused after a lost reply: that attempt may have run since (a timed-out command Redis ran late), and then
      // this one found the row changed by it.
      if (lostReply === undefined || (await this.#rowOnceAnswered(row.id, deadlineMs, lostReply)) !== row.json) {
        return false;
      }
      break;
    }
    // The row is written whatever the eviction does: the next write evicts again. A failure here reported the write
    // as failed (a background run then took its next refused heartbeat for a cancel).
    await this.#evict().catch(() => {});
    return true;
  }

  /**
   * A run's late write (background.ts BACKGROUND_LATE_WRITE_MS), refused by this process's clock just before the
   * script is sent, and by Redis's in the script (#deadlineOnRedisClock): one held on the way is refused there.
   */
  #isLate(options: ConditionalWrite): boolean {
    return options.notAfterMs !== undefined && this.#clock.now() > options.notAfterMs;
  }

  /**
   * A run's deadline (`notAfterMs`, this process's clock) on Redis's clock, for the scripts to check as they run
   * ('': none, or Redis's clock not known): a script checked in time here but held on the way (a slow network, a
   * Redis paused or busy: it lands whenever Redis reads it, even after the command timed out here) no longer lands
   * after a reader elsewhere showed the run failed. Redis's clock is read (TIME, through a script on the rows' slot:
   * the node that runs the writes) once every CLOCK_MEASURE_INTERVAL_MS; its distance to this process's clock is
   * added to the deadline, with the read's half round trip (its uncertainty), so that neither clock's setting
   * matters, only that they run at the same rate.
   */
  async #deadlineOnRedisClock(notAfterMs: number | undefined): Promise<string> {
    if (notAfterMs === undefined) return "";
    const offset = await this.#redisClockOffset();
    return offset === undefined ? "" : String(Math.ceil(notAfterMs + offset.offsetMs + offset.uncertaintyMs));
  }

  async #redisClockOffset(): Promise<ClockOffset | undefined> {
    const known = this.#clockOffset;
    if (known !== undefined && Math.abs(this.#clock.now() - known.measuredAtMs) < CLOCK_MEASURE_INTERVAL_MS) {
      return known;
    }
    const sentMs = performance.now();
    let time: unknown;
    try {
      time = await this.#redis.keptTime(this.#keys[0]);
    } catch {
      // Not known now: the script goes without it (this process's check stands), measured again next time.
      return known;
    }
    const halfTripMs = (performance.now() - sentMs) / 2;
    if (!Array.isArray(time)) return known;
    const redisMs = Number(time[0]) * 1_000 + Number(time[1]) / 1_000;
    if (!Number.isFinite(redisMs)) return known;
    const nowMs = this.#clock.now();
    this.#clockOffset = { offsetMs: redisMs - (nowMs - halfTripMs), uncertaintyMs: halfTripMs, measuredAtMs: nowMs };
    return this.#clockOffset;
  }

  async #compareAndSet(
    row: KeptResponseRow,
    bytes: number,
    expectedJson: string,
    options: ConditionalWrite,
  ): Promise<unknown> {
    const { events } = options;
    return this.#redis.keptPutIfUnchanged(
      ...this.#keys,
      row.id,
      expectedJson,
      row.json,
      ...this.#written(row, bytes),
      await this.#deadlineOnRedisClock(options.notAfterMs),
      String(events?.keptCount ?? -1),
      String(events?.events.length ?? 0),
      ...(events?.events ?? []),
      ...row.itemIds,
    );
  }

  /**
   * The row's JSON as kept (undefined: none), read again and again UNKNOWN_OUTCOME_RETRY_MS apart until Redis
   * answers (the client has no offline queue: a read while it reconnects fails at once); past `deadlineMs`,
   * `lostReply` is thrown (the outcome stays unknown).
   */
  async #rowOnceAnswered(id: string, deadlineMs: number, lostReply: unknown): Promise<string | undefined> {
    for (;;) {
      try {
        return (await this.#redis.hget(this.#keys[1], id)) ?? undefined;
      } catch (error) {
        if (isErrorReply(error)) throw error;
        if (performance.now() >= deadlineMs) throw lostReply;
      }
      await new Promise((resolve) => setTimeout(resolve, UNKNOWN_OUTCOME_RETRY_MS));
    }
  }

  /** The scripts' arguments after the JSON: now (ms), bytes, meta, owner, by-owner member. */
  #written(row: KeptResponseRow, bytes: number): [string, string, string, string, string] {
    const now = this.#clock.now();
    const owner = row.owner ?? UNNAMED_OWNER;
    // Sorted by lex within the owner: the 15-digit time orders its rows oldest first.
    const member = `${owner}\u0000${String(Math.max(0, Math.floor(now))).padStart(15, "0")}\u0000${row.id}`;
    const meta = JSON.stringify({ bytes, itemIds: row.itemIds, owner, member });
    return [String(now), String(bytes), meta, owner, member];
  }

  /** See APPEND_EVENTS_LUA: false when the row is gone or the list cannot have come from these events. Then evicts. */
  async appendEvents(id: string, keptCount: number, events: readonly string[], notAfterMs?: number): Promise<boolean> {
    if (events.length === 0) return true;
    if (notAfterMs !== undefined && this.#clock.now() > notAfterMs) return false;
    const deadline = await this.#deadlineOnRedisClock(notAfterMs);
    const appended = await this.#redis.keptAppendEvents(...this.#keys, id, String(keptCount), deadline, ...events);
    await this.#evict();
    return appended === 1;
  }

  /** A row's appended events from index `from` on (none: an empty list). */
  async getEvents(id: string, from: number): Promise<string[]> {
    return this.#redis.lrange(`${this.#keys[0]}:events:${id}`, from, -1);
  }

  async get(id: string): Promise<string | undefined> {
    const [index, rows] = this.#keys;
    const replies = await this.#redis.multi().zscore(index, id).hget(rows, id).exec();
    const storedAtMs = replies?.[0]?.[1];
    const json = replies?.[1]?.[1];
    if (typeof json !== "string" || storedAtMs === null || storedAtMs === undefined) return undefined;
    return Number(storedAtMs) > this.#oldestKeptMs() ? json : undefined;
  }

  async getByItem(itemId: string): Promise<string | undefined> {
    const responseId = await this.#redis.hget(this.#keys[3], itemId);
    return responseId === null ? undefined : this.get(responseId);
  }

  /** The row ids the item index gives these item ids (an expired row's too: `get` ignores it), a chunk per command. */
  async getIdsByItems(itemIds: readonly string[]): Promise<(string | undefined)[]> {
    const found: (string | undefined)[] = [];
    for (let start = 0; start < itemIds.length; start += ITEMS_PER_READ) {
      const ids = await this.#redis.hmget(this.#keys[3], ...itemIds.slice(start, start + ITEMS_PER_READ));
      for (const id of ids) found.push(id ?? undefined);
    }
    return found;
  }

  /** True when a row that had not expired was deleted (decided in the script: no read before it). */
  async delete(id: string): Promise<boolean> {
    const deleted = await this.#redis.keptDelete(...this.#keys, id, String(this.#oldestKeptMs()));
    return deleted === 1;
  }

  async close(): Promise<void> {
    await closeClient(this.#redis);
  }

  #oldestKeptMs(): number {
    return this.#clock.now() - this.#limits.maxAgeMs;
  }

  async #deleteRow(id: string): Promise<boolean> {
    return (await this.#redis.keptDelete(...this.#keys, id)) === 1;
  }

  async #evict(): Promise<void> {
    const limits = [String(this.#oldestKeptMs()), String(this.#limits.maxEntries), String(this.#limits.maxBytes)];
    // More to evict: another short script, so other commands are served in between (bounded, whatever the data).
    for (let round = 0; round < MAX_EVICT_ROUNDS; round++) {
      const more = await this.#redis.keptEvict(...this.#keys, ...limits, String(EVICT_BATCH));
      if (more !== 1) return;
    }
  }
}
