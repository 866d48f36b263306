// Optional trace export: one OTLP/HTTP (JSON) span per request with a child span per upstream attempt, built from
// the request record (GenAI semantic conventions where they fit: gen_ai.operation.name, gen_ai.request.model,
// gen_ai.response.model, gen_ai.provider.name, gen_ai.usage.*). Loaded only when an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or `traces.otlp_endpoint`). Spans are sent in
// batches off the request path; a collector that is down loses spans, never a request.
import { randomBytes } from "node:crypto";
import { RECORDED_ENDPOINTS } from "../api-routes.ts";
import { traitsOf } from "../errors/outcomes.ts";
import { redactSecrets } from "../errors/redact.ts";
import { ALL_FRONT_DOORS } from "../front-doors.ts";
import type { RecordedAttempt, RequestRecord } from "./request-record.ts";

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
/** Spans buffered beyond this are dropped (a collector that cannot keep up must not grow memory). */
const MAX_BUFFERED_SPANS = 10_000;
const EXPORT_TIMEOUT_MS = 5_000;

type AttributeValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };

export interface OtlpAttribute {
  readonly key: string;
  readonly value: AttributeValue;
}

export interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes: readonly OtlpAttribute[];
  readonly status: { readonly code: number; readonly message?: string };
}

export interface OtlpExporterOptions {
  /** Full URL, e.g. `http://collector:4318/v1/traces`. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly serviceVersion: string;
  /** ms between exports; default 1000. */
  readonly flushIntervalMs?: number;
  /** Export as soon as this many spans are buffered; default 512. */
  readonly maxBatchSpans?: number;
  /** Told once per failing streak. */
  readonly onError?: (error: unknown) => void;
  /**
   * What every export is redacted of (the gateway's secrets, pipeline/logged-secrets.ts), read at each export: spans
   * carry upstream error text (an attempt's reason), and a collector is one more place a key must not reach.
   */
  readonly secrets?: () => readonly string[];
}

export class OtlpTraceExporter {
  readonly #options: OtlpExporterOptions;
  #spans: OtlpSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();
  #isFailing = false;

