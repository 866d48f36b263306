// Building and sending one upstream HTTP request with undici. Kept apart from the failover loop so that the
// loop reads as policy, not plumbing.
import type { Duplex } from "node:stream";
import type { Dispatcher } from "undici";
import { applyBodyRules, type BodyRules, OUTPUT_FIELDS } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import { type MessageOrder, type MessageOrdering, orderMessages } from "../providers/message-order.ts";
import { signaturesFor } from "../providers/thought-signatures.ts";
import { asksForText, encodeMultipart, type MultipartPayload, multipartBody } from "./multipart-payload.ts";

export interface UpstreamCall {
  readonly deployment: Deployment;
  /** Endpoint path below the provider's base URL, e.g. `/chat/completions` (the base URL's query goes after it). */
  readonly endpointPath: string;
  /** JSON text, or an audio upload's parts (its file shared by every attempt: multipart-payload.ts). */
  readonly payload: string | MultipartPayload;
  /** The payload's content type when it is not JSON (a multipart body carries its boundary here). */
  readonly contentType?: string | undefined;
  /** The answer is bytes (text to speech: audio in the format asked for): no `accept` narrows it to JSON. */
  readonly isBinaryAnswer?: boolean | undefined;
  /** An audio request that asked for a plain-text answer (`response_format` `text`, `srt`, `vtt`), not JSON. */
  readonly isTextAsked?: boolean | undefined;
  readonly isStream: boolean;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly signal: AbortSignal;
  /** The attempt's W3C `traceparent` (and the caller's `tracestate`), when the request has a trace. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/**
 * Sends a streamed call with `request()` (its answer is read as a Readable). `onSent`: told when undici hands the
 * request to a connection, right before writing it (after a new connection's set-up and TLS handshake), as the
 * JSON path's own handler is (buffered-call.ts `onRequestStart`): what the budgets count a send from.
 */
export function sendUpstream(
  dispatcher: Dispatcher,
  call: UpstreamCall,
  onSent: () => void,
): Promise<Dispatcher.ResponseData> {
  const options = { ...requestOptions(call), signal: call.signal };
  // `request()` builds its own handler and passes it to `this.dispatch`: called on a stand-in whose `dispatch`
  // wraps that handler, it reports the handler's start. undici's request API has no hook of its own for it.
  const request: (this: unknown, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> =
    dispatcher.request;
  const tap = {
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean =>
      dispatcher.dispatch(opts, new SentTap(handler, onSent, call.signal)),
  };
  return request.call(tap, options);
}

/**
 * `request()`'s handler (undici's legacy handler methods) with its start reported first. Every method undici may
 * call on such a handler is passed on as it is. A call aborted before its connection opened (the client left while it
 * connected) is still handed to the connection by undici, only for its handler to abort it there, unwritten: not a
 * send (as buffered-call.ts checks too; before 2026-12-07 it was reported, and the attempt charged its prompt).
 */
class SentTap implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #onSent: () => void;
  readonly #signal: AbortSignal;

  constructor(inner: Dispatcher.DispatchHandler, onSent: () => void, signal: AbortSignal) {
    this.#inner = inner;
    this.#onSent = onSent;
    this.#signal = signal;
  }

  onConnect(abort: (error?: Error) => void, context?: unknown): void {
    if (!this.#signal.aborted) this.#onSent();
    (this.#inner.onConnect as ((abort: (error?: Error) => void, context?: unknown) => void) | undefined)?.call(
      this.#inner,
      abort,
      context,
    );
  }

  onError(error: Error): void {
    this.#inner.onError?.(error);
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.#inner.onUpgrade?.(statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.#inner.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    return this.#inner.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    return this.#inner.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.#inner.onComplete?.(trailers);
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.#inner.onBodySent?.(chunkSize, totalBytesSent);
  }
}

/** The undici options of one upstream call (without its signal: `request()` and `dispatch` take it differently). */
export function requestOptions(call: UpstreamCall): Dispatcher.DispatchOptions {
  const { provider } = call.deployment;
  const settings = provider.settings;
  const [key] = settings.apiKeys;
  const headers: Record<string, string> = {
    ...settings.headers,
    "content-type": call.contentType ?? "application/json",
    // An audio request may ask for plain text (`response_format: text`, `srt`, `vtt`) or be answered in audio: no
    // `accept` narrows it.
    accept: call.isStream
      ? "text/event-stream"
      : call.contentType === undefined && call.isBinaryAnswer !== true
        ? "application/json"
        : "*/*",
    authorization: `Bearer ${key}`,
  };
  if (typeof call.payload !== "string") headers["content-length"] = String(call.payload.byteLength);
  if (call.traceparent !== undefined) withTraceHeaders(headers, call.traceparent, call.tracestate);
  return {
    origin: provider.origin,
    path: provider.basePath + call.endpointPath + provider.baseQuery,
    method: "POST",
    headers,
    body: typeof call.payload === "string" ? call.payload : multipartBody(call.payload),
    headersTimeout: call.headersTimeoutMs,
    bodyTimeout: call.bodyTimeoutMs,
  };
}

/**
 * The attempt's own trace headers, instead of any a provider's `headers` names in any case (one `traceparent` per
 * request: two would make the upstream's tracer drop both, as the W3C spec asks of it).
 */
function withTraceHeaders(headers: Record<string, string>, traceparent: string, tracestate: string | undefined): void {
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === "traceparent" || lower === "tracestate") delete headers[name];
  }
  headers.traceparent = traceparent;
  if (tracestate !== undefined) headers.tracestate = tracestate;
}

