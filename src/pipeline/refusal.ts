// A request refused before it was planned (a body that fails validation, a protocol feature the gateway refuses,
// a missing field a protocol requires) still leaves its one record: status, error code, outcome, endpoint,
// protocol, the model asked for when the body named one, and its duration; no candidates and no attempts. The
// record is only published: a refusal touches no availability, health, budget or stats (the recorder's books).

import { ClientAbortedError, type GatewayError, NotCachedError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { isRecord } from "../is-record.ts";
import type { ClientProtocol } from "../observability/request-record.ts";
import type { TraceContext } from "../trace-context.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import { cutReason } from "./open-requests.ts";
import { RecordBuilder } from "./record-builder.ts";

export interface RefusedRequest {
  readonly requestId: string;
  /** Endpoint name (`chat`, `completions`, `embeddings`; the Responses and Messages doors serve `chat`). */
  readonly endpoint: string;
  readonly clientProtocol: ClientProtocol;
  /** When the request arrived (the runtime's clock). */
  readonly startedAtMs: number;
  /** The body as the client sent it (parsed JSON): only `model` and `stream` are read, when well typed. */
  readonly body: unknown;
  /** Whether the endpoint streams at all (embeddings never do, whatever `stream` says). */
  readonly supportsStream: boolean;
  /** The client's name (RequestContext.client). */
  readonly client?: string | undefined;
  /**
   * The request's signal, when it is already among the open requests (a door's translation): refused with the error
   * the gateway's exit cut it with, it is recorded as the cut requests are (`client_aborted`, that error's status and
   * code), not as a refusal.
   */
  readonly signal?: AbortSignal;
  /** The request's trace (RequestContext.trace), for its record. */
  readonly trace?: TraceContext | undefined;
}

/** Publishes the refused request's record and returns the error to throw (rendered by the adapter's handler). */
export function publishRefusal(runtime: GatewayRuntime, refused: RefusedRequest, error: unknown): GatewayError {
  const cut = refused.signal === undefined ? undefined : cutReason(refused.signal);
  const ending =
    cut !== undefined && cut === error
      ? { error: cut, outcome: "client_aborted" as const, code: cut.code }
      : refusalEnding(error);
  const fields = isRecord(refused.body) ? refused.body : {};
  const record = new RecordBuilder(runtime.clock, {
    id: refused.requestId,
    endpoint: refused.endpoint,
    clientProtocol: refused.clientProtocol,
    // "" when the body named no model (or not as a string): the refusal may be exactly that.
    requestedModel: typeof fields.model === "string" ? fields.model : "",
    isStream: refused.supportsStream && fields.stream === true,
    startedAtMs: refused.startedAtMs,
    ...(refused.client === undefined ? {} : { client: refused.client }),
    trace: refused.trace,
  }).finish(ending.error.status, ending.outcome, ending.code);
  if (record !== undefined) runtime.recorder.publish(record);
  return ending.error;
}

/**
 * How a refusal ends its record, before planning or at it: the error's status; `client_aborted` without a code for
 * a client that left, `not_cached` for an `only-if-cached` miss (the client's choice, not an error), else `rejected`
 * with the error's code.
 */
export function refusalEnding(error: unknown): {
  readonly error: GatewayError;
  readonly outcome: "client_aborted" | "not_cached" | "rejected";
  readonly code: string | undefined;
} {
  const gatewayError = toGatewayError(error);
  const isAborted = gatewayError instanceof ClientAbortedError;
  return {
    error: gatewayError,
    outcome: isAborted ? "client_aborted" : gatewayError instanceof NotCachedError ? "not_cached" : "rejected",
    code: isAborted ? undefined : gatewayError.code,
  };
}
