// The one place errors become HTTP responses. Routes throw GatewayErrors; Fastify's own errors (bad JSON,
// body too large, wrong content type, bad URL) and Node's HTTP parser errors (timeouts, oversized headers,
// malformed requests, `Expect`) are mapped to the matching GatewayError first, so every answer has the gateway's
// error shape (Anthropic's on the Messages routes, else OpenAI's) and none is Fastify's or Node's default body.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { MAX_PATH_PARAM_CHARS } from "../config/request-bounds.ts";
import {
  ExpectationFailedError,
  type GatewayError,
  HeadersTooLargeError,
  InvalidRequestError,
  NotCachedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  RouteNotFoundError,
  UpstreamOverloadedError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import { errorHeaders, renderError, toGatewayError } from "../errors/render-error.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { anthropicStatus, renderAnthropicError } from "../protocols/messages/render-error.ts";
import { isBodyRefusal, recordBodyRefusal } from "./body-refusals.ts";
import { UPLOAD_DOORS, type UploadDoor, uploadExpected } from "./multipart-body.ts";
import { isMessagesRoute, MESSAGES_PATHS, pathOf, speaksAnthropic } from "./protocol-paths.ts";
import { answeredWithError, type ServerRefusals } from "./route-records.ts";

// Not `import { STATUS_CODES } from "node:http"`: an ES import of node:http builds its whole namespace, whose lazy
// exports (WebSocket, ...) load Node's bundled undici: ~40 ms of CPU and ~13 MB at every start, for a table.
const { STATUS_CODES } = process.getBuiltinModule("node:http");

/** `uploadDoor`: the route's door when it takes a `multipart/form-data` upload (audio, image edits), not JSON. */
export function fromFastifyError(
  error: FastifyError | Error,
  bodyLimitBytes: number,
  uploadDoor?: UploadDoor,
): GatewayError {
  const code = (error as FastifyError).code;
  const statusCode = (error as FastifyError).statusCode;
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return payloadTooLarge(bodyLimitBytes);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new InvalidRequestError(
        uploadDoor !== undefined
          ? uploadExpected(uploadDoor)
          : "Unsupported Content-Type: send the body as JSON with `Content-Type: application/json`.",
        { code: "invalid_content_type" },
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new InvalidRequestError("The request body is empty; a JSON object is required.", { code: "invalid_body" });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new InvalidRequestError("The Content-Length header does not match the body.", { code: "invalid_body" });
    case "FST_ERR_MAX_PARAM_LENGTH":
      // Fastify's own message quotes the whole path, kilobytes of it.
      return new InvalidRequestError(
        `A path segment of the URL is longer than ${MAX_PATH_PARAM_CHARS} characters: no id the gateway serves is that long.`,
        { code: "invalid_request" },
      );
    case "FST_ERR_BAD_URL":
      return new InvalidRequestError("The request URL is not valid (a malformed %-escape?).", {
        code: "invalid_request",
      });
    default:
      break;
  }
  if (error instanceof SyntaxError || code === "FST_ERR_CTP_INVALID_JSON_BODY") {
    return new InvalidRequestError(`The request body is not valid JSON: ${error.message}`, { code: "invalid_json" });
  }
  if (statusCode === 404) return new RouteNotFoundError("Unknown route.");
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500 && code?.startsWith("FST_")) {
    return new InvalidRequestError(error.message, { code: "invalid_request" });
  }
  return toGatewayError(error);
}

function payloadTooLarge(bodyLimitBytes: number): GatewayError {
  return new PayloadTooLargeError(`The request body is larger than the limit of ${bodyLimitBytes} bytes.`);
}

/**
 * Node's `checkContinue` (a request with `Expect: 100-continue`): `100 Continue` only when the declared
 * Content-Length is within the limit (Node's default said continue to every request, and the client sent megabytes
 * only to be refused). Either way the request then goes through Fastify like any other: the request id (the
 * client's when plain), the Host, shutdown and key checks (an unauthenticated upload gets its 401, not a 413), then
 * the body parser, which refuses an over-limit Content-Length before reading a byte. So its 413 is the one an
 * upload sent without `Expect` gets: same body in the caller's shape, same headers, same lingering close
 * (`sendError`). Node closes the connection after a response to an `Expect` it did not continue.
 */
export function continueWithinBodyLimit(bodyLimitBytes: number, server: Server) {
  return function handleCheckContinue(request: IncomingMessage, response: ServerResponse): void {
    const declaredBytes = Number(request.headers["content-length"]);
    if (!(declaredBytes > bodyLimitBytes)) response.writeContinue();
    server.emit("request", request, response);
  };
}