/**
 * Gateway extension of the chat body: a reasoning effort sent as `reasoning_effort` only to candidates known to
 * take it (model `reasoning: true`, or `supports_reasoning` in the metadata table), dropped for the others. The
 * Responses and Messages adapters put `reasoning.effort` and `thinking` here (docs/protocols.md "Reasoning").
 */
export const REASONING_EFFORT_FIELD = "x_gateway_reasoning_effort";

export interface PayloadOptions {
  readonly upstreamModelId: string;
  /** The gateway asks for a usage chunk itself (`stream_options.include_usage`). */
  readonly shouldAskForUsage?: boolean;
  /** The candidate takes `reasoning_effort`. */
  readonly supportsReasoning?: boolean;
  /** The deployment's `body:` rules (providers/body-rules.ts). */
  readonly bodyRules?: BodyRules | undefined;
  /** Which API the body is for: a native Responses body names its output limit otherwise (body-rules.ts). */
  readonly api?: "chat" | "responses";
  /** Output tokens a prefill continuation's client already has (ForwardRequest.spentOutputTokens). */
  readonly spentOutputTokens?: number | undefined;
  /**
   * The candidate's role order and `prefix` handling (providers/message-order.ts): its chat messages rewritten into
   * it. Default `any`.
   */
  readonly messageOrder?: MessageOrder | MessageOrdering | undefined;
  /**
   * The assistant tool calls' `extra_content` (Gemini's thought signatures, providers/thought-signatures.ts):
   * `gemini`, kept, and the documented fallback signature where a turn has none; `drop`, removed (an unknown field
   * elsewhere). Default: sent as they are.
   */
  readonly toolCallExtras?: "gemini" | "drop" | undefined;
}

/**
 * The multipart payload for one candidate of an audio request: the client's fields and file with the upstream model
 * id and the deployment's `body:` rules (a transcription model has no output-limit rules: catalog.ts).
 */
export function buildMultipartPayload(
  body: Readonly<Record<string, unknown>>,
  options: Pick<PayloadOptions, "upstreamModelId" | "bodyRules">,
): { readonly payload: MultipartPayload; readonly isTextAsked: boolean } {
  // The gateway's own fields, as buildPayload leaves them out (a speech-to-text model has no reasoning effort).
  const { models: _fallbacks, [REASONING_EFFORT_FIELD]: _effort, ...rest }: Record<string, unknown> = body;
  if (options.bodyRules !== undefined) applyBodyRules(rest, options.bodyRules, "chat");
  rest.model = options.upstreamModelId;
  return { payload: encodeMultipart(rest), isTextAsked: asksForText(rest) };
}

