// One error hierarchy for everything the gateway answers with. Each subclass fixes the HTTP status and the
// OpenAI error `type`/`code` (a code from error-codes.ts); `render-error.ts` renders any of them.
import type { ErrorCode } from "./error-codes.ts";

/** One upstream attempt, as shown to clients when every attempt failed. Never carries a key. */
export interface AttemptSummary {
  provider: string;
  model: string;
  status?: number;
  reason: string;
}

/**
 * Which upstream produced an error the client gets as it was sent (OpenRouter's `error.metadata`): the message
 * stays the upstream's own, word for word; this says where it came from. `raw` is the upstream's body (redacted,
 * capped).
 */
export interface UpstreamMetadata {
  readonly provider: string;
  readonly model: string;
  readonly raw: string;
}

export interface GatewayErrorOptions {
  param?: string | null;
  cause?: unknown;
  retryAfterMs?: number;
  attempts?: readonly AttemptSummary[];
  metadata?: UpstreamMetadata;
  /** Every problem found (a config reload), rendered as `error.problems`. */
  problems?: readonly string[];
}

export abstract class GatewayError extends Error {
  abstract readonly status: number;
  abstract readonly type: string;
  abstract readonly code: string;
  readonly param: string | null;
  readonly retryAfterMs: number | undefined;
  readonly attempts: readonly AttemptSummary[];
  readonly metadata: UpstreamMetadata | undefined;
  readonly problems: readonly string[];

  constructor(message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.param = options.param ?? null;
    this.retryAfterMs = options.retryAfterMs;
    this.attempts = options.attempts ?? [];
    this.metadata = options.metadata;
    this.problems = options.problems ?? [];
  }

  /** Whether the same request may succeed later (clients and the failover loop both read this). */
  get isRetryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

export class InvalidRequestError extends GatewayError {
  readonly status = 400;
  readonly type = "invalid_request_error";
  readonly code: string;
  constructor(message: string, options: GatewayErrorOptions & { code?: ErrorCode } = {}) {
    super(message, options);
    this.code = options.code ?? "invalid_request";
  }
}

/** `POST /admin/reload` found the config invalid; the previous config keeps serving. */
export class InvalidConfigError extends GatewayError {
  readonly status = 400;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "config_invalid";
}

/** Nothing in the catalog can serve this request (context too small, no tool support, ...). */
export class NoCapableModelError extends GatewayError {
  readonly status = 400;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "no_capable_model";
}

export class AuthenticationError extends GatewayError {
  readonly status = 401;
  readonly type = "authentication_error";
  readonly code: ErrorCode = "invalid_api_key";
}

export class PermissionDeniedError extends GatewayError {
  readonly status = 403;
  readonly type = "permission_error";
  readonly code: ErrorCode = "permission_denied";
}

/** The Host header names none of `server.allowed_hosts` (a DNS-rebinding page in a browser, or a wrong name). */
export class HostNotAllowedError extends GatewayError {
  readonly status = 403;
  readonly type = "permission_error";
  readonly code: ErrorCode = "host_not_allowed";
}

export class ModelNotFoundError extends GatewayError {
  readonly status = 404;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "model_not_found";
}

/** A kept object the client named (a stored response, an item of one) does not exist or has expired. */
export class ResourceNotFoundError extends GatewayError {
  readonly status = 404;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode;
  constructor(message: string, options: GatewayErrorOptions & { code?: ErrorCode } = {}) {
    super(message, options);
    this.code = options.code ?? "response_not_found";
  }
}

export class RouteNotFoundError extends GatewayError {
  readonly status = 404;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "unknown_url";
}

/** GET /v1/gateway/requests/{id} for a request the log does not hold (never seen, or dropped by retention). */
export class RequestNotFoundError extends GatewayError {
  readonly status = 404;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "request_not_found";
}

export class PayloadTooLargeError extends GatewayError {
  readonly status = 413;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "payload_too_large";
}

/**
 * The request is larger than a whole token budget (tpm, tpd, ...) of every candidate that could serve it: it can
 * never be sent there, so waiting or retrying cannot help (a 429 would make an SDK retry forever). Groq answers the
 * same case with its own 413 "Request too large ... on tokens per minute (TPM): Limit X, Requested Y".
 */
export class RequestTooLargeError extends GatewayError {
  readonly status = 413;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "request_too_large";
}

/** The client did not send its whole request within `server.request_timeout_ms` (or its headers in time). */
export class RequestTimeoutError extends GatewayError {
  readonly status = 408;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "request_timeout";
}

/** An `Expect` header other than `100-continue`. */
export class ExpectationFailedError extends GatewayError {
  readonly status = 417;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "expectation_failed";
}

/** A request body in a `Content-Encoding` the gateway does not decode (it decodes gzip, deflate, br and zstd). */
export class UnsupportedMediaTypeError extends GatewayError {
  readonly status = 415;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "unsupported_media_type";
}

/** The request headers are larger than Node's limit (16 KB by default, `--max-http-header-size`). */
export class HeadersTooLargeError extends GatewayError {
  readonly status = 431;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "headers_too_large";
}

/** Every candidate is rate-limited or cooling down; `retryAfterMs` is the soonest availability. */
export class RateLimitedError extends GatewayError {
  readonly status = 429;
  readonly type = "rate_limit_error";
  readonly code: ErrorCode = "rate_limit_exceeded";
}

/**
 * A non-retryable answer from the upstream (400/404/422 other than context length), passed on with the
 * upstream's own status and, when it sent an OpenAI-shaped error, its type and code.
 */
export class UpstreamRequestError extends GatewayError {
  readonly status: number;
  readonly type: string;
  readonly code: string;
  constructor(
    message: string,
    details: { status: number; type?: string; code?: string },
    options: GatewayErrorOptions = {},
  ) {
    super(message, options);
    this.status = details.status;
    this.type = details.type ?? "invalid_request_error";
    this.code = details.code ?? "upstream_rejected_request";
  }
}

/**
 * No upstream could serve the request: 502 when attempts were made and failed (5xx, connection errors, bad
 * answers); 503 when none was made because every candidate is failing (circuit open, key parked).
 */
export class UpstreamUnavailableError extends GatewayError {
  readonly status: 502 | 503;
  readonly type = "upstream_error";
  readonly code: ErrorCode = "upstream_unavailable";
  constructor(message: string, options: GatewayErrorOptions & { status?: 502 | 503 } = {}) {
    super(message, options);
    this.status = options.status ?? 502;
  }
}

/**
 * Every attempt was answered "overloaded" (a 529 or `overloaded_error`, a 503 with retry-after) and no candidate was
 * left out for anything but such a cooldown: 503, as OpenAI answers its own overload; the Messages door answers 529,
 * Anthropic's (protocols/messages/render-error.ts anthropicStatus), which its SDK throws as `OverloadedError` and
 * Claude Code does not take for a rate limit of its own.
 */
export class UpstreamOverloadedError extends GatewayError {
  readonly status = 503;
  readonly type = "upstream_error";
  readonly code: ErrorCode = "upstream_overloaded";
}

export class UpstreamTimeoutError extends GatewayError {
  readonly status = 504;
  readonly type = "upstream_error";
  readonly code: ErrorCode = "upstream_timeout";
}

/**
 * `Cache-Control: only-if-cached` and the answer cache holds no answer for the request (or may not give one: the
 * cache is off, the endpoint's answers are not kept, `no-cache`/`no-store` came with it). RFC 9111 §5.2.1.7 asks
 * for a 504; nothing went upstream. Not retryable (the same request gets the same 504 until someone else's request
 * keeps an answer): an SDK that retries every 5xx is told not to (`x-should-retry: false`, render-error.ts).
 */
export class NotCachedError extends GatewayError {
  readonly status = 504;
  readonly type = "invalid_request_error";
  readonly code: ErrorCode = "not_cached";

