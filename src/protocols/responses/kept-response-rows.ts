// The store of kept responses as the persistent stores (src/state: the embedded SQLite file, Redis) implement it: rows
// of opaque JSON, written, compared and read; kept-responses.ts (inRows) maps responses onto them.

/**
 * One kept response as a persistent store holds it: opaque JSON (a StoredResponse) and the ids of its output
 * items, so `item_reference` can find it. The stores (src/state: the embedded SQLite file, Redis) implement
 * KeptResponseRows without knowing what a response is, and bound what they hold by count, bytes and age.
 */
export interface KeptResponseRow {
  readonly id: string;
  readonly json: string;
  readonly itemIds: readonly string[];
  /** The named client that kept it (absent: an unnamed key): over a bound, the owner holding the most loses first. */
  readonly owner?: string;
  readonly touchIds?: readonly string[]; // rows it reads its history from (kept-chain-history.ts): stamped with it
  /** Kept instead by a store that finds a row of touchIds gone as it writes (the state file: when it waited too). */
  readonly whole?: () => { readonly json: string; readonly itemIds: readonly string[] };
}

/** What a store's compare and set of a background response also does, in the same atomic step. */
export interface ConditionalRowWrite {
  /**
   * Events appended first (as `appendEvents`; from index `keptCount`, the count the caller knows kept): the row is
   * written only if they are, and they are appended only if it is.
   */
  readonly events?: { readonly keptCount: number; readonly events: readonly string[] };
  /** Refused (nothing written) when the store's clock is past this (ms). */
  readonly notAfterMs?: number;
}

export interface KeptResponseRows {
  put(row: KeptResponseRow): Promise<unknown>; // false: a row of its touchIds was gone (it is written all the same)
  /**
   * A store shared by several gateway processes (Redis, the state file) writes the row only if it is still
   * `expectedJson`, in one atomic step (false: changed or deleted meanwhile, over the bounds, past `notAfterMs` by
   * its clock, or `events` not appendable); with `events`, they are appended in that same step. A store without it
   * gets a read-compare-write done here (not atomic across processes).
   */
  putIfUnchanged?(row: KeptResponseRow, expectedJson: string, options?: ConditionalRowWrite): Promise<boolean>;
  /**
   * A store that keeps a streamed background response's events beside its row, appended (Redis, the state file): a
   * heartbeat writes only the new ones, not the whole list again. `keptCount`: how many are kept as far as the caller
   * knows (more, by at most `events.length`: an append that landed unanswered; only the rest is appended); false,
   * nothing appended, when the row is gone, the list cannot be so, or the store's clock is past `notAfterMs`. A
   * store without it keeps the events in the row's JSON.
   */
  appendEvents?(id: string, keptCount: number, events: readonly string[], notAfterMs?: number): Promise<boolean>;
  getEvents?(id: string, from: number): Promise<string[]>;
  /** The JSON of a kept response that has not expired. */
  get(id: string): Promise<string | undefined>;
  /** The JSON of the kept response one of whose output items has this id. */
  getByItem(itemId: string): Promise<string | undefined>;
  /** The ids of the rows getByItem would read for these item ids, in order (undefined: none), in one read. */
  getIdsByItems?(itemIds: readonly string[]): Promise<(string | undefined)[]>;
  delete(id: string): Promise<boolean>;
  /**
   * A store that may lose rows after `put` returned (the state file: rows waiting in memory for its lock, dropped past
   * the memory bounds) tells `listener` which (id, owner): they are marked not kept as a failed put is.
   */
  onLost?(
    listener: (
      rows: readonly { readonly id: string; readonly owner?: string; readonly itemIds: readonly string[] }[],
    ) => void,
  ): void;
}
