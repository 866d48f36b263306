// The record of a request no model door served: a route of the Conversations, Files or Batch APIs, a kept response's,
// a token count (api-routes.ts families), or a request the HTTP server refused before routing it (malformed, headers
// too large, too slow). No upstream is planned for any of them: no model asked for (`""`), no candidates, no attempts,
// no tokens; `route` says which route it was. Only published, as a refusal's record is (refusal.ts): it touches no
// availability, health, budget or stats.
import type { RecordedProtocol } from "../observability/request-record.ts";
import type { TraceContext } from "../trace-context.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import { RecordBuilder } from "./record-builder.ts";
import { refusalEnding } from "./refusal.ts";

export interface RouteRequest {
  readonly requestId: string;
  /** The family's name (RequestRecord.endpoint), or `unknown`. */
  readonly endpoint: string;
  readonly clientProtocol: RecordedProtocol;
  /** Method and route as registered, or `unknown` (RequestRecord.route). */
  readonly route: string;
  /** When the request arrived (the runtime's clock). */
  readonly startedAtMs: number;
  /** The client's name (its key's `server.api_keys` entry); absent for an unnamed key, no key, or not known. */
  readonly client?: string | undefined;
  /** The request's trace (requestTrace of its headers), as a door's record has it; absent when refused before routing. */
  readonly trace?: TraceContext | undefined;
}

/**
 * Publishes the record of `request`, answered with `status`: `error` is the one its client was answered with (its
 * outcome and code, as a refusal's: `client_aborted` for a ClientAbortedError, a client that left before the answer
 * was out), else the status says `success` (below 400) or `rejected`.
 */
export function publishRouteRecord(
  runtime: GatewayRuntime,
  request: RouteRequest,
  status: number,
  error?: unknown,
): void {
  const ending = error === undefined ? plainEnding(status) : refusalEnding(error);
  const record = new RecordBuilder(runtime.clock, {
    id: request.requestId,
    endpoint: request.endpoint,
    clientProtocol: request.clientProtocol,
    route: request.route,
    requestedModel: "",
    isStream: false,
    startedAtMs: request.startedAtMs,
    ...(request.client === undefined ? {} : { client: request.client }),
    trace: request.trace,
  }).finish(status, ending.outcome, ending.code);
  if (record !== undefined) runtime.recorder.publish(record);
}

function plainEnding(status: number): { readonly outcome: "success" | "rejected"; readonly code: undefined } {
  return { outcome: status < 400 ? "success" : "rejected", code: undefined };
}