/** The payload for one candidate: the client's body with the upstream model id, without gateway-only fields. */
export function buildPayload(body: Readonly<Record<string, unknown>>, options: PayloadOptions): string {
  const { models: _fallbacks, [REASONING_EFFORT_FIELD]: effort, ...rest }: Record<string, unknown> = body;
  // The config's rules first: what they set is the request the provider gets, the gateway's own fields after them.
  if (options.bodyRules !== undefined) applyBodyRules(rest, options.bodyRules, options.api);
  rest.model = options.upstreamModelId;
  // Only a chat body's `messages` (a native Responses body has `input`); the client's array is never changed.
  if (options.messageOrder !== undefined && options.api !== "responses" && Array.isArray(rest.messages))
    rest.messages = orderMessages(rest.messages, options.messageOrder);
  if (options.toolCallExtras !== undefined && options.api !== "responses" && Array.isArray(rest.messages))
    rest.messages = signaturesFor(rest.messages, options.toolCallExtras);
  if (options.spentOutputTokens !== undefined) lessOutput(rest, options.spentOutputTokens);
  // The client's own `reasoning_effort` (chat) is its explicit choice and goes to every candidate as it is.
  if (
    options.supportsReasoning === true &&
    typeof effort === "string" &&
    rest.reasoning_effort === undefined &&
    options.bodyRules?.drop.includes("reasoning_effort") !== true
  ) {
    rest.reasoning_effort = effort;
  }
  if (options.shouldAskForUsage === true) {
    const options = rest.stream_options;
    rest.stream_options = { ...(options !== null && typeof options === "object" ? options : {}), include_usage: true };
  }
  return JSON.stringify(rest);
}

/**
 * A prefill continuation generates only the rest of the answer: the output limit it is sent, after the candidate's
 * rules (a `body:` default or override of `max_tokens` would otherwise give it the whole limit again), is what is
 * left, at least 1 (a limit of 0 is refused by providers).
 */
function lessOutput(body: Record<string, unknown>, spentTokens: number): void {
  for (const field of OUTPUT_FIELDS) {
    const limit = body[field];
    if (typeof limit === "number" && Number.isFinite(limit) && limit > 0)
      body[field] = outputLeftOf(limit, spentTokens);
  }
}

/**
 * A prefill continuation's output limit as its body is sent it (`lessOutput`): what is left after the delivered text,
 * at least 1; no limit (0) stays none. Its reservation counts the same (failover.ts): reserved whole, a continuation
 * that reported no usage kept the whole `max_tokens` as its floor though its provider was asked only for the rest.
 */
export function outputLeftOf(outputTokens: number, spentTokens: number | undefined): number {
  return spentTokens === undefined || outputTokens <= 0 ? outputTokens : Math.max(1, outputTokens - spentTokens);
}

export type NetworkFailure = "timeout" | "network_error" | "aborted";

/** Maps undici/socket errors to what failover needs to know. */
export function classifyNetworkError(error: unknown): { kind: NetworkFailure; reason: string } {
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
      return { kind: "timeout", reason: "no response headers within timeout_ms" };
    case "UND_ERR_BODY_TIMEOUT":
      return { kind: "timeout", reason: "the response body went silent" };
    case "UND_ERR_CONNECT_TIMEOUT":
      return { kind: "timeout", reason: "connect timeout" };
    case "ECONNREFUSED":
      return { kind: "network_error", reason: "connection refused" };
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
    case "EPIPE":
    case "UND_ERR_CLOSED":
      return { kind: "network_error", reason: "connection reset by the upstream" };
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return { kind: "network_error", reason: "host name not found" };
    default:
      break;
  }
  if (name === "AbortError" || code === "UND_ERR_ABORTED" || code === "ABORT_ERR")
    return { kind: "aborted", reason: "aborted" };
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "network_error", reason: message.slice(0, 200) };
}
