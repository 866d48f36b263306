// The HTTP server: Fastify lives only in this folder. Routes, auth, body limits, error rendering.
import { randomFillSync } from "node:crypto";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { redactedRequestTarget } from "../config/provider-secrets.ts";
import { MAX_CLIENT_REQUEST_ID_CHARS, MAX_PATH_PARAM_CHARS } from "../config/request-bounds.ts";
import { HostNotAllowedError, RouteNotFoundError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import { renderError } from "../errors/render-error.ts";
import { pathsOf } from "../front-doors.ts";
import type { Observers } from "../observability/observers.ts";
import { BatchBooks } from "../pipeline/batch-books.ts";
import { ENDPOINTS } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { renderAnthropicError } from "../protocols/messages/render-error.ts";
import type { Conversations } from "../protocols/responses/conversations.ts";
import type { KeptResponses } from "../protocols/responses/kept-responses.ts";
import { MemoryBatchRows } from "../state/batch-rows.ts";
import type { ToolCallExtrasStore } from "../state/tool-call-extras.ts";
import { registerAdminRoutes } from "./admin-routes.ts";
import { allowedHostsFor, isHostAllowed } from "./allowed-hosts.ts";
import { clientKeyRefused, currentKeyRing, type KeyRing } from "./auth.ts";
import { registerBatchDoors } from "./batch-doors.ts";
import type { BatchSetup } from "./batch-routes.ts";
import { registerCompressedBodies } from "./compressed-body.ts";
import { registerCors } from "./cors.ts";
import {
  clientErrorHandler,
  continueWithinBodyLimit,
  errorHandler,
  expectationFailed,
  frameworkErrorHandler,
  MessagesSockets,
  sendError,
} from "./error-handler.ts";
import { forwardingHandler } from "./forwarding-route.ts";
import { isPlainHeaderValue, toHeaderValue } from "./header-value.ts";
import type { KeptResponsesStatus } from "./health-state.ts";
import { registerInfoRoutes } from "./info-routes.ts";
import { registerJsonBodyParser } from "./json-body.ts";
import { registerLazyRoutes, sharedLoad } from "./lazy-routes.ts";
import { registerMultipartBodyParser } from "./multipart-body.ts";
import { checksOwnKeys, registerObservabilityRoutes } from "./observability-routes.ts";
import { cutWhenTurnComes } from "./pipelined-responses.ts";
import {
  BATCHES_PATHS,
  CONVERSATIONS_PATHS,
  FILES_PATHS,
  isMessagesRoute,
  MESSAGES_PATHS,
  PROTOCOL_DOORS,
  pathOf,
  RESPONSES_PATHS,
  speaksAnthropic,
} from "./protocol-paths.ts";
import { PROTOCOL_ROUTES } from "./protocol-route-shapes.ts";
import { registerRouteRecords, ServerRefusals } from "./route-records.ts";

/**
 * Routes that answer without a client key: load-balancer liveness (`/ok`), and `/` for clients that check the base URL
 * answers before their first request (Claude Code sends `HEAD /` without a key at each start: a 401 and a warning
 * line per start before). Both say only that the gateway is up.
 */
const PUBLIC_PATHS = new Set(["/ok", "/"]);

export interface ServerOptions {
  /** pino logger options or false; tests pass false or a level. */
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** Metrics, request log and dashboard data; without it /metrics, /v1/gateway/requests and /dashboard are 404. */
  readonly observers?: Observers;
  /** Where kept Responses API answers live (the composition root picks the store); default: this process's memory. */
  readonly keptResponses?: KeptResponses;
  /** Where kept conversations live (the same choice of store); default: this process's memory. */
  readonly conversations?: Conversations;
  /** Where the tool calls' `extra_content` is kept between turns (the same choice); default: this process's memory. */
  readonly toolCallExtras?: ToolCallExtrasStore;
  /** Where files and batches live (the same choice of store), or why they are refused; default: this process's memory. */
  readonly batches?: BatchSetup;
  /** How that store is doing, for /health (`kept_responses`); unset: not shown. */
  readonly keptResponsesStatus?: () => KeptResponsesStatus;
}

/** Distinct unknown routes logged (once each); past this, no more are remembered or logged. */
const MAX_LOGGED_UNKNOWN_ROUTES = 1_000;

/** The server as the CLI sees it; only src/server names the HTTP framework. */
export type GatewayServer = FastifyInstance;

export function buildServer(runtime: GatewayRuntime, options: ServerOptions = {}): FastifyInstance {
  const messagesSockets = new MessagesSockets();
  const app = createFastify(runtime, options, messagesSockets);
  // Set by the key check (registerRequestGuards); a primitive default, so Fastify keeps the request's shape fixed.
  app.decorateRequest("clientName", null);
  app.decorateRequest("arrivedAtMs", 0);
  // Before any route is registered: it hooks the routes no door serves as they are (route-records.ts).
  registerRouteRecords(app, runtime);
  registerCompressedBodies(app, runtime.snapshot.config.server.bodyLimitBytes);
  registerJsonBodyParser(app);
  registerMultipartBodyParser(app);
  // Before the key check: browsers send preflights without credentials.
  registerCors(app, runtime.snapshot.config.server.corsOrigins);
  const clientKeys = currentKeyRing(
    () => runtime.snapshot.config,
    (config) => config.server.apiKeys,
    (config) => config.server.apiKeyNames,
  );
  const adminKeys = currentKeyRing(
    () => runtime.snapshot.config,
    (config) => config.server.adminKeys,
  );
  registerRequestGuards(app, runtime, clientKeys, messagesSockets);
  registerErrorHandlers(app, runtime);
  // The Responses and Messages doors have their own adapters (protocol-routes.ts); every other door is forwarded.
  for (const endpoint of ENDPOINTS) {
    if (PROTOCOL_DOORS.has(endpoint.name)) continue;
    const handler = forwardingHandler(endpoint, runtime);
    for (const path of pathsOf(endpoint)) app.post(path, handler);
  }
  // The Responses and Messages doors' routes now, their modules at the first request to one of them (or the first
  // batch line for /v1/responses): a start that serves chat does not evaluate them (lazy-routes.ts). One import.
  const protocols = sharedLoad(async () =>
    (await import("./protocol-routes.ts")).protocolDoors(
      runtime,
      options.keptResponses,
      options.conversations,
      options.toolCallExtras,
    ),
  );
  registerLazyRoutes(app, PROTOCOL_ROUTES, async () => (await protocols()).handlers, "Responses and Messages");
  // The Files and Batch routes the same way (batch-doors.ts), unless there are batches to resume at start.
  registerBatchDoors(
    app,
    runtime,
    options.batches ?? inMemoryBatches(runtime),
    async () => (await protocols()).responses,
  );
  registerInfoRoutes(app, runtime, options.keptResponsesStatus);
  registerAdminRoutes(app, runtime, adminKeys);
  if (options.observers !== undefined) {
    registerObservabilityRoutes(app, options.observers, { client: clientKeys, admin: adminKeys });
  }
  registerResponseHooks(app, runtime);
  return app;
}

/** The front doors' routes (and those under them: kept responses, token counts), whose answers are model output. */
const MODEL_OUTPUT_PATHS: readonly string[] = [
  ...ENDPOINTS.flatMap((endpoint) => pathsOf(endpoint)),
  ...RESPONSES_PATHS,
  ...MESSAGES_PATHS,
  // Conversation items are what clients and models wrote, kept as they were sent.
  ...CONVERSATIONS_PATHS,
  // Uploaded requests and batch output files: what clients and models wrote.
  ...FILES_PATHS,
  ...BATCHES_PATHS,
];

/** Files and batches in this process's memory (a server built without a composition root's store). */
function inMemoryBatches(runtime: GatewayRuntime): BatchSetup {
  return { books: new BatchBooks(new MemoryBatchRows(), runtime.clock, () => runtime.snapshot.config.batches) };
}

/** By registered route (a bounded set: Fastify's route pattern, not the request's URL), so the scan runs once each. */
const modelOutputRoutes = new Map<string, boolean>();

function isModelOutputRoute(route: string): boolean {
  let isOutput = modelOutputRoutes.get(route);
  if (isOutput === undefined) {
    isOutput = MODEL_OUTPUT_PATHS.some((path) => route === path || route.startsWith(`${path}/`));
    modelOutputRoutes.set(route, isOutput);
  }
  return isOutput;
}

/** A route that declares a schema fails at registration: the gateway validates with zod, not ajv. */
function noRouteSchemas(): () => never {
  return () => {
    throw new Error("route schemas are not supported: validate with zod in the pipeline");
  };
}

/** The Fastify instance with the gateway's logging, timeouts and connection bounds. */
function createFastify(
  runtime: GatewayRuntime,
  options: ServerOptions,
  messagesSockets: MessagesSockets,
): FastifyInstance {
  const { server: settings } = runtime.snapshot.config;
  const newRequestId = requestIdGenerator();
  // Late-bound: the refusals are recorded while the app serves, long after it is built.
  const refusals = new ServerRefusals(
    runtime,
    () => newRequestId({ headers: {} }),
    (error) =>
      app.log.error({ err: error }, "the record of a request refused by the HTTP server could not be published"),
  );
  const app: FastifyInstance = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: typeof options.logger === "object" ? options.logger.level : settings.logLevel,
            ...(typeof options.logger === "object" && options.logger.stream !== undefined
              ? { stream: options.logger.stream }
              : {}),
            // Client keys must never reach a log line.
            redact: ["req.headers.authorization", 'req.headers["x-api-key"]', 'req.headers["api-key"]'],
            // Nor any configured key (provider, client, admin; the serving config's and those a reload retired), at
            // any level, wherever it hides in a line (an upstream's error text quoted in a message, a reason, an
            // error's cause, a request quoted by a debug line): every line is redacted whole, just before it is written.
            hooks: { streamWrite: (line: string) => runtime.secrets.redact(line) },
          },
    bodyLimit: settings.bodyLimitBytes,
    // The longest path parameter the router takes (Fastify's default is 100): above every id a route itself accepts
    // (a conversation item id up to 200 characters, conversations.ts), so such an id reaches its route's own check and
    // lookup rather than a router refusal; a longer one is refused with MAX_PATH_PARAM_CHARS named (error-handler.ts).
    routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
    // One `routed` line per request is written by us, with the routing decision; Fastify's own are off.
    logController: new LogController({ disableRequestLogging: true }),
    // Our own onRequest hook answers 503 in the OpenAI error shape while shutting down.
    return503OnClosing: false,
    forceCloseConnections: "idle",
    // The client's `x-request-id` is used only when it is a short plain token (see requestIdGenerator).
    requestIdHeader: false,
    genReqId: newRequestId,
    // Slow clients: the whole request (headers and body) must arrive within requestTimeoutMs, the headers within
    // headersTimeoutMs; Node checks every connection once per connectionsCheckingInterval.
    requestTimeout: settings.requestTimeoutMs,
    http: {
      headersTimeout: Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(1_000, settings.headersTimeoutMs),
    },
    clientErrorHandler: clientErrorHandler(messagesSockets, refusals),
    frameworkErrors: frameworkErrorHandler(settings.bodyLimitBytes, refusals),
    // Bodies are validated with zod in the pipeline and no route declares a JSON schema: without these, Fastify
    // loads ajv and fast-json-stringify at start (~4 MB and ~60 ms of CPU) for nothing.
    schemaController: { compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas } },
  });
  app.server.maxConnections = settings.maxConnections;
  app.server.on("checkContinue", continueWithinBodyLimit(settings.bodyLimitBytes, app.server));
  app.server.on("checkExpectation", (request, response) => {
    const error = expectationFailed();
    const requestId = newRequestId(request);
    // In the Messages routes' shape, with `request-id` too, as Node's other refusals there (clientErrorHandler).
    const isMessages = isMessagesRoute(request.url ?? "");
    const body = JSON.stringify(isMessages ? renderAnthropicError(error, requestId) : renderError(error));
    response.writeHead(error.status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-request-id": requestId,
      ...(isMessages ? { "request-id": requestId } : {}),
      connection: "close",
    });
    response.end(body);
    refusals.publish(requestId, error, pathOf(request.url ?? ""), request.headers);
  });
  return app;
}

