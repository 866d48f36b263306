// The HTTP server: Fastify lives only in this folder. Routes, auth, body limits, error rendering.
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { AuthenticationError, RouteNotFoundError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import type { Observers } from "../observability/observers.ts";
import { CHAT_ENDPOINT, COMPLETIONS_ENDPOINT, EMBEDDINGS_ENDPOINT, type EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { registerAdminRoutes } from "./admin-routes.ts";
import { KeyRing } from "./auth.ts";
import { errorHandler, sendError } from "./error-handler.ts";
import { forwardingHandler } from "./forwarding-route.ts";
import { registerInfoRoutes } from "./info-routes.ts";
import { isDashboardPath, registerObservabilityRoutes } from "./observability-routes.ts";

/** Routes that answer without a client key (load-balancer liveness). */
const PUBLIC_PATHS = new Set(["/ok"]);

const ENDPOINTS: readonly { spec: EndpointSpec; paths: readonly string[] }[] = [
  { spec: CHAT_ENDPOINT, paths: ["/v1/chat/completions", "/chat/completions"] },
  { spec: COMPLETIONS_ENDPOINT, paths: ["/v1/completions"] },
  { spec: EMBEDDINGS_ENDPOINT, paths: ["/v1/embeddings"] },
];

export interface ServerOptions {
  /** pino logger options or false; tests pass false or a level. */
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** Metrics, request log and dashboard data; without it /metrics, /v1/gateway/requests and /dashboard are 404. */
  readonly observers?: Observers;
}

/** Distinct unknown routes logged (once each); past this, no more are remembered or logged. */
const MAX_LOGGED_UNKNOWN_ROUTES = 1_000;

/** The server as the CLI sees it; only src/server names the HTTP framework. */
export type GatewayServer = FastifyInstance;

export function buildServer(runtime: GatewayRuntime, options: ServerOptions = {}): FastifyInstance {
  const { server: settings } = runtime.snapshot.config;
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: typeof options.logger === "object" ? options.logger.level : settings.logLevel,
            ...(typeof options.logger === "object" && options.logger.stream !== undefined
              ? { stream: options.logger.stream }
              : {}),
            // Client keys must never reach a log line.
            redact: ["req.headers.authorization", 'req.headers["x-api-key"]'],
          },
    bodyLimit: settings.bodyLimitBytes,
    // One `routed` line per request is written by us, with the routing decision; Fastify's own are off.
    logController: new LogController({ disableRequestLogging: true }),
    // Our own onRequest hook answers 503 in the OpenAI error shape while shutting down.
    return503OnClosing: false,
    forceCloseConnections: "idle",
    requestIdHeader: "x-request-id",
    genReqId: requestIdGenerator(),
  });

  const keys = new KeyRing(settings.apiKeys);
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    if (runtime.isShuttingDown) {
      reply.header("connection", "close");
      throw new ServiceUnavailableError("The gateway is shutting down; retry the request (on another instance).");
    }
    const path = request.url.split("?")[0] ?? "";
    // Admin and dashboard routes check their keys themselves.
    if (keys.isEmpty || PUBLIC_PATHS.has(path) || path.startsWith("/admin/") || isDashboardPath(path)) return;
    if (!keys.accepts(request.headers.authorization)) {
      throw new AuthenticationError(
        request.headers.authorization === undefined
          ? "Missing API key: send `Authorization: Bearer <key>`."
          : "Invalid API key.",
      );
    }
  });

  app.setErrorHandler(errorHandler(settings.bodyLimitBytes));
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

  for (const endpoint of ENDPOINTS) {
    const handler = forwardingHandler(endpoint.spec, runtime);
    for (const path of endpoint.paths) app.post(path, handler);
  }
  registerInfoRoutes(app, runtime);
  const adminKeys = new KeyRing(settings.adminKeys);
  registerAdminRoutes(app, runtime, adminKeys);
  if (options.observers !== undefined) {
    registerObservabilityRoutes(app, options.observers, { client: keys, admin: adminKeys });
  }

  app.addHook("onResponse", async (request, reply) => {
    if (reply.statusCode >= 400) return;
    request.log.debug(
      { url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      "request done",
    );
  });
  return app;
}

function requestIdGenerator(): () => string {
  let counter = 0;
  const prefix = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
  return () => `req-${prefix}-${(++counter).toString(36)}`;
}
