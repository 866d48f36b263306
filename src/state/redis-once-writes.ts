// Reconciles and budget-lease give-backs (sent in batches, redis-write-batches.ts) move shared counts by a delta:
// sent twice, a delta counts twice; never sent again after a failure, the shared count kept the reserve's estimate
// (or the lease's unused units) for the rest of its window. Each such write now carries a marker key that its script sets before it moves anything
// (WRITE_BATCH_LUA): a second send of a write that already ran (a timed-out one usually has) changes nothing. So a
// write that failed is simply sent again, a few times, while Redis is up.
import type { SharedStateRedis } from "./redis-client.ts";
import { onceAppliedKey, onceMarkerKey } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";

/** ms before the first resend of a failed write; doubled at each resend. */
const RESEND_AFTER_MS = 250;
/** Resends of one write before it is given up: at 250, 500, 1,000 and 2,000 ms, ~4 s in all. */
const MAX_RESENDS = 4;
/** ms a marker lives: far longer than every send of its write can take, command timeouts included. */
const MARKER_MS = 60_000;

/** A batch's marker key, and the set of this process's batches applied on its slot (redis-lua-writes.ts). */
export interface OnceMarker {
  readonly key: string;
  readonly applied: string;
  /** Its number in this process (the last part of `key`, its score in `applied`): a later batch's is higher. */
  readonly id: number;
  /** The budget scope the batch writes: its failures count against that scope's provider, named in the warning. */
  readonly scopeId: string;
}

/** A batch's KEYS and ARGV for WRITE_BATCH_LUA, after its marker and the marker's lifetime. */
export interface BatchScript {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
}

/** A batch's script, or (a resend that reads something first) a promise of it; undefined: nothing left to send. */
export type BatchScriptOrLater = BatchScript | undefined | Promise<BatchScript | undefined>;

/** A write and one of its keys (undefined: its outcome counts for the link alone). */
interface Write {
  readonly send: () => Promise<unknown>;
  readonly key: string | undefined;
  /** Its budget scope, when it has one: a Cluster group's warning then names the provider ("its keys" before). */
  readonly scopeId?: string | undefined;
  /** Asked when every resend failed: true, the caller keeps it. */
  readonly keep: (() => boolean) | undefined;
}

export class OnceWrites {
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #instanceId: string;
  /** Resends waiting for their time, with what settles their write's promise. */
  readonly #waiting = new Map<NodeJS.Timeout, () => void>();
  /** Writes not settled yet (sent and unanswered, or waiting for a resend). */
  readonly #unsettled = new Set<Promise<void>>();
  readonly #markerMs: number;
  #nextId = 1;
  #isStopped = false;

  constructor(link: RedisLink, prefix: string, instanceId: string, markerMs = MARKER_MS) {
    this.#link = link;
    this.#prefix = prefix;
    this.#instanceId = instanceId;
    this.#markerMs = markerMs;
  }

  /** A new write's marker key, beside `scopeId`'s keys (the same hash tag, so the same Cluster slot; not a budget key). */
  marker(scopeId: string): OnceMarker {
    const id = this.#nextId++;
    return {
      key: onceMarkerKey(this.#prefix, scopeId, this.#instanceId, id),
      applied: onceAppliedKey(this.#prefix, scopeId, this.#instanceId),
      id,
      scopeId,
    };
  }

  /**
   * Sends a WRITE_BATCH_LUA call (redis-write-batches.ts; again after a failure) under a new marker beside `scopeId`'s
   * keys. `script` is asked at every send for the script's KEYS and ARGV after the marker and its lifetime (what is
   * left to write may shrink between sends); undefined: nothing left, the write is settled without a call.
   */
  batch(redis: SharedStateRedis, scopeId: string, script: () => BatchScriptOrLater): Promise<void> {
    return this.batchUnder(redis, this.marker(scopeId), script);
  }

  /**
   * As `batch`, under a marker taken before (a batch that rode with a reserve that failed is sent alone, a batch kept
   * for its Cluster master's return). `keep`: asked when every resend failed; true: the caller keeps the write to
   * send it later (not given up, not said).
   */
  batchUnder(
    redis: SharedStateRedis,
    marker: OnceMarker,
    script: () => BatchScriptOrLater,
    keep?: () => boolean,
  ): Promise<void> {
    const sendNow = (current: BatchScript | undefined): Promise<unknown> =>
      current === undefined
        ? Promise.resolve()
        : redis.budgetWriteBatch(
            current.keys.length + 2,
            marker.key,
            marker.applied,
            ...current.keys,
            this.#markerMs,
            ...current.args,
          );
    // Known at once (a first send): sent in this turn, so that a reserve issued after it runs after it in Redis.
    return this.#track({
      send: () => {
        const current = script();
        return current instanceof Promise ? current.then(sendNow) : sendNow(current);
      },
      key: marker.key,
      keep,
      scopeId: marker.scopeId,
    });
  }

