// The request log: every finished request record, kept (newest first) in a backend with retention by count and
// age: files next to the embedded SQLite file, Redis (shared by every gateway process), or memory. Records are
// written in batches off the request path; a query flushes first so that it sees every request that has finished.
// Message content is kept only with `log.content: true`; keys never reach a record (and are redacted again here,
// since upstream error texts can echo them).
import type { Clock } from "../clock.ts";
import { redactSecrets } from "../errors/redact.ts";
import type { RequestRecord } from "./request-record.ts";

/** One stored row: the record as JSON and the fields queries filter on. */
export interface StoredRequest {
  readonly id: string;
  readonly startedAtMs: number;
  /** The model asked for, the answering upstream model and its public name. */
  readonly models: readonly string[];
  /** Every provider attempted (and the one that answered). */
  readonly providers: readonly string[];
  readonly status: number;
  /** The client's name (RequestRecord.client); the file backend reads it from the JSON instead. */
  readonly client?: string | undefined;
  readonly json: string;
}

export interface RequestLogFilter {
  readonly model?: string | undefined;
  readonly provider?: string | undefined;
  readonly status?: number | undefined;
  /** The client's name (a named key in `server.api_keys`). */
  readonly client?: string | undefined;
  /** Records that started at or after this time (epoch ms). */
  readonly sinceMs?: number | undefined;
  readonly limit: number;
}

/**
 * Where rows live. Implementations: memory (here), files (file-request-log.ts), Redis
 * (src/state/redis-request-log.ts).
 */
