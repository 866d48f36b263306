// A request its door refused while reading or parsing its body (not JSON, a `__proto__` key, over the size limit, a
// content type or encoding the door does not take) never reaches the pipeline, which records every other request: its
// one record is published here, so the request log, metrics and the dashboard see it as they see any refusal. Nothing
// of the body is read for it (no `model`, no `stream`): a body refused unread, or refused for its shape, may hold
// anything, secrets included.
import type { FastifyError, FastifyRequest } from "fastify";
import type { GatewayError } from "../errors/gateway-error.ts";
import { ALL_FRONT_DOORS, type FrontDoor, pathsOf } from "../front-doors.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { requestTrace } from "../trace-context.ts";
import { withRecords } from "./route-records.ts";

/** The errors the body parsers (and the upload door's own content-type check) refused a body with. */
const BODY_REFUSALS = new WeakSet<object>();

/** Marks `error` as a refusal of the request's body (recordBodyRefusal records it); returns it. */
export function refusedBody<T>(error: T): T {
  // A parser's rejection may be anything thrown; only an object can be marked (a WeakSet throws on the rest).
  if (typeof error === "object" && error !== null) BODY_REFUSALS.add(error);
  return error;
}

/**
 * Whether the error handler got a refusal of the body: one the gateway's parsers marked, or Fastify's own (its
 * content-type parser's codes: too large, no parser for the type, an empty JSON body, a wrong Content-Length).
 */
export function isBodyRefusal(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  if (BODY_REFUSALS.has(error)) return true;
  const code = (error as FastifyError).code;
  return typeof code === "string" && code.startsWith("FST_ERR_CTP_");
}

/** The front doors by route (their POST paths, with and without `/v1`). */
const DOORS_BY_ROUTE: ReadonlyMap<string, FrontDoor> = new Map(
  ALL_FRONT_DOORS.flatMap((door) => pathsOf(door).map((path): [string, FrontDoor] => [path, door])),
);

/**
 * Publishes the record of a front door's request whose body was refused (`error`, the one its client is answered
 * with): `rejected`, that status and code, the door's endpoint and protocol, no model (`""`), not a stream, from its
 * arrival to now. The other routes that leave records (route-records.ts) record their refusals when their responses
 * close, as their other answers; the rest (/metrics, admin routes, an unknown URL) leave none.
 */
export function recordBodyRefusal(runtime: GatewayRuntime, request: FastifyRequest, error: GatewayError): void {
  if (request.method !== "POST") return;
  const door = DOORS_BY_ROUTE.get(request.routeOptions.url ?? "");
  if (door === undefined) return;
  withRecords(
    (records) => {
      records.publishRefusal(
        runtime,
        {
          requestId: request.id,
          endpoint: door.name,
          clientProtocol: door.protocol,
          // From its arrival (the first hook's time): the client waited while its body was read, and refused. Until
          // 2026-12-08 it started at the refusal, a duration of 0 whatever the refusal took.
          startedAtMs: request.arrivedAtMs,
          body: undefined,
          supportsStream: false,
          client: request.clientName ?? undefined,
          trace: requestTrace(request.headers.traceparent, request.headers.tracestate, runtime.traceSampler),
        },
        error,
      );
    },
    (publishError) => {
      request.log.error({ err: publishError }, "the record of a refused request body could not be published");
    },
  );
}
