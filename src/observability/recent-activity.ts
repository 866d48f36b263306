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
}

/** One line of the live feed. */
export interface FeedEntry {
  readonly id: string;
  readonly startedAtMs: number;
  readonly endpoint: string;
  readonly requested: string;
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
}

/**
 * Records kept in memory: the live feed's 50 lines. Each one lives until as many later requests have finished; at
 * the 200 kept before, under load that outlived two young-generation collections and promoted ~600 bytes per
 * request to the old space (garbage that then grew it; see WRITE_BATCH_ROWS in request-log.ts). Older records
 * come from the request log.
 */
export const RECENT_RECORDS = 50;

export class RecentActivity {
  readonly #clock: Clock;
  readonly #capacity: number;
  readonly #records: RequestRecord[] = [];
  readonly #minutes = new Map<number, { -readonly [K in keyof MinuteCounts]: MinuteCounts[K] }>();

  constructor(clock: Clock, capacity = RECENT_RECORDS) {
    this.#clock = clock;
    this.#capacity = capacity;
  }

  readonly observe = (record: RequestRecord): void => {
    this.#records.push(record);
    if (this.#records.length > this.#capacity) this.#records.shift();
    const atMs = Math.floor(this.#clock.now() / MINUTE_MS) * MINUTE_MS;
    let minute = this.#minutes.get(atMs);
    if (minute === undefined) {
      minute = { atMs, requests: 0, errors: 0, failovers: 0, rateLimitsAvoided: 0, latencyTotalMs: 0 };
      this.#minutes.set(atMs, minute);
      this.#dropOldMinutes(atMs);
    }
    minute.requests += 1;
    if (record.status >= 400) minute.errors += 1;
    minute.failovers += countFailovers(record);
    minute.rateLimitsAvoided += record.skips.filter(isAvoidedRateLimit).length;
    minute.latencyTotalMs += record.durationMs;
  };

  /** Newest first. */
  feed(limit = RECENT_RECORDS): FeedEntry[] {
    return this.#records.slice(-limit).reverse().map(feedEntry);
  }

  get(id: string): RequestRecord | undefined {
    return this.#records.find((record) => record.id === id);
  }

  /** One entry per minute of the last hour, oldest first, empty minutes included. */
  series(): MinuteCounts[] {
    const nowMinute = Math.floor(this.#clock.now() / MINUTE_MS) * MINUTE_MS;
    const result: MinuteCounts[] = [];
    for (let index = SERIES_MINUTES - 1; index >= 0; index--) {
      const atMs = nowMinute - index * MINUTE_MS;
      result.push(
        this.#minutes.get(atMs) ?? {
          atMs,
          requests: 0,
          errors: 0,
          failovers: 0,
          rateLimitsAvoided: 0,
          latencyTotalMs: 0,
        },
      );
    }
    return result;
  }

  #dropOldMinutes(nowMinute: number): void {
    for (const atMs of this.#minutes.keys()) {
      if (atMs <= nowMinute - SERIES_MINUTES * MINUTE_MS) this.#minutes.delete(atMs);
    }
  }
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
  };
}