export interface RequestLogBackend {
  readonly kind: "memory" | "embedded" | "redis";
  append(rows: readonly StoredRequest[]): Promise<void>;
  /** Record JSON texts matching the filter, newest first. */
  query(filter: RequestLogFilter): Promise<string[]>;
  /**
   * The newest record with the id; with `client`, the newest of that client's own. A client chooses its
   * `x-request-id`, so two clients' requests may share an id: a named client's lookup must find its own record,
   * not one another client sent later with the same id (SECURITY.md "Other clients' requests").
   */
  get(id: string, client?: string): Promise<string | undefined>;
  /** Drops rows beyond the newest `maxEntries` and rows that started before `oldestStartedAtMs`. */
  prune(maxEntries: number, oldestStartedAtMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface RequestLogOptions {
  readonly clock: Clock;
  readonly maxEntries: number;
  readonly maxAgeMs: number;
  /** `log.content`: keep message content. */
  readonly isContentKept: boolean;
  /** ms between batched writes; default 500. */
  readonly flushIntervalMs?: number;
  /** Secrets (provider keys) removed from any text before it is stored. */
  readonly secrets?: () => readonly string[];
  /** Told once per failing streak, not per record. */
  readonly onError?: (error: unknown) => void;
}

/** Pending records beyond this are dropped (a backend that cannot keep up must not grow memory). */
const MAX_PENDING = 10_000;
/**
 * Pending rows that start a write without waiting for the timer. A pending row must not outlive two
 * young-generation collections, or it is promoted and dies in the old space, which then grows between full
 * collections: under 64 connections a collection comes every ~8 MB allocated (a JSON request allocates ~48 KB).
 * 2,000 rows (the timer alone) held the old space at 41-50 MB after a JSON run; 256 rows, ~12 MB of allocation,
 * still let ~800 bytes per request be promoted once the young generation was held to 16 MB; 32 or 64 rows
 * (~1.5-3 MB) let nearly none (~300 bytes), and RSS under sustained load stayed at 154-165 MB instead of
 * climbing to 219 MB (bench/START-UP.md). 64 rather than 32 because each batch is one `write` of the
 * embedded backend and one command of the Redis backend (and was one grouped INSERT of the SQLite backend this
 * replaced, 6.6 us per row at 64 rows against 8.5 at 32).
 */
export const WRITE_BATCH_ROWS = 64;

export class RequestLog {
  readonly #backend: RequestLogBackend;
  readonly #options: RequestLogOptions;
  #pending: StoredRequest[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #isFailing = false;
  #isClosed = false;
  /** Rows were written without retention since it last ran (a batch write): the next timed write applies it. */
  #isPruneDue = false;

  constructor(backend: RequestLogBackend, options: RequestLogOptions) {
    this.#backend = backend;
    this.#options = options;
  }

  get kind(): RequestLogBackend["kind"] {
    return this.#backend.kind;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.flush().catch(() => {});
    }, this.#options.flushIntervalMs ?? 500);
    this.#timer.unref();
  }

  /** The record subscriber: cheap and never throws. */
  readonly observe = (record: RequestRecord): void => {
    if (this.#isClosed || this.#pending.length >= MAX_PENDING) return;
    try {
      this.#pending.push(this.#toRow(record));
    } catch (error) {
      this.#report(error);
    }
    // Once per batch (the write empties the list); after the current request's own work, not inside it.
    // Retention is left to the timer's writes.
    if (this.#pending.length === WRITE_BATCH_ROWS) {
      setImmediate(() => {
        if (!this.#isClosed) this.#write(false).catch(() => {});
      });
    }
  };

  async query(filter: RequestLogFilter): Promise<RequestRecord[]> {
    await this.flush();
    const oldestMs = this.#options.clock.now() - this.#options.maxAgeMs;
    const sinceMs = Math.max(filter.sinceMs ?? oldestMs, oldestMs);
    const texts = await this.#backend.query({ ...filter, sinceMs });
    return texts.flatMap((text) => parsedRecord(text) ?? []);
  }

  /** `client`: a named client's own record with the id (see RequestLogBackend.get); unset, the newest of any. */
  async get(id: string, client?: string): Promise<RequestRecord | undefined> {
    await this.flush();
    const text = await this.#backend.get(id, client);
    const record = text === undefined ? undefined : parsedRecord(text);
    if (record === undefined) return undefined;
    return record.startedAtMs >= this.#options.clock.now() - this.#options.maxAgeMs ? record : undefined;
  }

  /** Writes what is pending, then applies retention. Calls are serialised. */
  flush(): Promise<void> {
    return this.#write(true);
  }

  /**
   * Writes what is pending without retention: the last write before an exit that will not wait for `close` (a
   * second signal), where only the rows matter. Retention runs at the next start's first timed write.
   */
  writePending(): Promise<void> {
    return this.#write(false);
  }

  /** Writes what is pending (and applies retention when `isPruning`), after any write already under way. */
  #write(isPruning: boolean): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const rows = this.#pending;
      const isPruningNow = isPruning && (rows.length > 0 || this.#isPruneDue);
      if (rows.length === 0 && !isPruningNow) return;
      this.#pending = [];
      try {
        if (rows.length > 0) await this.#backend.append(rows);
        if (isPruningNow) {
          this.#isPruneDue = false;
          await this.#backend.prune(this.#options.maxEntries, this.#options.clock.now() - this.#options.maxAgeMs);
        } else this.#isPruneDue = true;
        this.#isFailing = false;
      } catch (error) {
        this.#report(error);
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
    this.#isClosed = true;
    await this.#backend.close();
  }

  #report(error: unknown): void {
    if (this.#isFailing) return;
    this.#isFailing = true;
    this.#options.onError?.(error);
  }

  #toRow(record: RequestRecord): StoredRequest {
    const json = recordJson(record, this.#options.isContentKept, this.#options.secrets?.() ?? []);
    const served = record.servedBy;
    // The names a query may filter on, each once (a few per record: plain arrays, no Set or closures per record).
    const models: string[] = [];
    addName(models, record.requestedModel);
    if (served !== undefined) {
      addName(models, served.model);
      for (const candidate of record.candidates) {
        if (candidate.deploymentKey === served.deploymentKey) addName(models, candidate.publicName);
      }
    }
    const providers: string[] = [];
    addName(providers, served?.provider);
    for (const attempt of record.attempts) addName(providers, attempt.provider);
    return {
      id: record.id,
      startedAtMs: record.startedAtMs,
      models,
      providers,
      status: record.status,
      client: record.client,
      json,
    };
  }
}

/** A record as stored: JSON, without message content unless it is kept, with every secret redacted. */
export function recordJson(record: RequestRecord, isContentKept: boolean, secrets: readonly string[]): string {
  // A record has content only with `log.content: true`: as a rule it is stored as it is, without a copy per
  // request (JSON.stringify leaves out the `undefined` of the copy that drops content).
  const stored = isContentKept || record.content === undefined ? record : { ...record, content: undefined };
  // The one redaction (configured keys and anything key-shaped), as for every other upstream-derived text.
  return redactSecrets(JSON.stringify(stored), secrets);
}

/** A stored row's record; a row that does not parse (a file damaged outside the gateway) is left out, not a 500. */
function parsedRecord(text: string): RequestRecord | undefined {
  try {
    return JSON.parse(text) as RequestRecord;
  } catch {
    return undefined;
  }
}

function addName(names: string[], name: string | undefined): void {
  if (name !== undefined && name !== "" && !names.includes(name)) names.push(name);
}

/** Whether a stored row passes a filter (for backends that filter in code). */
export function matchesFilter(row: StoredRequest, filter: RequestLogFilter): boolean {
  if (filter.sinceMs !== undefined && row.startedAtMs < filter.sinceMs) return false;
  if (filter.status !== undefined && row.status !== filter.status) return false;
  if (filter.model !== undefined && !row.models.includes(filter.model)) return false;
  if (filter.provider !== undefined && !row.providers.includes(filter.provider)) return false;
  if (filter.client !== undefined && row.client !== filter.client) return false;
  return true;
}

/** Rows in memory only: the default when state is not persisted (`state.path: ""`). */
export class MemoryRequestLogBackend implements RequestLogBackend {
  readonly kind = "memory";
  /** Oldest first. */
  #rows: StoredRequest[] = [];

  async append(rows: readonly StoredRequest[]): Promise<void> {
    this.#rows.push(...rows);
    // Records finish out of start order (a long stream); keep the array ordered by start time.
    this.#rows.sort((a, b) => a.startedAtMs - b.startedAtMs);
  }

  async query(filter: RequestLogFilter): Promise<string[]> {
    const found: string[] = [];
    for (let index = this.#rows.length - 1; index >= 0 && found.length < filter.limit; index--) {
      const row = this.#rows[index] as StoredRequest;
      if (matchesFilter(row, filter)) found.push(row.json);
    }
    return found;
  }

  async get(id: string, client?: string): Promise<string | undefined> {
    return this.#rows.findLast((row) => row.id === id && (client === undefined || row.client === client))?.json;
  }

  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    let start = Math.max(0, this.#rows.length - maxEntries);
    while (start < this.#rows.length && (this.#rows[start] as StoredRequest).startedAtMs < oldestStartedAtMs) start++;
    if (start > 0) this.#rows = this.#rows.slice(start);
  }

  async close(): Promise<void> {}
}