  override get isRetryable(): boolean {
    return false;
  }
}

/** A committed stream broke and could not be continued; only ever sent in-band. */
export class StreamInterruptedError extends GatewayError {
  readonly status = 502;
  readonly type = "upstream_error";
  readonly code: ErrorCode = "stream_interrupted";
}

export class ServiceUnavailableError extends GatewayError {
  readonly status = 503;
  readonly type = "server_error";
  readonly code: ErrorCode = "service_unavailable";
}

/**
 * A write of kept responses or conversations the store did not answer within responses.store.write_timeout_ms: it
 * may still land, so the same request again may do it twice (a conversation's items appended twice): an SDK that
 * retries every 5xx is told not to (`x-should-retry: false`, render-error.ts).
 */
export class StoreWriteLateError extends ServiceUnavailableError {
  override get isRetryable(): boolean {
    return false;
  }
}

export class InternalError extends GatewayError {
  readonly status = 500;
  readonly type = "server_error";
  readonly code: ErrorCode = "internal_error";
}

/**
 * Why a request's signal aborted, for its attempt's reason: the client left, the gateway ended the request with an
 * error of its own (its exit: pipeline/open-requests.ts), or a background response was cancelled.
 */
export function abortReasonText(signal: AbortSignal): string {
  const { reason } = signal;
  if (reason instanceof GatewayError) return reason.message;
  // A reason of the gateway's own that is not an error to answer with: a background response's cancel
  // (pipeline/background-runs.ts). A plain abort() is a DOMException named AbortError: the client left.
  return reason instanceof Error && reason.name !== "AbortError" ? reason.message : "client disconnected";
}

/**
 * The client disconnected before the answer: nobody is left to answer, so this is never rendered; it ends the
 * request's work and is recorded with the de-facto status 499 (nginx's "client closed request").
 */
export class ClientAbortedError extends GatewayError {
  readonly status = 499;
  readonly type = "client_error";
  readonly code: ErrorCode = "client_closed_request";
  constructor(message = "client disconnected") {
    super(message);
  }
}

/**
 * Every error class by name. The bundle's minifier renames classes (`UpstreamUnavailableError` became `ve`), and
 * the names are read by the logs (pino's `type` is the class's name) and by each error's `name` and stack header:
 * each class gets its name back from this table, whose keys the minifier keeps. Every exported class must be here
 * (gateway-error.test.ts checks).
 */
export const ERROR_CLASSES = {
  GatewayError,
  InvalidRequestError,
  InvalidConfigError,
  NoCapableModelError,
  AuthenticationError,
  PermissionDeniedError,
  HostNotAllowedError,
  ModelNotFoundError,
  ResourceNotFoundError,
  RouteNotFoundError,
  RequestNotFoundError,
  PayloadTooLargeError,
  RequestTooLargeError,
  RequestTimeoutError,
  ExpectationFailedError,
  UnsupportedMediaTypeError,
  HeadersTooLargeError,
  RateLimitedError,
  UpstreamRequestError,
  UpstreamUnavailableError,
  UpstreamOverloadedError,
  UpstreamTimeoutError,
  NotCachedError,
  StreamInterruptedError,
  ServiceUnavailableError,
  StoreWriteLateError,
  InternalError,
  ClientAbortedError,
} as const;
for (const [name, errorClass] of Object.entries(ERROR_CLASSES))
  Object.defineProperty(errorClass, "name", { value: name });