/** Before any route: the Host check (DNS rebinding), the shutdown 503, and the client key. */
function registerRequestGuards(
  app: FastifyInstance,
  runtime: GatewayRuntime,
  clientKeys: () => KeyRing,
  messagesSockets: MessagesSockets,
): void {
  const allowedHosts = allowedHostsFor(runtime.snapshot.config.server);
  // Callback-style hooks (here and below): an async hook costs a promise and a microtask on every request, and a
  // throw in a callback hook reaches the error handler all the same.
  app.addHook("onRequest", (request, reply, done) => {
    request.arrivedAtMs = runtime.clock.now();
    cutWhenTurnComes(reply.raw);
    const keys = clientKeys();
    reply.header("x-request-id", request.id);
    // No browser may read an answer (JSON holding client- and upstream-chosen text, /metrics' text) as anything but
    // its declared type. Fastify's headers, not the raw response's: a header set on the raw response sends Node's
    // writeHead down its merging path on every answer; streams, written after hijack(), carry it in sseHeaders().
    reply.header("x-content-type-options", "nosniff");
    // Anthropic's SDK reads the id from `request-id` (`message._request_id`, `APIError.requestID`). Only where
    // Anthropic's clients are answered: OpenAI's SDKs read `x-request-id`, and no other client looks for this name.
    if (isMessagesRoute(request.url)) {
      reply.header("request-id", request.id);
      messagesSockets.track(request.raw.socket, request.id, reply.raw);
    } else if (speaksAnthropic(request.url, request.headers)) {
      reply.header("request-id", request.id);
    }
    if (!isHostAllowed(allowedHosts, request.headers.host)) {
      throw new HostNotAllowedError(
        "This Host is not in server.allowed_hosts (the gateway only answers the names it is configured for).",
      );
    }
    if (runtime.isShuttingDown) {
      reply.header("connection", "close");
      throw new ServiceUnavailableError("The gateway is shutting down; retry the request (on another instance).");
    }
    const path = pathOf(request.url);
    // Admin, dashboard and metrics routes check their keys themselves (observability-routes.ts).
    const isOpen = keys.isEmpty || PUBLIC_PATHS.has(path) || path.startsWith("/admin/") || checksOwnKeys(path);
    if (!isOpen) {
      const client = keys.clientOf(request.headers);
      if (client === undefined) throw clientKeyRefused(request.headers);
      request.clientName = client;
    }
    done();
  });
}