  constructor(options: OtlpExporterOptions) {
    this.#options = options;
    this.#timer = setInterval(() => {
      this.flush().catch(() => {});
    }, options.flushIntervalMs ?? 1_000);
    this.#timer.unref();
  }

  /** The record subscriber. */
  readonly observe = (record: RequestRecord): void => {
    if (this.#spans.length >= MAX_BUFFERED_SPANS) return;
    this.#spans.push(...spansOf(record));
    if (this.#spans.length >= (this.#options.maxBatchSpans ?? 512)) this.flush().catch(() => {});
  };

  /** Sends what is buffered; exports are serialised. */
  flush(): Promise<void> {
    this.#sending = this.#sending.then(async () => {
      const spans = this.#spans;
      if (spans.length === 0) return;
      this.#spans = [];
      try {
        const response = await fetch(this.#options.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...this.#options.headers },
          body: redactSecrets(JSON.stringify(this.#payload(spans)), this.#options.secrets?.() ?? []),
          signal: AbortSignal.timeout(EXPORT_TIMEOUT_MS),
        });
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`OTLP export answered HTTP ${response.status}`);
        this.#isFailing = false;
      } catch (error) {
        if (!this.#isFailing) this.#options.onError?.(error);
        this.#isFailing = true;
      }
    });
    return this.#sending;
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
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

/** A door's operation; a route no door serves (api-routes.ts) and `unknown` are their own (GenAI names none). */
const OPERATIONS: ReadonlyMap<string, string> = new Map([
  ...[...RECORDED_ENDPOINTS].map((name): [string, string] => [name, name]),
  ...ALL_FRONT_DOORS.map((door): [string, string] => [door.name, door.operation]),
]);

/** The request's span and one child span per attempt (primary and continuation). */
export function spansOf(record: RequestRecord, newId: (bytes: number) => string = randomHex): OtlpSpan[] {
  const traceId = newId(16);
  const spanId = newId(8);
  // GenAI's operation name, or the door's own (front-doors.ts FrontDoor.operation).
  const operation = OPERATIONS.get(record.endpoint) ?? "chat";
  const isError = record.status >= 500 && !traitsOf(record.outcome).isClientsChoice;
  const root: OtlpSpan = {
    traceId,
    spanId,
    // A route no door serves names no model: its method and route, as HTTP spans are named.
    name: record.route ?? `${operation} ${record.requestedModel}`,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: unixNano(record.startedAtMs),
    endTimeUnixNano: unixNano(record.startedAtMs + record.durationMs),
    attributes: [
      attribute("gen_ai.operation.name", operation),
      attribute("gen_ai.request.model", record.requestedModel),
      ...(record.servedBy === undefined
        ? []
        : [
            attribute("gen_ai.response.model", record.servedBy.model),
            attribute("gen_ai.provider.name", record.servedBy.provider),
          ]),
      attribute("gen_ai.usage.input_tokens", record.tokensIn),
      attribute("gen_ai.usage.output_tokens", record.tokensOut),
      ...(record.isUsageEstimated === true ? [attribute("llm_gateway.usage_estimated", true)] : []),
      attribute("http.response.status_code", record.status),
      attribute("llm_gateway.request_id", record.id),
      attribute("llm_gateway.endpoint", record.endpoint),
      attribute("llm_gateway.client_protocol", record.clientProtocol),
      attribute("llm_gateway.outcome", record.outcome),
      attribute("llm_gateway.stream", record.isStream),
      attribute("llm_gateway.attempts", record.attempts.length),
      attribute("llm_gateway.queue_wait_ms", record.queueWaitMs),
      ...(record.earlyCommitMs === undefined ? [] : [attribute("llm_gateway.early_commit_ms", record.earlyCommitMs)]),
      ...(record.errorCode === undefined ? [] : [attribute("error.type", record.errorCode)]),
    ],
    status: isError ? { code: STATUS_ERROR, message: record.errorCode ?? record.outcome } : { code: STATUS_UNSET },
  };
  return [root, ...record.attempts.map((attempt) => attemptSpan(attempt, operation, traceId, spanId, newId(8)))];
}

function attemptSpan(
  attempt: RecordedAttempt,
  operation: string,
  traceId: string,
  parentSpanId: string,
  spanId: string,
): OtlpSpan {
  const isSuccess = traitsOf(attempt.outcome).isSuccess;
  return {
    traceId,
    spanId,
    parentSpanId,
    name: `${operation} ${attempt.model}`,
    kind: SPAN_KIND_CLIENT,
    startTimeUnixNano: unixNano(attempt.startedAtMs),
    endTimeUnixNano: unixNano(attempt.startedAtMs + attempt.durationMs),
    attributes: [
      attribute("gen_ai.operation.name", operation),
      attribute("gen_ai.provider.name", attempt.provider),
      attribute("gen_ai.request.model", attempt.model),
      attribute("llm_gateway.deployment", attempt.deploymentKey),
      attribute("llm_gateway.role", attempt.role),
      attribute("llm_gateway.outcome", attempt.outcome),
      ...(attempt.status === undefined ? [] : [attribute("http.response.status_code", attempt.status)]),
      ...(attempt.headersMs === undefined ? [] : [attribute("llm_gateway.headers_ms", attempt.headersMs)]),
      ...(attempt.firstTokenMs === undefined ? [] : [attribute("llm_gateway.first_token_ms", attempt.firstTokenMs)]),
      ...(attempt.tokensIn === undefined ? [] : [attribute("gen_ai.usage.input_tokens", attempt.tokensIn)]),
      ...(attempt.tokensOut === undefined ? [] : [attribute("gen_ai.usage.output_tokens", attempt.tokensOut)]),
      // A broken stream segment's tokens are the gateway's count, not the provider's report.
      ...(attempt.isUsageEstimated === true ? [attribute("llm_gateway.usage_estimated", true)] : []),
      ...(isSuccess ? [] : [attribute("error.type", attempt.outcome)]),
    ],
    status: isSuccess ? { code: STATUS_UNSET } : { code: STATUS_ERROR, message: attempt.reason.slice(0, 500) },
  };
}

function attribute(key: string, value: string | number | boolean): OtlpAttribute {
  if (typeof value === "boolean") return { key, value: { boolValue: value } };
  if (typeof value === "number") {
    return { key, value: Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value } };
  }
  return { key, value: { stringValue: value } };
}

/** Epoch ms (possibly fractional) as OTLP's decimal string of nanoseconds. */
export function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1_000_000))).toString();
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
