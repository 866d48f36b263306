// The observers of finished requests, built once by the composition root: metrics, the request log and the
// dashboard's recent activity. `observe` is the one record subscriber that feeds them all.
import type { Clock } from "../clock.ts";
import type { LiveStateSource } from "./live-state.ts";
import { GatewayMetrics } from "./metrics.ts";
import { RecentActivity } from "./recent-activity.ts";
import { RequestLog, type RequestLogBackend, recordJson } from "./request-log.ts";
import type { RequestRecord } from "./request-record.ts";

/** What the observers are asked to do (from the `log`, `request_log` and `metrics` config sections). */
export interface ObservabilitySettings {
  /** `log.content`: keep message content in the request log. */
  readonly isContentKept: boolean;
  readonly requestLogMaxEntries: number;
  /** ms a request log record is kept. */
  readonly requestLogMaxAgeMs: number;
  readonly isMetricsEnabled: boolean;
}

export interface ObserversOptions {
  readonly settings: ObservabilitySettings;
  readonly live: LiveStateSource;
  readonly clock: Clock;
  /** Where the request log lives; undefined with `request_log.enabled: false`. */
  readonly requestLogBackend?: RequestLogBackend | undefined;
  readonly secrets?: () => readonly string[];
  readonly version?: string;
  readonly onError?: (message: string, error: unknown) => void;
  /** More subscribers owned here (the OTLP trace exporter), closed with the rest. */
  readonly extra?: readonly RecordObserver[];
}

export interface RecordObserver {
  readonly observe: (record: RequestRecord) => void;
  /** Writes (or sends) what is buffered now; never rejects. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export class Observers {
  readonly live: LiveStateSource;
  readonly metrics: GatewayMetrics | undefined;
  readonly requestLog: RequestLog | undefined;
  readonly recent: RecentActivity;
  readonly #listeners: ((record: RequestRecord) => void)[] = [];
  readonly #extra: readonly RecordObserver[];
  readonly #isContentKept: boolean;
  readonly #secrets: () => readonly string[];

  constructor(options: ObserversOptions) {
    const { settings } = options;
    this.live = options.live;
    this.#isContentKept = settings.isContentKept;
    this.#secrets = options.secrets ?? (() => []);
    this.recent = new RecentActivity(options.clock);
    this.metrics = settings.isMetricsEnabled
      ? new GatewayMetrics(options.live, options.version === undefined ? {} : { version: options.version })
      : undefined;
    this.requestLog =
      options.requestLogBackend === undefined
        ? undefined
        : new RequestLog(options.requestLogBackend, {
            clock: options.clock,
            maxEntries: settings.requestLogMaxEntries,
            maxAgeMs: settings.requestLogMaxAgeMs,
            isContentKept: settings.isContentKept,
            ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
            onError: (error) => options.onError?.("request log: could not store records", error),
          });
    this.requestLog?.start();
    this.#listeners.push(this.recent.observe);
    if (this.metrics !== undefined) this.#listeners.push(this.metrics.observe);
    if (this.requestLog !== undefined) this.#listeners.push(this.requestLog.observe);
    this.#extra = options.extra ?? [];
    for (const observer of this.#extra) this.#listeners.push(observer.observe);
  }

  /**
   * A recent record (the dashboard's memory) as the request log would store it: content only when kept, every
   * provider key and key-shaped string redacted. The memory holds records as they were published, and an upstream's
   * error text or a client's prompt may carry a key.
   */
  recentRecord(id: string, client?: string): RequestRecord | undefined {
    const record = this.recent.get(id, client);
    return record === undefined
      ? undefined
      : (JSON.parse(recordJson(record, this.#isContentKept, this.#secrets())) as RequestRecord);
  }

  /** The record subscriber. Each observer is guarded: one failing never stops the others or the request. */
  readonly observe = (record: RequestRecord): void => {
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // an observer bug must not fail a request
      }
    }
  };

  /**
   * The process is about to exit without waiting for `close` (a second SIGTERM/SIGINT): the request log's pending
   * batch and what the other observers buffer are written now. Started together; the caller bounds the wait (a
   * hung disk or collector must not keep the process alive).
   */
  async flushBeforeExit(): Promise<void> {
    await Promise.allSettled([this.requestLog?.writePending(), ...this.#extra.map((observer) => observer.flush())]);
  }

  async close(): Promise<void> {
    await this.requestLog?.close();
    for (const observer of this.#extra) await observer.close();
  }
}
