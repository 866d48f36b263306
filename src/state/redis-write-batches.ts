// The ledger's writes after a reserve (reconciles, budget-lease give-backs, retimes), gathered per provider for up to
// FLUSH_AFTER_MS and sent as one WRITE_BATCH_LUA call, or inside the next reserve on that provider meanwhile
// (RESERVE_AFTER_WRITES_LUA). Under load an answer outlives its reserve's budget lease
// (16 ms with an `rps` rule), so each request paid a retime and a give-back of its own, two script calls beside the
// reserve (bench/README.md sections 30 and 31).
//
// Why the batch never admits more than the writes sent one by one:
// - A give-back (fewer tokens than estimated, calls never sent, a lease's unused units) waits at most FLUSH_AFTER_MS: meanwhile Redis counts more than is used, which errs on the side of sending less.
// - A retime only ever moves a run later (it counts until the send plus its window, instead of its charge's end plus
//   its window). It matters from that end plus a window on: for a request sent soon after its charge (or its lease's
//   end), a second at least, not within 10 ms. One sent nearly a window after (a long wait for a connection) is not
//   held: its run may leave its window before the batch goes, and another process's reserve then drops it for good
//   (no later retime finds it); such a retime sends its batch at once (RETIME_AT_ONCE_WITHIN_MS), as a charge does.
// - A charge (more tokens than estimated, not paid from a live lease) is not held: it sends its batch at once, in
//   the turn it was made, as a single call went; another process sees it as soon as it saw that call.
// - A reserve on a provider carries that provider's batch (`takeFor`): Redis applies it, then checks and charges, in
//   one script call; every reserve this process makes sees all of its own earlier writes, exactly as when each went
//   alone (the parity with the in-process book holds), and those writes cost no call of their own.
// - The batch is applied at most once (one marker, as a single reconcile's): resent after a failure, as one; a batch
//   whose reserve failed (the request then falls back to the local book) is resent alone under its marker. A resend
//   after an admin reset or after Redis lost its data (redis-data-epoch.ts) leaves its give-backs out (`#scriptOf`).
//
// One provider per batch: every key of a provider's scopes carries its hash tag (redis-keys.ts), so a batch runs in
// one Redis Cluster slot, as each of its writes did. Redis unavailable: the batch is sent, fails and is sent again
// like any once-write (redis-once-writes.ts); while the link is down the ledger writes nothing, as before. On a
// Redis Cluster whose link is up, a batch for a master that does not answer (redis-slot-groups.ts) is kept instead
// (redis-kept-batches.ts: at most MAX_KEPT_WRITES per provider, so one master's long outage cannot crowd the others' out) and sent when
// that master answers again (`replayKept`): a lease's give-back made once its master was known down was sent into
// it before 2026-12-07 (the link as a whole being up) and dropped after its resends, its units counted in the
// master's windows until they ended (a master back with its data: persistence).
import type { SharedStateRedis } from "./redis-client.ts";
import type { RedisDataEpoch } from "./redis-data-epoch.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import {
  type Argument,
  type Batch,
  hasReconciles,
  type KeptBatch,
  KeptBatches,
  type Write,
} from "./redis-kept-batches.ts";
import { providerTag } from "./redis-keys.ts";
import { KeyedFailure, type RedisLink } from "./redis-link.ts";
import type { BatchScript, BatchScriptOrLater, OnceMarker, OnceWrites } from "./redis-once-writes.ts";

/** Writes in one batch at most (a full batch goes out at once): bounds one script's run and its argument list. */
const MAX_WRITES_PER_BATCH = 64;
/**
 * ms a give-back or retime waits for others before its batch goes alone. Per turn alone, a loaded gateway (1,000-3,000
 * requests a second) still sent a batch every ~3 answers (bench/README.md section 31); 10 ms gathers a provider's
 * writes into at most 100 calls a second. Safe to wait: a give-back late errs on the side of sending less, a retime
 * matters a second after its lease's end at the earliest, and this process's own reserves carry what waits.
 */
const FLUSH_AFTER_MS = 10;

/**
 * A retime whose runs may leave their windows within this many ms is sent at once: a batch waits FLUSH_AFTER_MS, and a
 * loaded event loop fires that timer late by tens of ms. Past its run's end, a reserve anywhere drops the run, and the
 * retime (moving the request's count to its send) comes too late: a whole window's request uncounted.
 */
const RETIME_AT_ONCE_WITHIN_MS = 100;

/** A batch sent inside a reserve: its keys (its marker and applied set first) and arguments (marker_ms first), and its outcome. */
export interface CarriedBatch {
  readonly keys: readonly string[];
  readonly args: readonly Argument[];
  settle(isAnswered: boolean): void;
}

