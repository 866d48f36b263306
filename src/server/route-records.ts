// The records of requests no model door serves (the pipeline records those): the routes of the Conversations, Files and
// Batch APIs, kept responses and the token counts (api-routes.ts families), each answer included, refusals of their
// bodies too; and the requests Node's HTTP server refuses before any route (malformed, headers too large, too slow,
// an `Expect` it does not take). Each leaves one record (pipeline/route-record.ts): its route, the status its client
// got, its client's name when known, an outcome, its duration. Never the key, never the body.
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from "fastify";
import { type RouteFamily, recordedRouteOf, routeFamilyOf, UNKNOWN_ROUTE } from "../api-routes.ts";
import { ClientAbortedError, type GatewayError } from "../errors/gateway-error.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { requestTrace } from "../trace-context.ts";

type Records = typeof import("../pipeline/handle-request.ts");

/**
 * The pipeline, imported at the first record published here as the forwarding door imports it at its first request
 * (forwarding-route.ts): a start that records nothing does not evaluate it.
 */
let loadedRecords: Records | undefined;

/** Calls `publish` with the pipeline's record publishers, now or once imported; a failure goes to `onError`. */
export function withRecords(publish: (records: Records) => void, onError: (error: unknown) => void): void {
  if (loadedRecords !== undefined) {
    publish(loadedRecords);
    return;
  }
  import("../pipeline/handle-request.ts")
    .then((records) => {
      loadedRecords = records;
      publish(records);
    })
    // The answer is out already: a failure here (the import, a subscriber) is only reported, never unhandled.
    .catch(onError);
}

/** The error each answer that was one went out with (sendError): its record's code and outcome. */
const ANSWER_ERRORS = new WeakMap<object, GatewayError>();

/** `response` (a reply's raw response) is answered with `error`. */
export function answeredWithError(response: object, error: GatewayError): void {
  ANSWER_ERRORS.set(response, error);
}

/** A recorded route's request in flight on a connection, until its response closes. */
interface RouteInFlight {
  readonly raw: IncomingMessage;
  readonly requestId: string;
  /** What Node's HTTP server answered it with instead (a body too slow: 408), written straight to the socket. */
  serverRefusal?: GatewayError;
}

/** By connection: a request timeout names the socket only (ServerRefusals). */
const ROUTES_IN_FLIGHT = new WeakMap<Socket, RouteInFlight>();

/**
 * Adds, to every route of a family registered after this call, a hook that records its request once its response
 * closes. Per route, at registration: the doors' routes, /health, /metrics and the rest get no hook and pay nothing.
 */
export function registerRouteRecords(app: FastifyInstance, runtime: GatewayRuntime): void {
  app.addHook("onRoute", (options) => {
    const url = options.url ?? options.path;
    const family = routeFamilyOf(url);
    if (family === undefined) return;
    const existing = options.onRequest === undefined ? [] : [options.onRequest].flat();
    // A GET route's HEAD twin is registered with the GET route's hooks, ours included: one is enough.
    if (existing.some((hook) => RECORDING_HOOKS.has(hook))) return;
    const hook = recordOnClose(runtime, family, url);
    RECORDING_HOOKS.add(hook);
    options.onRequest = [...existing, hook];
  });
}

const RECORDING_HOOKS = new WeakSet<object>();

function recordOnClose(runtime: GatewayRuntime, family: RouteFamily, url: string): onRequestHookHandler {
  return function recordWhenClosed(request, reply, done) {
    const socket = request.raw.socket;
    const inFlight: RouteInFlight = { raw: request.raw, requestId: request.id };
    ROUTES_IN_FLIGHT.set(socket, inFlight);
    reply.raw.once("close", () => {
      if (ROUTES_IN_FLIGHT.get(socket) === inFlight) ROUTES_IN_FLIGHT.delete(socket);
      publishClosed(runtime, request, reply, family, `${request.method} ${url}`, inFlight.serverRefusal);
    });
    done();
  };
}

function publishClosed(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  reply: FastifyReply,
  family: RouteFamily,
  route: string,
  serverRefusal: GatewayError | undefined,
): void {
  const response = reply.raw;
  // Written whole, the status it went out with; else Node's answer to the socket, or a client that left first (499).
  const error = serverRefusal ?? (response.writableFinished ? ANSWER_ERRORS.get(response) : new ClientAbortedError());
  const status = error === undefined || response.writableFinished ? response.statusCode : error.status;
  withRecords(
    (records) => {
      records.publishRouteRecord(
        runtime,
        {
          requestId: request.id,
          endpoint: family.name,
          clientProtocol: family.protocol,
          route,
          startedAtMs: request.arrivedAtMs,
          client: request.clientName ?? undefined,
          // The caller's trace continued, as a door's record (and its refused body's) has it: its span is the
          // caller's span's child, and an unsampled caller's route is not exported.
          trace: requestTrace(request.headers.traceparent, request.headers.tracestate, runtime.traceSampler),
        },
        status,
        error,
      );
    },
    (publishError) => request.log.error({ err: publishError }, "the record of a request could not be published"),
  );
}

/**
 * The records of requests Node's HTTP server answered before (or instead of) any route: `clientError` (malformed,
 * headers too large, too slow) and an `Expect` other than `100-continue`. Nothing of the request is known but what
 * its first packet's request line says (the endpoint, when it names a door's or a family's path) and, when its headers
 * were parsed (417, a URL Fastify refused), its `traceparent`; the route is
 * `unknown`, the client too (its key was never checked), and the duration 0 (Node keeps no arrival time for them).
 */
export class ServerRefusals {
  readonly #runtime: GatewayRuntime;
  readonly #newRequestId: () => string;
  readonly #onError: (error: unknown) => void;

  constructor(runtime: GatewayRuntime, newRequestId: () => string, onError: (error: unknown) => void) {
    this.#runtime = runtime;
    this.#newRequestId = newRequestId;
    this.#onError = onError;
  }

  /**
   * `socket`'s request was answered with `error` by the HTTP server; returns the request id its answer carries. A
   * recorded route's request still arriving on it (its body too slow: 408) is recorded by its route when its response
   * closes (with its id, route and client); any other is recorded here, under `knownId` (a Messages request's) or a
   * new one.
   */
  refused(socket: Socket, error: GatewayError, path: string | undefined, knownId: string | undefined): string {
    const inFlight = ROUTES_IN_FLIGHT.get(socket);
    if (inFlight !== undefined && !inFlight.raw.complete) {
      inFlight.serverRefusal = error;
      return inFlight.requestId;
    }
    const requestId = knownId ?? this.#newRequestId();
    this.publish(requestId, error, path);
    return requestId;
  }

  /**
   * A request answered by the HTTP server before routing, with `requestId`; `headers` when they were parsed (an
   * `Expect` refused, a URL Fastify could not route): its `traceparent` is continued in its record, as a door's is.
   */
  publish(requestId: string, error: GatewayError, path: string | undefined, headers?: IncomingHttpHeaders): void {
    const runtime = this.#runtime;
    const { endpoint, protocol } =
      path === undefined ? { endpoint: UNKNOWN_ROUTE, protocol: "unknown" as const } : recordedRouteOf(path);
    const trace =
      headers === undefined ? undefined : requestTrace(headers.traceparent, headers.tracestate, runtime.traceSampler);
    withRecords((records) => {
      records.publishRouteRecord(
        runtime,
        {
          requestId,
          endpoint,
          clientProtocol: protocol,
          route: UNKNOWN_ROUTE,
          startedAtMs: runtime.clock.now(),
          trace,
        },
        error.status,
        error,
      );
    }, this.#onError);
  }
}