function registerErrorHandlers(app: FastifyInstance, runtime: GatewayRuntime): void {
  app.setErrorHandler(errorHandler(runtime.snapshot.config.server.bodyLimitBytes, runtime));
  const loggedUnknownRoutes = new Set<string>();
  app.setNotFoundHandler((request, reply) => {
    const route = `${request.method} ${(request.url.split("?")[0] ?? "").slice(0, 200)}`;
    // Once per route: a client calling a path the gateway does not serve is worth one line, a scanner is not a flood.
    if (!loggedUnknownRoutes.has(route) && loggedUnknownRoutes.size < MAX_LOGGED_UNKNOWN_ROUTES) {
      loggedUnknownRoutes.add(route);
      request.log.warn({ route }, `unknown route ${route} (answered 404; logged once per route)`);
    }
    sendError(reply, new RouteNotFoundError(`Unknown route: ${route}`));
  });
}

function registerResponseHooks(app: FastifyInstance, runtime: GatewayRuntime): void {
  // Safety net: every body the gateway writes of its own (/health, /stats, route explanations, /v1/models, the request
  // log, the dashboard's data, /metrics, /admin/*) and every error body, through the one redaction every upstream
  // text got where it entered (GatewayRuntime.secrets): what reached the books otherwise (a state file an earlier
  // version wrote, a Redis another replica shares) or a route added later is shown redacted too. Not a success of a
  // front door: model output passes as generated (a model may write a key-shaped string); streams write themselves.
  // Safety net too: no header value set through Fastify can make the response throw (`ERR_INVALID_CHAR` on a model
  // id from discovery, a client's name echoed back). Streams write their headers themselves and must call
  // toHeaderValue where they set them. One hook for both: a hook is a step of Fastify's runner on every answer.
  app.addHook("onSend", (request, reply, payload, done) => {
    const headers = reply.getHeaders();
    for (const name in headers) {
      const value = headers[name];
      if (typeof value === "string" && !isPlainHeaderValue(value)) reply.header(name, toHeaderValue(value));
    }
    const isShown =
      typeof payload === "string" &&
      (reply.statusCode >= 400 || !isModelOutputRoute(request.routeOptions.url ?? "")) &&
      /^(application\/json|text\/plain)/.test(String(headers["content-type"] ?? ""));
    done(null, isShown ? runtime.secrets.redact(payload) : payload);
  });
  // The level is fixed for the process (a reload does not change it): without debug lines, no hook at all.
  if (app.log.level !== "debug" && app.log.level !== "trace") return;
  app.addHook("onResponse", (request, reply, done) => {
    if (reply.statusCode < 400) {
      request.log.debug(
        { url: redactedRequestTarget(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        "request done",
      );
    }
    done();
  });
}

const PLAIN_REQUEST_ID = /^[\x21-\x7e]+$/;

/** Random bytes drawn for generated request ids at once (8 per id): one system call per 512 ids. */
const RANDOM_POOL_BYTES = 4_096;
const RANDOM_BYTES_PER_ID = 8;

/**
 * The client's `x-request-id` when it is a short plain token (it goes into logs and a response header),
 * else a generated one. A generated id ends in 64 random bits: with only a counter, a client that saw its own id
 * knew the ids other clients' requests got next. Ids are not unique (a client's own choice may be another's): a
 * named client's lookup by id asks the stores for its own record (observability-routes.ts).
 */
function requestIdGenerator(): (request: { headers: Record<string, string | string[] | undefined> }) => string {
  let counter = 0;
  const prefix = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
  const pool = Buffer.alloc(RANDOM_POOL_BYTES);
  let offset = RANDOM_POOL_BYTES;
  return (request) => {
    const sent = request.headers["x-request-id"];
    if (typeof sent === "string" && sent.length <= MAX_CLIENT_REQUEST_ID_CHARS && PLAIN_REQUEST_ID.test(sent))
      return sent;
    if (offset === RANDOM_POOL_BYTES) {
      randomFillSync(pool);
      offset = 0;
    }
    const random = pool.toString("base64url", offset, offset + RANDOM_BYTES_PER_ID);
    offset += RANDOM_BYTES_PER_ID;
    return `req-${prefix}-${(++counter).toString(36)}-${random}`;
  };
}
