// The batches of budget writes (redis-write-batches.ts) kept on a Redis Cluster for a master's return, and whether one
// of them already ran. A batch applies once under its marker (60 s) and its entry in the process's applied set on the
// slot (the newest ONCE_APPLIED_MAX, redis-lua-writes.ts). While its own master does not answer, no batch of the
// process applies there, so a kept batch that ran (its reply lost) is still listed when it is replayed. A batch with
// give-backs that waits for the data epoch's master alone (its resends read the epoch first) sits beside a master
// that answers: live batches go on there, and after an epoch outage longer than its marker's life it was pushed out
// of the applied set and applied twice. So a kept batch that may have run is looked up (ZMSCORE and its marker) on
// its master as soon as that master answers: found, it is dropped (it ran); not found, it is known not to have run.
// Its replay looks it up once more first if that was not answered (a replay's own resends that fail on the epoch keep
// it again the same way).
import type { SharedStateRedis } from "./redis-client.ts";
import type { RedisLink } from "./redis-link.ts";
import type { OnceMarker } from "./redis-once-writes.ts";

/**
 * Writes kept per provider while its Cluster master does not answer; the oldest batches beyond are dropped (a
 * give-back lost errs on the side of sending less, a charge lost on the side of sending more, as before keeping).
 */
export const MAX_KEPT_WRITES = 1_000;
/** ms before a lookup of kept batches that failed is asked again (its master answering). */
const LOOK_UP_AGAIN_AFTER_MS = 1_000;

export type Argument = string | number;

/** One write of a batch: "c" a reconcile or give-back, "t" a retime (WRITE_BATCH_LUA's kinds). */
export interface Write {
  readonly kind: "c" | "t";
  /**
   * The budget scope it moves: a batch holds one hash tag's writes, and a client's budget (`client:NAME`) shares the
   * tag of a provider of the same name, so a dropped write is counted by its own scope, not by the batch's.
   */
  readonly scopeId: string;
  readonly keys: readonly string[];
  readonly args: readonly Argument[];
}

export interface Batch {
  /** A scope of the provider: the batch's marker goes beside its keys. */
  readonly scopeId: string;
  writes: Write[];
  /** The ledger's generation when the batch was begun: sent again in a later one, its give-backs are left out. */
  readonly generation: number;
  /** The data set Redis held when the batch was begun (redis-data-epoch.ts): sent again in another, likewise. */
  readonly dataSet: string | undefined;
  /** Settles once the batch is answered or given up (OnceWrites never rejects). */
  readonly sent: PromiseWithResolvers<void>;
}

/** A batch kept for its master's return, with the marker it was (or will first be) sent under. */
export interface KeptBatch {
  readonly batch: Batch;
  readonly marker: OnceMarker;
  /** A send of it was made and not looked up since: it may have run, its reply lost. */
  mayHaveRun: boolean;
}

/** Whether a batch holds a reconcile or give-back (a resend of it reads the data epoch first). */
export function hasReconciles(batch: Batch): boolean {
  return batch.writes.some((write) => write.kind === "c");
}

type KeptBatchesLink = Pick<
  RedisLink,
  "isUpFor" | "recordSuccess" | "recordFailure" | "recordKeptDropped" | "countKeptDropped"
>;

export class KeptBatches {
  readonly #redis: SharedStateRedis;
  readonly #link: KeptBatchesLink;
  /** Per provider hash tag, the batches kept, oldest first. */
  readonly #kept = new Map<string, KeptBatch[]>();
  /** Per provider hash tag, the writes the bound dropped since its batches were last taken (said when taken). */
  readonly #dropped = new Map<string, number>();
  /** Tags whose lookup is under way, or waiting to be asked again. */
  readonly #lookingUp = new Set<string>();

  constructor(redis: SharedStateRedis, link: KeptBatchesLink) {
    this.#redis = redis;
    this.#link = link;
  }

