// Optional trace export over OTLP/HTTP (JSON): the record subscriber that turns each finished request into spans
// (otlp-spans.ts) and posts them in batches to `<endpoint>/v1/traces` over one undici Pool. Loaded only when an OTLP
// endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or `traces.otlp_endpoint`).
// Nothing here is on a request's path: `observe` only queues. The queue is bounded (the oldest spans are dropped and
// counted), an export has a time bound with its retries, and a collector that is down or slow loses spans, never a
// request.
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { redactSecrets } from "../errors/redact.ts";
import type { TraceSampler } from "../trace-context.ts";
import { attribute, type OtlpSpan, spansOf } from "./otlp-spans.ts";
import type { RequestRecord } from "./request-record.ts";

export { type OtlpAttribute, type OtlpSpan, spansOf, unixNano } from "./otlp-spans.ts";

/** OTLP/HTTP's retryable answers (the spec's "Failures" section): everything else drops the batch. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

export type DropReason = "queue_full" | "export_failed";

export interface OtlpExporterOptions {
  /** Full URL, e.g. `http://collector:4318/v1/traces`. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly serviceVersion: string;
  /** ms between exports; default 1000. */
  readonly flushIntervalMs?: number;
  /** Spans per export, and an export starts as soon as this many wait; default 512. */
  readonly maxBatchSpans?: number;
  /** Spans waiting at most (`traces.max_queue_spans`); past it the oldest are dropped. Default 2048. */
  readonly maxQueueSpans?: number;
  /** ms one export may take, its retries included (`traces.export_timeout_ms`); also the bound of `close`. */
  readonly exportTimeoutMs?: number;
  /** For records without a trace of their own (a batch line, a background response): whether to export them. */
  readonly sampler?: TraceSampler;
  /** Told once per failing streak. */
  readonly onError?: (error: unknown) => void;
  /** Spans that will never be sent: dropped from a full queue, or in a batch whose export failed. */
  readonly onDropped?: (count: number, reason: DropReason) => void;
  /**
   * What every export is redacted of (the gateway's secrets, pipeline/logged-secrets.ts), read at each export: spans
   * carry upstream error text (an attempt's reason), and a collector is one more place a key must not reach.
   */
  readonly secrets?: () => readonly string[];
}

export class OtlpTraceExporter {
  readonly #options: OtlpExporterOptions;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #maxBatchSpans: number;
  readonly #maxQueueSpans: number;
  readonly #exportTimeoutMs: number;
  #queue: OtlpSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #exporting: Promise<void> | undefined;
  #isFailing = false;
  #isClosed = false;
  /** Aborted when `close` runs out of time: the export in flight and its backoff stop. */
  readonly #stop = new AbortController();