export function sendError(reply: FastifyReply, error: GatewayError): void {
  answeredWithError(reply.raw, error);
  // A request answered before its body was read (401 on a slow upload, 413, 408): close the connection instead
  // of reading the whole rest, so a client cannot hold the socket by trickling a body nobody will use; but read
  // and discard what comes for a bounded while first, or the close resets the connection and the client loses
  // the answer (closeAfterDiscardingBody).
  if (hasUnreadBody(reply.request.raw)) {
    reply.header("connection", "close");
    closeAfterDiscardingBody(reply.request.raw);
  }
  // Anthropic clients parse errors in Anthropic's shape (their SDK reads `error.type`).
  const isAnthropic = speaksAnthropic(reply.request.url, reply.request.headers);
  const body = isAnthropic ? renderAnthropicError(error, reply.request.id) : renderError(error);
  reply
    .code(isAnthropic ? anthropicStatus(error) : error.status)
    .headers(errorHeaders(error))
    .type("application/json")
    .send(body);
}

/**
 * How long, and how much, a connection answered before its body arrived is still read (and discarded) before it is
 * closed: nginx's lingering close. Long enough for a client on loopback or a fast link to read the answer while
 * it is still sending, short enough that a client trickling a body holds nothing (test/e2e/hostile-clients.test.ts).
 */
const LINGER_MAX_MS = 2_000;
const LINGER_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Closes the connection once the answer is out and the body has been read to its end, the client closed its side,
 * or the bounds above ran out. Node closes a `connection: close` response's socket with `destroySoon()`, whose
 * destroy discards input not read yet; with a body still arriving (an upload over body_limit_bytes), the kernel
 * then answers with a TCP reset, and a client still sending saw EPIPE or ECONNRESET instead of its 413. So
 * `destroySoon` of this one socket only ends our side (the client reads the answer and its end) and the rest of the
 * body is read until one of those happens.
 */
export function closeAfterDiscardingBody(request: IncomingMessage): void {
  const socket = request.socket;
  let discardedBytes = 0;
  let isLingering = false;
  request.on("data", (chunk: Buffer) => {
    discardedBytes += chunk.byteLength;
    if (discardedBytes > LINGER_MAX_BYTES) socket.destroy();
  });
  request.resume();
  const destroySoon = socket.destroySoon.bind(socket);
  socket.destroySoon = () => {
    if (request.complete || socket.destroyed) {
      destroySoon();
      return;
    }
    if (isLingering) return;
    isLingering = true;
    socket.end();
    const close = (): void => {
      socket.destroy();
    };
    const timer = setTimeout(close, LINGER_MAX_MS);
    timer.unref();
    request.once("end", close);
    socket.once("end", close);
    socket.once("close", () => clearTimeout(timer));
  };
}