  get writeCount(): number {
    let writes = 0;
    for (const kept of this.#kept.values()) for (const { batch } of kept) writes += batch.writes.length;
    return writes;
  }

  keep(tag: string, kept: KeptBatch): void {
    const list = this.#kept.get(tag) ?? [];
    list.push(kept);
    let writes = list.reduce((sum, { batch }) => sum + batch.writes.length, 0);
    let dropped = 0;
    while (writes > MAX_KEPT_WRITES && list.length > 1) {
      const oldest = list.shift()?.batch.writes ?? [];
      writes -= oldest.length;
      dropped += oldest.length;
      for (const write of oldest) this.#link.countKeptDropped(write.scopeId, 1);
    }
    this.#kept.set(tag, list);
    if (dropped > 0) {
      const before = this.#dropped.get(tag) ?? 0;
      this.#dropped.set(tag, before + dropped);
      if (before === 0) this.#link.recordKeptDropped(tag, dropped, false, MAX_KEPT_WRITES);
    }
    this.#lookUp(tag);
  }

  /**
   * Takes, for each provider whose master answers (`isHeldBack` false for its oldest batch), the batches to send now,
   * oldest marker first; those `isWaiting` says still wait (for the data epoch's master) stay, and are looked up.
   */
  take(isHeldBack: (scopeId: string) => boolean, isWaiting: (kept: KeptBatch) => boolean): [string, KeptBatch[]][] {
    const taken: [string, KeptBatch[]][] = [];
    for (const [tag, list] of [...this.#kept]) {
      const [first] = list;
      if (first === undefined || isHeldBack(first.batch.scopeId)) continue;
      const kept = [...list].sort((a, b) => a.marker.id - b.marker.id);
      const waiting = kept.filter(isWaiting);
      if (waiting.length > 0) this.#kept.set(tag, waiting);
      else this.#kept.delete(tag);
      const now = kept.filter((each) => !isWaiting(each));
      // Said with a replay: while every one still waits (the data epoch's master), the count goes on.
      if (now.length > 0) this.#sayDropped(tag);
      taken.push([tag, now]);
      if (waiting.length > 0) this.#lookUp(tag);
    }
    return taken;
  }

  /** Says how many writes of the tag the bound dropped since they were last said. */
  #sayDropped(tag: string): void {
    const dropped = this.#dropped.get(tag);
    this.#dropped.delete(tag);
    if (dropped !== undefined) this.#link.recordKeptDropped(tag, dropped, true, MAX_KEPT_WRITES);
  }

  /** Whether a kept batch's marker is found on its master (it ran); rejects when the master does not answer. */
  async hasRun(kept: KeptBatch): Promise<boolean> {
    const [ran] = await this.#ranOf([kept]);
    return ran === true;
  }

  /** Looks up the tag's kept batches that may have run, while their master answers (one lookup per tag at a time). */
  #lookUp(tag: string): void {
    const asked = (this.#kept.get(tag) ?? []).filter(
      (kept) => kept.mayHaveRun && this.#link.isUpFor(kept.batch.scopeId),
    );
    const [first] = asked;
    if (first === undefined || this.#lookingUp.has(tag)) return;
    this.#lookingUp.add(tag);
    const { scopeId } = first.batch;
    this.#ranOf(asked).then(
      (ran) => {
        this.#link.recordSuccess(scopeId);
        const list = this.#kept.get(tag) ?? [];
        asked.forEach((kept, index) => {
          kept.mayHaveRun = false;
          if (ran[index] !== true) return;
          const at = list.indexOf(kept);
          if (at >= 0) list.splice(at, 1);
        });
        if (list.length === 0 && this.#kept.get(tag) === list) {
          this.#kept.delete(tag);
          // None left to take (every one ran): what was dropped is said now, not added to a later outage's count.
          this.#sayDropped(tag);
        }
        this.#lookingUp.delete(tag);
        // Batches kept while this lookup was under way.
        this.#lookUp(tag);
      },
      (error: unknown) => {
        this.#link.recordFailure(error, scopeId);
        setTimeout(() => {
          this.#lookingUp.delete(tag);
          this.#lookUp(tag);
        }, LOOK_UP_AGAIN_AFTER_MS).unref();
      },
    );
  }

  /**
   * Per batch, whether it ran: its marker is still set (its life, 60 s) or listed in the applied set (until 128 newer
   * batches of the process applied there). One slot: the markers and the set carry the provider's hash tag.
   */
  async #ranOf(kept: readonly KeptBatch[]): Promise<boolean[]> {
    const [first] = kept;
    if (first === undefined) return [];
    const markers = kept.map(({ marker }) => marker.key);
    const [scores, values] = await Promise.all([
      this.#redis.zmscore(first.marker.applied, ...markers),
      this.#redis.mget(...markers),
    ]);
    return kept.map((_kept, index) => scores[index] != null || values[index] != null);
  }
}