  constructor(options: OtlpExporterOptions) {
    this.#options = options;
    const url = new URL(options.url);
    this.#path = `${url.pathname}${url.search}`;
    // One connection: exports go one at a time, and a collector needs no more from one gateway.
    this.#pool = new Pool(url.origin, { connections: 1 });
    this.#maxBatchSpans = options.maxBatchSpans ?? 512;
    this.#maxQueueSpans = Math.max(options.maxQueueSpans ?? 2048, 1);
    this.#exportTimeoutMs = options.exportTimeoutMs ?? 10_000;
    this.#timer = setInterval(() => {
      if (this.#queue.length > 0) this.#startExport();
    }, options.flushIntervalMs ?? 1_000);
    this.#timer.unref();
  }

  /** The record subscriber: builds the spans and queues them; never waits, never throws. */
  readonly observe = (record: RequestRecord): void => {
    if (this.#isClosed) return;
    let spans: OtlpSpan[];
    try {
      spans = spansOf(record, this.#options.sampler);
    } catch {
      return;
    }
    if (spans.length === 0) return;
    for (const span of spans) this.#queue.push(span);
    const excess = this.#queue.length - this.#maxQueueSpans;
    if (excess > 0) {
      // The oldest go: the newest say more about what is happening now.
      this.#queue.splice(0, excess);
      this.#options.onDropped?.(excess, "queue_full");
    }
    if (this.#queue.length >= this.#maxBatchSpans) this.#startExport();
  };

  /** Sends what is queued (and what arrives meanwhile); never rejects. */
  flush(): Promise<void> {
    this.#startExport();
    return this.#exporting ?? Promise.resolve();
  }

  /** Stops the timer and sends what is queued, within `exportTimeoutMs` in all: what is left then is dropped. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#isClosed = true;
    if (this.#queue.length === 0 && this.#exporting === undefined) {
      this.#stop.abort();
      await this.#pool.destroy().catch(() => {});
      return;
    }
    // Not unref'd: it holds the process for the flush. A retry's wait (Retry-After, backoff) is an unref'd timer and
    // nothing else is left at shutdown once the server is closed: the process exited in it, the batch unsent.
    const bound = setTimeout(() => this.#stop.abort(), this.#exportTimeoutMs);
    try {
      await this.flush();
    } finally {
      clearTimeout(bound);
      this.#stop.abort();
      await this.#pool.destroy().catch(() => {});
    }
  }

  #startExport(): void {
    if (this.#exporting !== undefined || this.#queue.length === 0) return;
    this.#exporting = this.#drain().finally(() => {
      this.#exporting = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      if (this.#stop.signal.aborted) {
        this.#options.onDropped?.(this.#queue.length, "export_failed");
        this.#queue = [];
        return;
      }
      const batch = this.#queue.splice(0, this.#maxBatchSpans);
      const error = await this.#export(batch);
      if (error === undefined) {
        this.#isFailing = false;
        continue;
      }
      this.#options.onDropped?.(batch.length, "export_failed");
      if (!this.#isFailing) this.#options.onError?.(error);
      this.#isFailing = true;
    }
  }

  /** One batch, retried on OTLP's retryable answers within the export's time; the error when it was not taken. */
  async #export(spans: readonly OtlpSpan[]): Promise<Error | undefined> {
    const body = redactSecrets(JSON.stringify(this.#payload(spans)), this.#options.secrets?.() ?? []);
    const deadlineMs = Date.now() + this.#exportTimeoutMs;
    for (let retry = 0; ; retry++) {
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0) return new Error("OTLP export timed out");
      let waitMs: number;
      let failure: Error;
      try {
        const response = await this.#pool.request({
          path: this.#path,
          method: "POST",
          headers: { ...this.#options.headers, "content-type": "application/json" },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(remainingMs), this.#stop.signal]),
          headersTimeout: remainingMs,
          bodyTimeout: remainingMs,
        });
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
        failure = new Error(`OTLP export answered HTTP ${response.statusCode}`);
        if (!RETRYABLE_STATUSES.has(response.statusCode)) return failure;
        // Retry-After is a floor, not the wait: a `0` (or a date past) taken as "at once" resent the batch hundreds
        // of times a second for the whole export_timeout_ms.
        waitMs = Math.max(retryAfterMs(response.headers["retry-after"]) ?? 0, backoffMs(retry));
      } catch (error) {
        // Not reached, refused, reset or timed out: transient as far as the exporter can tell.
        failure = error instanceof Error ? error : new Error(String(error));
        waitMs = backoffMs(retry);
      }
      if (this.#stop.signal.aborted || Date.now() + waitMs >= deadlineMs) return failure;
      try {
        await sleep(waitMs, undefined, { signal: this.#stop.signal, ref: false });
      } catch {
        return failure;
      }
    }
  }

  #payload(spans: readonly OtlpSpan[]) {
    const { serviceName, serviceVersion } = this.#options;
    return {
      resourceSpans: [
        {
          resource: {
            attributes: [attribute("service.name", serviceName), attribute("service.version", serviceVersion)],
          },
          scopeSpans: [{ scope: { name: "llm-gateway", version: serviceVersion }, spans }],
        },
      ],
    };
  }
}

/** Exponential with full jitter (so that gateways behind one collector do not retry in step). */
function backoffMs(retry: number): number {
  return Math.random() * Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** retry);
}

/** `Retry-After` in seconds or as an HTTP date, as the OTLP spec asks a client to honour it. */
export function retryAfterMs(header: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1_000);
  const atMs = Date.parse(value);
  return Number.isNaN(atMs) ? undefined : Math.max(0, atMs - nowMs);
}
