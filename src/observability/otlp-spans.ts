// A finished request record as OTLP spans: a server span for the request, a client span per upstream attempt (primary
// and continuation), with OpenTelemetry's GenAI semantic conventions where they fit (gen_ai.operation.name,
// gen_ai.request.model, gen_ai.response.model, gen_ai.provider.name, gen_ai.usage.*). Built after the record is final,
// by the exporter (otlp-traces.ts): nothing of it runs on a request's path. No prompt, answer or key is in a span.
import { RECORDED_ENDPOINTS } from "../api-routes.ts";
import { traitsOf } from "../errors/outcomes.ts";
import { ALL_FRONT_DOORS } from "../front-doors.ts";
import { newSpanId, newTraceId, type TraceSampler } from "../trace-context.ts";
import type { RecordedAttempt, RequestRecord } from "./request-record.ts";

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

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

/** A door's operation; a route no door serves (api-routes.ts) and `unknown` are their own (GenAI names none). */
const OPERATIONS: ReadonlyMap<string, string> = new Map([
  ...[...RECORDED_ENDPOINTS].map((name): [string, string] => [name, name]),
  ...ALL_FRONT_DOORS.map((door): [string, string] => [door.name, door.operation]),
]);
const ROUTES: ReadonlyMap<string, string> = new Map(ALL_FRONT_DOORS.map((door) => [door.name, door.path]));

/** Fresh ids for a record without a trace (a batch line, a background response). */
export interface SpanIds {
  traceId(): string;
  spanId(): string;
}

const RANDOM_IDS: SpanIds = { traceId: newTraceId, spanId: newSpanId };

/**
 * The request's span and one child span per attempt; none when its trace is not sampled. A record with a trace
 * (RequestRecord.trace) keeps its ids: the server span is the caller's span's child, and each attempt's span has the id
 * its `traceparent` carried upstream. A record without one gets new ids, and `sampler` decides as for a new trace.
 */
export function spansOf(
  record: RequestRecord,
  sampler: TraceSampler | undefined = undefined,
  ids: SpanIds = RANDOM_IDS,
): OtlpSpan[] {
  const trace = record.trace ?? newTrace(ids);
  if (record.trace === undefined ? sampler?.(trace.traceId, undefined) === false : !record.trace.isSampled) return [];
  // GenAI's operation name, or the door's own (front-doors.ts FrontDoor.operation).
  const operation = OPERATIONS.get(record.endpoint) ?? "chat";
  // A route no door serves has its method and route on the record (`GET /v1/conversations/:id`).
  const [method, route] = record.route === undefined ? ["POST", ROUTES.get(record.endpoint)] : splitRoute(record.route);
  const isError = record.status >= 500 && !traitsOf(record.outcome).isClientsChoice;
  const root: OtlpSpan = {
    traceId: trace.traceId,
    spanId: trace.spanId,
    ...(trace.parentSpanId === undefined ? {} : { parentSpanId: trace.parentSpanId }),
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
      attribute("http.request.method", method),
      ...(route === undefined ? [] : [attribute("http.route", route)]),
      attribute("http.response.status_code", record.status),
      attribute("llm_gateway.request_id", record.id),
      attribute("llm_gateway.endpoint", record.endpoint),
      attribute("llm_gateway.client_protocol", record.clientProtocol),
      attribute("llm_gateway.outcome", record.outcome),
      attribute("llm_gateway.stream", record.isStream),
      attribute("llm_gateway.attempts", record.attempts.length),
      attribute("llm_gateway.queue_wait_ms", record.queueWaitMs),
      ...(record.client === undefined ? [] : [attribute("llm_gateway.client", record.client)]),
      ...(record.earlyCommitMs === undefined ? [] : [attribute("llm_gateway.early_commit_ms", record.earlyCommitMs)]),
      ...(record.errorCode === undefined ? [] : [attribute("error.type", record.errorCode)]),
    ],
    status: isError ? { code: STATUS_ERROR, message: record.errorCode ?? record.outcome } : { code: STATUS_UNSET },
  };
  return [
    root,
    ...record.attempts.map((attempt) =>
      attemptSpan(attempt, operation, trace.traceId, trace.spanId, attempt.spanId ?? ids.spanId()),
    ),
  ];
}

function newTrace(ids: SpanIds): { traceId: string; spanId: string; parentSpanId?: string } {
  return { traceId: ids.traceId(), spanId: ids.spanId() };
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

export function attribute(key: string, value: string | number | boolean): OtlpAttribute {
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

/** `GET /v1/conversations/:id` as its method and route; a route without a method (`unknown`) as neither. */
function splitRoute(recorded: string): [string, string | undefined] {
  const space = recorded.indexOf(" ");
  return space < 0 ? ["_OTHER", undefined] : [recorded.slice(0, space), recorded.slice(space + 1)];
}