type BatchesLink = Pick<
  RedisLink,
  | "isCluster"
  | "isUp"
  | "isUpFor"
  | "isUpForKey"
  | "recordSuccess"
  | "recordFailure"
  | "recordKeptDropped"
  | "countKeptDropped"
>;

export class RedisWriteBatches {
  readonly #redis: SharedStateRedis;
  readonly #writes: OnceWrites;
  /** Per provider hash tag, the writes not sent yet. */
  readonly #batches = new Map<string, Batch>();
  /** Batches riding on a reserve not answered yet, each with its resend alone (under its marker, at most once). */
  readonly #carried = new Map<Batch, () => void>();
  #flush: NodeJS.Timeout | undefined;
  /** Counts the times the counters may have been replaced since this process started (`dropGiveBacks`). */
  #generation = 0;

  readonly #dataEpoch: RedisDataEpoch;
  readonly #link: BatchesLink;
  /** Per provider hash tag, the batches kept while its Cluster master (or the data epoch's) does not answer. */
  readonly #kept: KeptBatches;

  constructor(redis: SharedStateRedis, writes: OnceWrites, dataEpoch: RedisDataEpoch, link: BatchesLink) {
    this.#redis = redis;
    this.#writes = writes;
    this.#dataEpoch = dataEpoch;
    this.#link = link;
    this.#kept = new KeptBatches(redis, link);
  }

  /** Writes kept for a Cluster master's return (for tests and status). */
  get keptCount(): number {
    return this.#kept.writeCount;
  }