function hasUnreadBody(request: IncomingMessage): boolean {
  if (request.complete) return false;
  const length = request.headers["content-length"];
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * The sockets whose request in flight is on the Messages routes, with that request's id: Node's `clientError`
 * names only the socket, and a body that arrives too slowly (408) fails after routing saw the path.
 */
export class MessagesSockets {
  readonly #requestIds = new WeakMap<Socket, string>();

  /** Until `response` is done (a later request on the same keep-alive socket may be on another route). */
  track(socket: Socket, requestId: string, response: ServerResponse): void {
    this.#requestIds.set(socket, requestId);
    response.once("close", () => {
      if (this.#requestIds.get(socket) === requestId) this.#requestIds.delete(socket);
    });
  }

  requestIdOf(socket: Socket): string | undefined {
    return this.#requestIds.get(socket);
  }
}

/** `POST /v1/messages HTTP/1.1`: the request line, when the packet that failed starts with one. */
const REQUEST_LINE = /^[A-Z]+ (\S+) HTTP\/1\.[01]\r?\n/;

/**
 * Node's `clientError` (HTTP parse errors, request and header timeouts, oversized headers): written straight
 * to the socket, then the connection is closed, as Node itself does. In Anthropic's shape when the request is
 * known to be on the Messages routes: its request was routed (`messagesSockets`), or the packet Node could not
 * parse (`rawPacket`, oversized headers) starts with its request line. Otherwise the path is unknown and the
 * answer has the OpenAI shape.
 */
export function clientErrorHandler(messagesSockets: MessagesSockets, refusals?: ServerRefusals) {
  return function handleClientError(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const gatewayError = fromClientError(error);
    // Not writable: the request in flight was answered already (a 413 or 401 before its body, lingering until it
    // closes: closeAfterDiscardingBody), or its client is gone; it gets no second answer, nor a second record.
    if (socket.writable) {
      const messagesId = messagesSockets.requestIdOf(socket);
      const path = requestLinePath(error.rawPacket) ?? (messagesId === undefined ? undefined : MESSAGES_PATHS[0]);
      // Recorded (route-records.ts), under the id its answer carries: the client can look its record up.
      const requestId = refusals?.refused(socket, gatewayError, path, messagesId) ?? messagesId;
      const isMessages = messagesId !== undefined || isMessagesRoute(path ?? "");
      const body = JSON.stringify(
        isMessages ? renderAnthropicError(gatewayError, requestId) : renderError(gatewayError),
      );
      // Anthropic's SDKs read `request-id`, OpenAI's `x-request-id` (the onRequest hook's rule).
      const idHeaders =
        requestId === undefined
          ? ""
          : `x-request-id: ${requestId}\r\n${isMessages ? `request-id: ${requestId}\r\n` : ""}`;
      socket.write(
        `HTTP/1.1 ${gatewayError.status} ${STATUS_CODES[gatewayError.status] ?? "Error"}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${idHeaders}` +
          `connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroySoon();
  };
}

function requestLinePath(rawPacket: unknown): string | undefined {
  if (!Buffer.isBuffer(rawPacket)) return undefined;
  // A request line longer than this is no route the gateway serves.
  const target = REQUEST_LINE.exec(rawPacket.toString("latin1", 0, 1024))?.[1];
  // Without its query: the record's endpoint is found by path (Anthropic's SDK sends `/v1/messages?beta=true`).
  return target === undefined ? undefined : pathOf(target);
}

function fromClientError(error: Error & { code?: string }): GatewayError {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new RequestTimeoutError("The request was not received in time; the connection is closed.");
    case "HPE_HEADER_OVERFLOW":
      return new HeadersTooLargeError("The request headers are too large; the connection is closed.");
    default:
      return new InvalidRequestError("Malformed HTTP request; the connection is closed.", { code: "invalid_request" });
  }
}

/** An `Expect` header other than `100-continue` (Node's default is an empty 417). */
export function expectationFailed(): GatewayError {
  return new ExpectationFailedError("Only `Expect: 100-continue` is supported.");
}

/**
 * `runtime`: a front door's request refused for its body is recorded in it (body-refusals.ts), as the pipeline records
 * the rest; a server without one (a route's unit test) records nothing.
 */
export function errorHandler(bodyLimitBytes: number, runtime?: GatewayRuntime) {
  return function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
    const gatewayError = answerError(error, request, reply, bodyLimitBytes);
    if (runtime !== undefined && isBodyRefusal(error)) recordBodyRefusal(runtime, request, gatewayError);
  };
}

/** Logs and sends the answer to `error`; returns the GatewayError it was answered as. */
function answerError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
  bodyLimitBytes: number,
): GatewayError {
  // A route's own limit when it has one (`POST /v1/files`: `batches.max_file_bytes`).
  const routeLimitBytes = request.routeOptions.bodyLimit ?? bodyLimitBytes;
  const gatewayError = fromFastifyError(error, routeLimitBytes, UPLOAD_DOORS.get(request.routeOptions.url ?? ""));
  logRequestError(request, gatewayError);
  sendError(reply, gatewayError);
  return gatewayError;
}

/**
 * Fastify's `frameworkErrors` (a URL it cannot decode, a path segment over MAX_PATH_PARAM_CHARS): answered before any
 * route or hook ran, as the error handler answers, and recorded as the HTTP server's refusals are (route-records.ts):
 * no route, no client (its key was never checked).
 */
export function frameworkErrorHandler(bodyLimitBytes: number, refusals: ServerRefusals) {
  return function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    // No hook ran to set it: the client finds its record by it.
    reply.header("x-request-id", request.id);
    const gatewayError = answerError(error, request, reply, bodyLimitBytes);
    refusals.publish(request.id, gatewayError, pathOf(request.url), request.headers);
  };
}

/**
 * A request's failure in the log, as the error handler writes it; also a stream's whose head went out early
 * (stream-keepalive.ts), whose failure is its last event instead of an HTTP error.
 */
export function logRequestError(request: FastifyRequest, gatewayError: GatewayError): void {
  // An only-if-cached miss is a 504 the client asked for (outcome not_cached), no failure: no error line, no stack.
  if (gatewayError instanceof UpstreamOverloadedError && gatewayError.cause === undefined) {
    // Every candidate said "too busy" (or still cools down after saying so): handled as the providers asked (cooldowns,
    // `retry-after` to the client), a refusal like every candidate rate-limited (info below), nothing broken. Warn: a
    // lasting overload is worth seeing, not an error alert on every request while providers are busy.
    request.log.warn(
      { type: gatewayError.name, code: gatewayError.code, attempts: gatewayError.attempts },
      gatewayError.message,
    );
  } else if (isUpstreamOutcome(gatewayError)) {
    // Every upstream failed or timed out: an outcome the attempts explain, not a fault in the gateway's code, so
    // no stack (it only ever pointed at the failover loop and buried the message, printed three times, on a
    // terminal). Still error level: every provider failing is what an alert on the error log is for.
    request.log.error(
      { type: gatewayError.name, code: gatewayError.code, attempts: gatewayError.attempts },
      gatewayError.message,
    );
  } else if (gatewayError.status >= 500 && !(gatewayError instanceof NotCachedError)) {
    // Internal details go to the log (with the request id), never to the client.
    request.log.error({ err: gatewayError.cause ?? gatewayError, code: gatewayError.code }, gatewayError.message);
  } else {
    request.log.info({ status: gatewayError.status, code: gatewayError.code }, gatewayError.message);
  }
}

/** No upstream could serve the request (502/503/504), with no underlying exception to show. */
function isUpstreamOutcome(error: GatewayError): boolean {
  return (
    (error instanceof UpstreamUnavailableError || error instanceof UpstreamTimeoutError) && error.cause === undefined
  );
}
