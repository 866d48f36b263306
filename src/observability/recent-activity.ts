// What the dashboard shows without a store: the last records in memory (for the live feed and a click on one)
// and per-minute counts over the last hour (for the small charts). Fed by the same record subscription.
import type { Clock } from "../clock.ts";
import { traitsOf } from "../errors/outcomes.ts";
import { isAvoidedRateLimit, type RequestRecord } from "./request-record.ts";

const MINUTE_MS = 60_000;
/** Minutes of history in the charts. */
export const SERIES_MINUTES = 60;

export interface MinuteCounts {
  /** Start of the minute, epoch ms. */
  readonly atMs: number;
  readonly requests: number;
  readonly errors: number;
  readonly failovers: number;
  /**
   * Candidates skipped because they were rate limited (cooling down after a 429, a quota) or out of budget: upstream
   * 429s that did not happen. A candidate skipped for an open circuit or a refused key is not one.
   */
  readonly rateLimitsAvoided: number;
  readonly latencyTotalMs: number;
  /**
   * Batch lines (`/v1/batches`) finished: counted here only, not in `requests`, `errors` nor `latencyTotalMs` (a
   * line may have waited on purpose for a limit; a batch's thousands would read as live traffic).
   */
  readonly batchLines: number;
}

/** One line of the live feed. */
export interface FeedEntry {
  readonly id: string;
  readonly startedAtMs: number;
  readonly endpoint: string;
  readonly requested: string;
  /** A request no model door served: its method and route (RequestRecord.route); null: a door's. */
  readonly route: string | null;
  /** The client's name (a named key); null: unnamed, or no key. */
  readonly client: string | null;
  readonly servedBy: string | null;
  readonly status: number;
  readonly outcome: string;
  readonly attempts: number;
  readonly isStream: boolean;
  readonly continuations: number;
  readonly durationMs: number;
  readonly tokensIn: number;
  readonly tokensOut: number;
  /** The tokens are the gateway's estimate (RequestRecord.isUsageEstimated): the dashboard shows them with `≈`. */
  readonly isUsageEstimated: boolean;
  /** A stream's head sent early, keep-alives before its answer (RequestRecord.earlyCommitMs); null: not so. */
  readonly earlyCommitMs: number | null;
}

/**
 * Records kept in memory: the live feed's 50 lines. Each one lives until as many later requests have finished; at
 * the 200 kept before, under load that outlived two young-generation collections and promoted ~600 bytes per
 * request to the old space (garbage that then grew it; see WRITE_BATCH_ROWS in request-log.ts). Older records
 * come from the request log.
 */
export const RECENT_RECORDS = 50;

/**
 * Named clients whose own feed and charts are kept at once. Names come from the config, so this is reached only by
 * a config with more named clients, or by many renames across reloads; then the client seen first is dropped (its
 * feed and charts start again with its next request).
 */
export const MAX_CLIENT_VIEWS = 1_000;

type MutableMinute = { -readonly [K in keyof MinuteCounts]: MinuteCounts[K] };

/** What one record adds to its minute: computed once, added to the gateway's minute and its client's. */
interface MinuteIncrement {
  readonly isBatchLine: boolean;
  readonly isError: boolean;
  readonly failovers: number;
  readonly rateLimitsAvoided: number;
  readonly durationMs: number;
}

/** Per-minute counts over the last hour. */
class MinuteSeries {
  readonly #minutes = new Map<number, MutableMinute>();

  add(atMs: number, increment: MinuteIncrement): void {
    let minute = this.#minutes.get(atMs);
    if (minute === undefined) {
      minute = emptyMinute(atMs);
      this.#minutes.set(atMs, minute);
      for (const startMs of this.#minutes.keys()) {
        if (startMs <= atMs - SERIES_MINUTES * MINUTE_MS) this.#minutes.delete(startMs);
      }
    }
    if (increment.isBatchLine) {
      minute.batchLines += 1;
      return;
    }
    minute.requests += 1;
    if (increment.isError) minute.errors += 1;
    minute.failovers += increment.failovers;
    minute.rateLimitsAvoided += increment.rateLimitsAvoided;
    minute.latencyTotalMs += increment.durationMs;
  }

  /** One entry per minute of the hour up to `nowMs`, oldest first, empty minutes included. */
  lastHour(nowMs: number): MinuteCounts[] {
    const nowMinute = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
    const result: MinuteCounts[] = [];
    for (let index = SERIES_MINUTES - 1; index >= 0; index--) {
      const atMs = nowMinute - index * MINUTE_MS;
      result.push(this.#minutes.get(atMs) ?? emptyMinute(atMs));
    }
    return result;
  }
}

/** A named client's own view: its latest feed lines (not its records: see `RecentActivity`) and its charts. */
interface ClientView {
  /** Oldest first. */
  readonly feed: FeedEntry[];
  readonly series: MinuteSeries;
}

export class RecentActivity {
  readonly #clock: Clock;
  readonly #capacity: number;
  readonly #records: RequestRecord[] = [];
  readonly #series = new MinuteSeries();
  /**
   * Each named client's own latest lines and charts. Taking a client's lines from the gateway's latest records
   * would let a busy client push another's requests out of its own feed. Kept as feed lines rather than records: a
   * client's records would outlive the gateway's latest by as many requests as the other clients make (a young
   * generation promotion per request under load, see RECENT_RECORDS), and with `log.content` each would hold its
   * prompt. A click on a line no longer among the latest records is answered from the request log.
   */
  readonly #clients = new Map<string, ClientView>();