  /** A batch's marker argument (ms), for a batch sent inside a reserve (RESERVE_AFTER_WRITES_LUA). */
  get markerMs(): number {
    return this.#markerMs;
  }

  /**
   * Sends a write that is safe to send twice (its script applies it at most once, `send` sending the same marker
   * every time; or it is idempotent), and sends it again after a failure. Settles once it is answered or given up;
   * never rejects. `key`: one of its keys (all in one slot), so that on a Cluster its outcome counts for that slot's
   * master (redis-slot-groups.ts).
   */
  send(send: () => Promise<unknown>, key?: string, keep?: () => boolean): Promise<void> {
    return this.#track({ send, key, keep });
  }

  #track(sent: Write): Promise<void> {
    const write = new Promise<void>((settle) => this.#attempt(sent, 0, settle));
    const unsettled = write.finally(() => this.#unsettled.delete(unsettled));
    this.#unsettled.add(unsettled);
    return write;
  }

  /**
   * Settles once every write sent so far is answered or given up (the process is exiting: a reconcile of a request
   * it ended, a lease's give-back). Never rejects; the caller bounds the wait.
   */
  async settled(): Promise<void> {
    await Promise.all([...this.#unsettled]);
  }

  /** No more resends (the backend is closing): writes waiting for one are given up. Sends under way go on. */
  stop(): void {
    this.#isStopped = true;
    for (const [timer, settle] of this.#waiting) {
      clearTimeout(timer);
      settle();
    }
    this.#waiting.clear();
  }

  #attempt(write: Write, resends: number, settle: () => void): void {
    let command: Promise<unknown>;
    try {
      command = write.send();
    } catch (error) {
      // A command that throws instead of rejecting is a failure like any other, not an escaping exception.
      command = Promise.reject(error);
    }
    command.then(
      () => {
        this.#link.recordSuccess(write.scopeId, write.key);
        settle();
      },
      (error: unknown) => {
        // A KeyedFailure (the data epoch's read) counts against its own key's master (RedisLink.recordFailure).
        this.#link.recordFailure(error, write.scopeId, write.key);
        this.#resendLater(write, resends, settle, error);
      },
    );
  }

  #resendLater(write: Write, resends: number, settle: () => void, error: unknown): void {
    if (this.#isStopped || resends >= MAX_RESENDS) {
      // Given up (not stopped, which gives up on purpose): said, not silent (RedisLink.recordGivenUp), unless the
      // caller keeps it (a Cluster master down: sent when it answers again, redis-write-batches.ts).
      if (!this.#isStopped && write.keep?.() !== true) this.#link.recordGivenUp(error);
      settle();
      return;
    }
    const timer = setTimeout(
      () => {
        this.#waiting.delete(timer);
        // While Redis is down a send would fail at once: that turn is skipped, not spent on a certain failure.
        if (this.#link.isUp) this.#attempt(write, resends + 1, settle);
        else this.#resendLater(write, resends + 1, settle, error);
      },
      RESEND_AFTER_MS * 2 ** resends,
    );
    timer.unref();
    this.#waiting.set(timer, settle);
  }
}