  /**
   * Sends the batches kept for providers whose Cluster master answers again, each under its marker (applied once,
   * should an earlier send have run after all). Sent as a resend: a give-back is left out if Redis lost its data or
   * was reset since the batch was begun (`#scriptOf`).
   */
  replayKept(): void {
    const isEpochDown = this.#isEpochHeldBack();
    // Oldest marker first, each sent after the ones before it: a replay adds its marker to the process's applied set
    // (the newest ONCE_APPLIED_MAX, redis-lua-writes.ts), and a batch whose first send ran (its reply lost) must
    // still be there when its own replay comes after its marker ended. Replayed in the order kept (a batch is kept
    // after its last resend, seconds after the ones made meanwhile, kept at once), 128 newer ones pushed it out,
    // and it was applied twice. Their replay reads the data epoch first (`#scriptOf`): while its master does not
    // answer, they wait for it (and are looked up meanwhile, redis-kept-batches.ts).
    const taken = this.#kept.take(
      (scopeId) => this.#isHeldBack(scopeId),
      ({ batch }) => isEpochDown && hasReconciles(batch),
    );
    for (const [tag, now] of taken) {
      // One read of the epoch for them all, each script sent once it is answered, in their order.
      const read = now.some(({ batch }) => hasReconciles(batch))
        ? this.#dataEpoch.currentFor(hashSlot(tag))
        : undefined;
      for (const kept of now) {
        const { batch, marker } = kept;
        void this.#writes.batchUnder(
          this.#redis,
          marker,
          this.#lookedUp(kept, this.#scriptOf(batch, 1, read)),
          this.#keeper(tag, batch, marker),
        );
      }
    }
  }

  /**
   * A kept batch's replay, looked up first when it may have run and was not looked up while it waited (its master
   * never answered meanwhile: then still listed in the applied set, or a lookup failed): found, nothing is sent.
   */
  #lookedUp(kept: KeptBatch, script: () => BatchScriptOrLater): () => BatchScriptOrLater {
    return () => {
      if (!kept.mayHaveRun) return script();
      return this.#kept.hasRun(kept).then((ran) => {
        kept.mayHaveRun = false;
        return ran ? undefined : script();
      });
    };
  }

  /**
   * A reconcile (its keys and arguments as WRITE_BATCH_LUA takes them) on `scopeId`'s provider. `isCharge`: it adds
   * tokens or requests, so it is sent now (with what waits beside it); otherwise within FLUSH_AFTER_MS.
   */
  reconcile(scopeId: string, keys: readonly string[], args: readonly Argument[], isCharge: boolean): Promise<void> {
    const batch = this.#add(scopeId, "c", keys, args);
    if (isCharge) this.#send(providerTag(scopeId));
    return batch.sent.promise;
  }

  /**
   * A retime (its keys and arguments as WRITE_BATCH_LUA takes them) of runs on `scopeId`'s provider, sent within
   * FLUSH_AFTER_MS; at once (with what waits beside it) when `leavesInMs`, the ms until the earliest of its runs may
   * leave its window as Redis counts it now, is RETIME_AT_ONCE_WITHIN_MS or less.
   */
  retime(scopeId: string, keys: readonly string[], args: readonly Argument[], leavesInMs: number): Promise<void> {
    const batch = this.#add(scopeId, "t", keys, args);
    if (leavesInMs <= RETIME_AT_ONCE_WITHIN_MS) this.#send(providerTag(scopeId));
    return batch.sent.promise;
  }

  /**
   * Takes the batch of `scopeId`'s provider to send inside a reserve on its scopes (RESERVE_AFTER_WRITES_LUA): Redis
   * applies it before the reserve's check, so the reserve sees every write this process made before it, as when each
   * went alone (a give-back held past it would refuse a request that fits; a retime held past it could leave a request
   * sent late uncounted by a window it has just left), and the writes cost no call of their own. Undefined: none.
   */
  takeFor(scopeId: string): CarriedBatch | undefined {
    const tag = providerTag(scopeId);
    const batch = this.#batches.get(tag);
    if (batch === undefined) return undefined;
    this.#batches.delete(tag);
    const marker = this.#writes.marker(batch.scopeId);
    const { keys, args } = scriptArgumentsOf(batch.writes);
    let isResent = false;
    const resend = (): void => {
      if (isResent) return;
      isResent = true;
      const tag = providerTag(batch.scopeId);
      void this.#writes
        .batchUnder(this.#redis, marker, this.#scriptOf(batch, 1), this.#keeper(tag, batch, marker))
        .then(() => batch.sent.resolve());
    };
    this.#carried.set(batch, resend);
    return {
      keys: [marker.key, marker.applied, ...keys],
      args: [this.#writes.markerMs, ...args],
      // Answered: applied (or found applied). Failed (a timeout may still run it): sent again alone, same marker.
      settle: (isAnswered) => {
        this.#carried.delete(batch);
        if (isAnswered) batch.sent.resolve();
        else resend();
      },
    };
  }

  /**
   * Settles once every batch sent so far is answered or given up (the process is exiting; the caller bounds the
   * wait). A batch riding on a reserve not answered yet is sent again alone now, under its marker (applied once,
   * whichever comes first): waiting for the reserve's failure (a command timeout, 2 s by default) outlasted the exit's
   * wait, and the resend after it was lost with the connection.
   */
  async settled(): Promise<void> {
    const carried = [...this.#carried];
    for (const [, resend] of carried) resend();
    await Promise.all([this.#writes.settled(), ...carried.map(([batch]) => batch.sent.promise)]);
  }

  /** Sends every batch now (the process is stopping: they go before the connection closes). */
  flushAll(): void {
    if (this.#flush !== undefined) clearTimeout(this.#flush);
    this.#flush = undefined;
    for (const tag of [...this.#batches.keys()]) this.#send(tag);
  }

  /**
   * An admin reset (made here, or heard): drops the give-backs not sent yet, and those of batches sent before that are
   * sent again after a failure (`#scriptOf`; one after Redis lost its data is found there by the data epoch). The reset
   * deleted the counters they would lower; applied to counters charged since, a give-back would take away units other
   * requests use. A charge never waits. The retimes stay: the
   * reset's message comes after the reset, and a retime waiting then may move a run charged since, in the new counters
   * (dropped, that run left its window a send's delay early: admitted more). One of a run charged before the reset is
   * harmless: it only ever moves a run later, finds it by its member id (unique to the request), and leaves a run no
   * longer there alone (WRITE_BATCH_LUA). A give-back of a request charged since is dropped too: late or lost, a
   * give-back errs on the side of sending less.
   */
  dropGiveBacks(): void {
    this.#generation += 1;
    for (const [tag, batch] of this.#batches) {
      batch.writes = batch.writes.filter((write) => write.kind === "t");
      if (batch.writes.length > 0) continue;
      this.#batches.delete(tag);
      batch.sent.resolve();
    }
  }

  #add(scopeId: string, kind: "c" | "t", keys: readonly string[], args: readonly Argument[]): Batch {
    const tag = providerTag(scopeId);
    let batch = this.#batches.get(tag);
    if (batch === undefined) {
      batch = {
        scopeId,
        writes: [],
        generation: this.#generation,
        dataSet: this.#dataEpoch.seenFor(hashSlot(tag)),
        sent: Promise.withResolvers<void>(),
      };
      this.#batches.set(tag, batch);
    }
    batch.writes.push({ kind, scopeId, keys: [...keys], args: [...args] });
    if (batch.writes.length >= MAX_WRITES_PER_BATCH) this.#send(tag);
    // Not unref'd: a retime must not be lost to an exit that did not stop the ledger (a give-back could be).
    else this.#flush ??= setTimeout(() => this.flushAll(), FLUSH_AFTER_MS);
    return batch;
  }

  #send(tag: string): void {
    const batch = this.#batches.get(tag);
    if (batch === undefined) return;
    this.#batches.delete(tag);
    const marker = this.#writes.marker(batch.scopeId);
    if (this.#isHeldBack(batch.scopeId)) {
      this.#kept.keep(tag, { batch, marker, mayHaveRun: false });
      batch.sent.resolve();
      return;
    }
    void this.#writes
      .batchUnder(this.#redis, marker, this.#scriptOf(batch, 0), this.#keeper(tag, batch, marker))
      .then(() => batch.sent.resolve());
  }

  /**
   * What a batch's sends ask once every resend failed: kept (true) when its master went down meanwhile (a master that
   * died with the batch on its way: its charges were missing from the counters it came back with, before 2026-12-07),
   * or, for a batch with reconciles, the data epoch's master (its resends read the epoch first: `#scriptOf`).
   */
  #keeper(tag: string, batch: Batch, marker: OnceMarker): () => boolean {
    return () => {
      if (!this.#isHeldBack(batch.scopeId) && !(hasReconciles(batch) && this.#isEpochHeldBack())) return false;
      this.#kept.keep(tag, { batch, marker, mayHaveRun: true });
      return true;
    };
  }

  /** On a Cluster whose link is up, the scope's master does not answer: its batches wait for it (a standalone Redis never keeps). */
  #isHeldBack(scopeId: string): boolean {
    return this.#link.isCluster && this.#link.isUp && !this.#link.isUpFor(scopeId);
  }

  /**
   * On a Cluster whose link is up, the master holding the data epoch (a key without a hash tag, on one master) does not
   * answer: a resend with reconciles, which reads it first, waits for it.
   */
  #isEpochHeldBack(): boolean {
    return this.#link.isCluster && this.#link.isUp && !this.#link.isUpForKey(this.#dataEpoch.key);
  }

  /**
   * What each send of `batch` writes: all of it, or only its retimes once the counters may have been replaced since
   * it was begun (an admin reset, or Redis lost its data: a restart without persistence, a flush). A resend of a batch
   * with give-backs reads the data epoch first (one GET; resends are rare), and its own script runs a turn later: a
   * restart in between is not seen (as for a single reconcile before batches). `sentBefore`: sends already made.
   */
  #scriptOf(batch: Batch, sentBefore: number, read?: Promise<string | undefined>): () => BatchScriptOrLater {
    let sends = sentBefore;
    const writesOf = (isSameData: boolean): BatchScript | undefined => {
      const writes =
        batch.generation === this.#generation && isSameData
          ? batch.writes
          : batch.writes.filter((write) => write.kind === "t");
      return writes.length === 0 ? undefined : scriptArgumentsOf(writes);
    };
    const { key } = this.#dataEpoch;
    // An answered read counts for the epoch's master, as a failed one against it (failures apart are not in a row).
    const sameData = (current: string | undefined): BatchScript | undefined => {
      this.#link.recordSuccess(undefined, key);
      return writesOf(current === (batch.dataSet ?? ""));
    };
    const failed = (error: unknown): never => {
      throw new KeyedFailure(key, error);
    };
    return () => {
      sends += 1;
      // A replay's first send (`read`: the epoch read once for all of them): after that read, in the replay's order.
      if (read !== undefined && sends === sentBefore + 1) {
        return hasReconciles(batch)
          ? read.then(sameData, failed)
          : read.then(
              () => writesOf(true),
              () => writesOf(true),
            );
      }
      if (sends === 1 || !hasReconciles(batch)) return writesOf(true);
      // A failed read counts against the epoch's master, not the batch's (KeyedFailure); one known down is not asked.
      if (this.#isEpochHeldBack())
        return Promise.reject(new KeyedFailure(key, new Error("its master does not answer")));
      return this.#dataEpoch.currentFor(hashSlot(providerTag(batch.scopeId))).then(sameData, failed);
    };
  }
}

/**
 * A batch's writes as WRITE_BATCH_LUA takes them after its marker: every write's keys; per write its kind, key count,
 * argument count and arguments.
 */
function scriptArgumentsOf(writes: readonly Write[]): { keys: string[]; args: Argument[] } {
  const keys: string[] = [];
  const args: Argument[] = [];
  for (const write of writes) {
    keys.push(...write.keys);
    args.push(write.kind, write.keys.length, write.args.length, ...write.args);
  }
  return { keys, args };
}