  constructor(clock: Clock, capacity = RECENT_RECORDS) {
    this.#clock = clock;
    this.#capacity = capacity;
  }

  readonly observe = (record: RequestRecord): void => {
    this.#records.push(record);
    if (this.#records.length > this.#capacity) this.#records.shift();
    const atMs = Math.floor(this.#clock.now() / MINUTE_MS) * MINUTE_MS;
    const increment: MinuteIncrement = {
      isBatchLine: record.batchId !== undefined,
      // An `only-if-cached` miss is the client's choice, not an error (OutcomeTraits.isClientsChoice).
      isError: record.status >= 400 && !traitsOf(record.outcome).isClientsChoice,
      failovers: countFailovers(record),
      rateLimitsAvoided: record.skips.filter(isAvoidedRateLimit).length,
      durationMs: record.durationMs,
    };
    this.#series.add(atMs, increment);
    // An unnamed key's request (or one of a gateway without keys) costs nothing more than before.
    if (record.client === undefined) return;
    const view = this.#clientView(record.client);
    view.feed.push(feedEntry(record));
    if (view.feed.length > this.#capacity) view.feed.shift();
    view.series.add(atMs, increment);
  };

  /**
   * Newest first. `client`: a named client's own latest lines, however many requests other clients made since; by
   * default, the gateway's.
   */
  feed(client?: string, limit = RECENT_RECORDS): FeedEntry[] {
    if (client !== undefined) return (this.#clients.get(client)?.feed ?? []).slice(-limit).reverse();
    return this.#records.slice(-limit).reverse().map(feedEntry);
  }

  /** The newest record with the id; with `client`, the newest of that client's own (ids are clients' choice). */
  get(id: string, client?: string): RequestRecord | undefined {
    return this.#records.findLast((record) => record.id === id && (client === undefined || record.client === client));
  }

  /**
   * One entry per minute of the last hour, oldest first, empty minutes included. `client`: a named client's own
   * requests only; by default, every request.
   */
  series(client?: string): MinuteCounts[] {
    const nowMs = this.#clock.now();
    if (client === undefined) return this.#series.lastHour(nowMs);
    return (this.#clients.get(client)?.series ?? new MinuteSeries()).lastHour(nowMs);
  }

  #clientView(client: string): ClientView {
    let view = this.#clients.get(client);
    if (view === undefined) {
      view = { feed: [], series: new MinuteSeries() };
      this.#clients.set(client, view);
      if (this.#clients.size > MAX_CLIENT_VIEWS) {
        const first = this.#clients.keys().next();
        if (first.done !== true) this.#clients.delete(first.value);
      }
    }
    return view;
  }
}

function emptyMinute(atMs: number): MutableMinute {
  return { atMs, requests: 0, errors: 0, failovers: 0, rateLimitsAvoided: 0, latencyTotalMs: 0, batchLines: 0 };
}

/** Failed primary attempts followed by an attempt on another candidate. */
export function countFailovers(record: RequestRecord): number {
  const primaries = record.attempts.filter((attempt) => attempt.role === "primary");
  let count = 0;
  primaries.forEach((attempt, index) => {
    const next = primaries[index + 1];
    if (next !== undefined && !traitsOf(attempt.outcome).isSuccess && next.deploymentKey !== attempt.deploymentKey) {
      count += 1;
    }
  });
  return count;
}

function feedEntry(record: RequestRecord): FeedEntry {
  return {
    id: record.id,
    startedAtMs: record.startedAtMs,
    endpoint: record.endpoint,
    requested: record.requestedModel,
    route: record.route ?? null,
    client: record.client ?? null,
    servedBy:
      record.servedBy !== undefined
        ? `${record.servedBy.provider}/${record.servedBy.model}`
        : record.cache === "hit"
          ? "answer cache"
          : null,
    status: record.status,
    outcome: record.outcome,
    attempts: record.attempts.length,
    isStream: record.isStream,
    continuations: record.continuations.length,
    durationMs: record.durationMs,
    tokensIn: record.tokensIn,
    tokensOut: record.tokensOut,
    isUsageEstimated: record.isUsageEstimated === true,
    earlyCommitMs: record.earlyCommitMs ?? null,
  };
}
