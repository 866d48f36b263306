// Where kept responses live, as the Responses adapter sees it: asynchronous, so that a shared store (Redis) can
// stand in for the in-memory one. The request mapping itself stays synchronous: the ids a request refers to are
// read from its body first and fetched in one go (`prefetch`).

import { GatewayError, ServiceUnavailableError } from "../../errors/gateway-error.ts";
import { indexedItemKeys } from "./chain-items.ts";
import type { BoundedStep, KeptReadOptions } from "./kept-read-options.ts";
import type { KeptResponseRow, KeptResponseRows } from "./kept-response-rows.ts";
import { type NotKeptAnswer, NotKeptAnswers } from "./not-kept-answers.ts";
import type { OutputItem } from "./response-object.ts";
import type { ResponseStore, StoredResponse } from "./response-store.ts";

export interface KeptResponses {
  /**
   * `eventsFrom`: a streamed background response's `events` are only those from that index on (a follower that has
   * the ones before reads only the new ones; NO_EVENTS: none, though `events` is still there, empty, for a streamed
   * one). Absent: all of them (a write made from what was read must have them all).
   */
  get(id: string, eventsFrom?: number, options?: KeptReadOptions): Promise<StoredResponse | undefined>;
  /** An output item of a kept response, by its id (`msg_...`, `fc_...`). */
  findItem(id: string): Promise<OutputItem | undefined>;
  /** The kept response one of whose output items has this id (whose item it is). */
  responseWithItem(id: string): Promise<StoredResponse | undefined>;
  /**
   * The ids of the responses `responseWithItem` would give for these ids, in one read of the store's index (absent: a
   * store read per id is as cheap): a request naming many items of one response reads that response once (prefetch).
   */
  responseIdsWithItems?(ids: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * Keeps an answer; false when the store failed to (an error, or no answer within the store's bound): reported
   * (`onPutError`) and remembered (`notKept`). An answer over the store's bounds is not kept either, by rule: true.
   * `whole`: kept instead when a row `stored` reads its history from (chainHistory) is gone as it is written.
   */
  put(stored: StoredResponse, whole?: StoredResponse): Promise<boolean>;
  /** An answer whose `put` failed in this process (the store never had it): what GET and continuations are told. */
  notKept(id: string): NotKeptAnswer | undefined;
  /** The answer not kept (as `notKept`) one of whose output items has this id: what `item_reference` is told. */
  notKeptItem?(itemId: string): NotKeptAnswer | undefined;
  /**
   * Compare and set, for a background run's writes (several replicas write one kept response: the run's heartbeat, a
   * cancel or a DELETE elsewhere): writes `stored` only if the kept response is still the one whose token is
   * `expected` (`keptToken` of what was read, or what the previous write returned); `expected` undefined writes
   * unconditionally. Returns the written response's token, or undefined when another writer changed or deleted it
   * meanwhile (or it alone is over the store's bounds: not kept). Unlike `put`, a store that cannot be written
   * throws (a 503): the caller must know its write did not land. A write whose reply was lost (it may have landed)
   * is decided by the store from the row read again (redis-kept-responses.ts): it throws only when that cannot be
   * known either. `notAfterMs`: a store shared with other processes refuses (undefined) a write landing after that
   * time by its clock (a run's late write: background.ts BACKGROUND_LATE_WRITE_MS); the memory of one process
   * ignores it (nobody else reads it, and a run here is never shown stale).
   */
  putIfUnchanged(
    stored: StoredResponse,
    expected: string | undefined,
    notAfterMs?: number,
  ): Promise<string | undefined>;
  delete(id: string): Promise<boolean>;
}

/** What `putIfUnchanged` compares: the kept response's JSON without its stream events (a read's parse stringifies
 * back to it). Only the run writes events, and a store that appends them keeps them beside the row, not in it. */
export function keptToken(stored: StoredResponse): string {
  const { events: _events, ...row } = stored;
  return JSON.stringify(row);
}

/** `get`'s `eventsFrom` for a read that needs no events (a poll, a continuation, a DELETE). */
export const NO_EVENTS = Number.POSITIVE_INFINITY;

/** The events from index `from` on of a response whose events are inside it (a copy when sliced). */
function eventsFrom(stored: StoredResponse, from: number | undefined): StoredResponse {
  if (from === undefined || from <= 0 || stored.events === undefined) return stored;
  return { ...stored, events: Number.isFinite(from) ? stored.events.slice(from) : [] };
}

/** The marker `rowOf` puts last in an appended row's JSON: a token that ends with it is of a row in that form. */
const APPENDED_MARKER_END = ',"eventsAppended":true}';

/** A token of a row kept in the appended form (a read's keptToken keeps the marker where the row had it: last). A
 * string test, not a parse: it runs on every heartbeat of a run, and a row may hold a whole conversation. */
function isAppendedToken(token: string): boolean {
  return token.endsWith(APPENDED_MARKER_END);
}

export function inMemory(store: ResponseStore): KeptResponses {
  return {
    get: async (id, from) => {
      const stored = store.get(id);
      if (stored === undefined) return undefined;
      // A running response's kept events grow in place (putAppending): a read gets them as they are now.
      if (stored.events !== undefined && (from === undefined || from <= 0)) {
        return { ...stored, events: stored.events.slice() };
      }
      return eventsFrom(stored, from);
    },
    findItem: async (id) => store.findItem(id),
    responseWithItem: async (id) => store.responseWithItem(id),
    put: async (stored, whole) => {
      store.put(stored, whole);
      return true;
    },
    notKept: () => undefined,
    putIfUnchanged: async (stored, expected) => {
      // One process, no await between the read and the write: nothing can land in between.
      const current = store.get(stored.response.id);
      if (expected !== undefined && (current === undefined || keptToken(current) !== expected)) return undefined;
      // Only a background run's writes come here, its events extending those it wrote before: appended.
      return store.putAppending(stored) ? keptToken(stored) : undefined;
    },
    delete: async (id) => store.delete(id),
  };
}

/**
 * Kept responses in a persistent store. A store that cannot be read is a 503 (a continuation must not silently
 * lose its history); one that cannot be written only loses the answer for later turns: `onPutError` reports it
 * and the answer is still sent. `onPutWorked`: a put that worked (so a reporter can say when failures end).
 * `bounded`: the store's write within its time bound (rejects past it: `responses.store.write_timeout_ms`), so that a
 * store that never answers does not hold the request (its record, a stream's last events) open. `onLost`: how many
 * answers the store lost after their put returned (KeptResponseRows.onLost), remembered here as not kept.
 * `recheck`: runs a check later, again while it rejects (the store not answering yet), a few times at most.
 */
export function inRows(
  rows: KeptResponseRows,
  onPutError: (error: unknown) => void,
  onPutWorked?: () => void,
  bounded: <T>(write: Promise<T>, what?: BoundedStep) => Promise<T> = (write) => write,
  onLost?: (count: number) => void,
  recheck?: (check: () => Promise<void>) => void,
): KeptResponses {
  // A store's own answer (the state file locked by another process: a 503 saying so) is passed on as it is.
  const unreachable = (error: unknown): GatewayError =>
    error instanceof GatewayError
      ? error
      : new ServiceUnavailableError("The store of kept responses cannot be reached; try again shortly.", {
          cause: error,
        });
  const notKept = new NotKeptAnswers();
  // Their requests were answered and recorded as kept: a GET or continuation naming one is told it was not stored.
  rows.onLost?.((lost) => {
    for (const { id, owner, itemIds } of lost) notKept.remember(id, owner, itemIds);
    onLost?.(lost.length);
  });
  /** `id`: a read by response id (one found is no longer not kept: forClient reads one not kept as absent). */
  const read = async (
    what: Promise<string | undefined>,
    from?: number,
    id?: string,
  ): Promise<StoredResponse | undefined> => {
    let json: string | undefined;
    try {
      json = await what;
    } catch (error) {
      throw unreachable(error);
    }
    if (json === undefined) return undefined;
    // Found: a write that landed after its bound (its client gave up on it), no longer not kept.
    if (id !== undefined) notKept.forget(id);
    const stored = JSON.parse(json) as StoredResponse;
    if (stored.eventsAppended !== true || rows.getEvents === undefined) return eventsFrom(stored, from);
    if (from !== undefined && !Number.isFinite(from)) return { ...stored, events: [] };
    // Read after the row: the run appends before it writes the row, so a finished row's events are all there.
    try {
      return { ...stored, events: await rows.getEvents(stored.response.id, Math.max(0, from ?? 0)) };
    } catch (error) {
      throw unreachable(error);
    }
  };
  const isAppending = rows.appendEvents !== undefined && rows.getEvents !== undefined;
  const getIdsByItems = rows.getIdsByItems?.bind(rows);
  /** Per background response this process runs: how many of its events the store holds (only the run appends). */
  const appendedCounts = new Map<string, number>();
  /**
   * The row as the store keeps it, and its token (keptToken of what a read returns): with an appending store, a
   * streamed response's row holds a marker instead of its events; otherwise the events are in the row. A row the
   * previous version kept (its events inside, `expected` without the marker: a run on a gateway not yet upgraded)
   * stays so: written with a marker, its events, which are in no list, would be lost.
   */
  const rowOf = (
    stored: StoredResponse,
    expected: string | undefined,
  ): { row: KeptResponseRow; token: string; isAppended: boolean } => {
    const { events, ...rest } = stored;
    const isAppended = events !== undefined && isAppending && (expected === undefined || isAppendedToken(expected));
    const json = isAppended ? JSON.stringify({ ...rest, eventsAppended: true }) : JSON.stringify(stored);
    return {
      row: {
        id: stored.response.id,
        json,
        itemIds: indexedItemKeys(stored),
        ...(stored.client === undefined ? {} : { owner: stored.client }),
        ...(stored.chainHistory === undefined ? {} : { touchIds: stored.chainHistory.previousIds }),
      },
      token: isAppended ? json : keptToken(stored),
      isAppended,
    };
  };
  /** The run's events not yet in the store, appended; false when the row is gone (deleted or evicted meanwhile). */
  const appendNew = async (stored: StoredResponse, notAfterMs: number | undefined): Promise<boolean> => {
    const id = stored.response.id;
    const keptCount = appendedCounts.get(id);
    if (stored.events === undefined || rows.appendEvents === undefined || keptCount === undefined) return true;
    if (stored.events.length <= keptCount) return true;
    if (!(await rows.appendEvents(id, keptCount, stored.events.slice(keptCount), notAfterMs))) {
      // Gone (deleted or evicted), or too late: nothing more is appended to it.
      appendedCounts.delete(id);
      return false;
    }
    appendedCounts.set(id, stored.events.length);
    return true;
  };
  /**
   * The store's compare and set, which compares the row's JSON as kept. A row with its events inside (the previous
   * version's, of an appending store) is kept with them, and `expected` (keptToken) has none: when the kept row is
   * the expected one with its events, the write is made against it as it is (still one atomic compare and set).
   */
  const storePutIfUnchanged = async (
    putIfUnchangedRow: (row: KeptResponseRow, expectedJson: string) => Promise<boolean>,
    row: KeptResponseRow,
    expected: string,
  ): Promise<boolean> => {
    if (await putIfUnchangedRow(row, expected)) return true;
    if (!isAppending || isAppendedToken(expected)) return false;
    const current = await rows.get(row.id);
    if (current === undefined || current === expected) return false;
    if (keptToken(JSON.parse(current) as StoredResponse) !== expected) return false;
    return putIfUnchangedRow(row, current);
  };
  const putIfUnchanged = async (
    stored: StoredResponse,
    expected: string | undefined,
    notAfterMs: number | undefined,
  ): Promise<string | undefined> => {
    const { row, token, isAppended } = rowOf(stored, expected);
    if (expected !== undefined) {
      // A run's final write (no heartbeat): its events and its row in the store's one compare and set, so that a
      // cancel (or DELETE) landed since its last heartbeat refuses both: the events never end with an answer the row
      // does not have. A heartbeat appends first, then writes the row (a reader that sees the row finds its events);
      // its events end before the response's ending (background.ts runningEvents), so whatever it appended is still
      // the beginning of the final events.
      const isFinalWithEvents =
        stored.heartbeatAtMs === undefined &&
        isAppended &&
        stored.events !== undefined &&
        rows.putIfUnchanged !== undefined;
      const keptCount = appendedCounts.get(row.id) ?? 0;
      const events = isFinalWithEvents ? { keptCount, events: stored.events?.slice(keptCount) ?? [] } : undefined;
      if (!isFinalWithEvents && !(await appendNew(stored, notAfterMs))) return undefined;
      if (rows.putIfUnchanged !== undefined) {
        const options = {
          ...(notAfterMs === undefined ? {} : { notAfterMs }),
          ...(events === undefined ? {} : { events }),
        };
        const putIfUnchangedRow = (kept: KeptResponseRow, expectedJson: string): Promise<boolean> =>
          rows.putIfUnchanged?.(kept, expectedJson, options) ?? Promise.resolve(false);
        return (await storePutIfUnchanged(putIfUnchangedRow, row, expected)) ? token : undefined;
      }
      const current = await rows.get(row.id);
      if (current === undefined || keptToken(JSON.parse(current) as StoredResponse) !== expected) return undefined;
    }
    await rows.put(row);
    // A row over the bounds is not kept (put deletes it): the caller must not believe it was.
    if ((await rows.get(row.id)) !== row.json) return undefined;
    // The run's first write: from here its events are appended.
    if (expected === undefined && stored.events !== undefined && isAppending) appendedCounts.set(row.id, 0);
    return token;
  };
  return {
    // A cancel's read is bounded as its write is (KeptReadOptions).
    get: (id, from, options) =>
      options?.isBeforeWrite === true ? bounded(read(rows.get(id), from, id), "read") : read(rows.get(id), from, id),
    findItem: async (id) => (await read(rows.getByItem(id)))?.response.output.find((item) => item.id === id),
    responseWithItem: (id) => read(rows.getByItem(id)),
    ...(getIdsByItems === undefined
      ? {}
      : {
          responseIdsWithItems: async (ids) => {
            try {
              return await getIdsByItems(ids);
            } catch (error) {
              throw unreachable(error);
            }
          },
        }),
    putIfUnchanged: async (stored, expected, notAfterMs) => {
      let token: string | undefined;
      try {
        // Bounded as `put` is (a store that never answers must not hold a run's write, a cancel or a DELETE): past
        // it the caller hears the store failed; a write that lands later is read back as a lost reply's is.
        token = await bounded(putIfUnchanged(stored, expected, notAfterMs));
      } catch (error) {
        throw unreachable(error);
      }
      // The run's last write (no heartbeat): no longer counted here. A retry of it (the cancelled state, after a cancel
      // refused it) sends its events from the first: the store appends those it does not hold.
      if (stored.heartbeatAtMs === undefined) appendedCounts.delete(stored.response.id);
      return token;
    },
    put: async (stored, whole) => {
      const id = stored.response.id;
      let write: Promise<unknown> | undefined;
      try {
        const pointing = rowOf(stored, undefined).row;
        write = rows.put(whole === undefined ? pointing : { ...pointing, whole: () => rowOf(whole, undefined).row });
        // Its history's rows went while it was answered: kept whole instead (KeptResponses.put), here when the store
        // does not (Redis is not sent the whole row with every write).
        if ((await bounded(write)) === false && whole) await bounded(rows.put(rowOf(whole, undefined).row));
      } catch (error) {
        onPutError(error);
        notKept.remember(
          id,
          stored.client,
          stored.response.output.map((item) => item.id),
        );
        // Past its bound a write may still land: kept after all, so a later outage is the store's 503 again, not the
        // 404 of an answer "never stored" (final to a client, which would give up a conversation the store holds).
        // A write that failed may have run all the same (Redis's client timed the command out; Redis runs it once it
        // answers): read back once the store answers, so that a row nobody reads is not said "never stored" later.
        write?.then(
          () => notKept.forget(id),
          () =>
            recheck?.(async () => {
              if ((await rows.get(id)) !== undefined) notKept.forget(id);
            }),
        );
        return false;
      }
      notKept.forget(id);
      onPutWorked?.();
      return true;
    },
    notKept: (id) => notKept.get(id),
    notKeptItem: (itemId) => notKept.ofItem(itemId),
    delete: async (id) => {
      try {
        return await rows.delete(id);
      } catch (error) {
        throw unreachable(error);
      }
    },
  };
}
