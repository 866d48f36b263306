// The HTTP server: Fastify lives only in this folder. Routes, auth, body limits, error rendering.
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { AuthenticationError, RouteNotFoundError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import { CHAT_ENDPOINT, COMPLETIONS_ENDPOINT, EMBEDDINGS_ENDPOINT, type EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { registerAdminRoutes } from "./admin-routes.ts";
import { hasClientKey, KeyRing } from "./auth.ts";
import { registerCors } from "./cors.ts";
import { errorHandler, sendError } from "./error-handler.ts";
import { forwardingHandler } from "./forwarding-route.ts";
import { registerInfoRoutes } from "./info-routes.ts";
import { registerProtocolRoutes } from "./protocol-routes.ts";

/** Routes that answer without a client key (load-balancer liveness). */
const PUBLIC_PATHS = new Set(["/ok"]);

const ENDPOINTS: readonly { spec: EndpointSpec; paths: readonly string[] }[] = [
  { spec: CHAT_ENDPOINT, paths: ["/v1/chat/completions", "/chat/completions"] },
  { spec: COMPLETIONS_ENDPOINT, paths: ["/v1/completions"] },
  { spec: EMBEDDINGS_ENDPOINT, paths: ["/v1/embeddings"] },
];

export interface ServerOptions {
  /** pino logger options or false; tests pass false or a level. */
  readonly logger?: boolean | { level: string };
}

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
            // Client keys must never reach a log line.
            redact: ["req.headers.authorization", 'req.headers["x-api-key"]', 'req.headers["api-key"]'],
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

  // Before the key check: browsers send preflights without credentials.
  registerCors(app, settings.corsOrigins);
  const keys = new KeyRing(settings.apiKeys);
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    if (runtime.isShuttingDown) {
      reply.header("connection", "close");
      throw new ServiceUnavailableError("The gateway is shutting down; retry the request (on another instance).");
    }
    // Admin routes check the admin keys themselves.
    if (keys.isEmpty || PUBLIC_PATHS.has(request.url) || request.url.startsWith("/admin/")) return;
    if (!keys.acceptsClient(request.headers)) {
      throw new AuthenticationError(
        hasClientKey(request.headers)
          ? "Invalid API key."
          : "Missing API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>`).",
      );
    }
  });

  app.setErrorHandler(errorHandler(settings.bodyLimitBytes));
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new RouteNotFoundError(`Unknown route: ${request.method} ${request.url.split("?")[0]}`));
  });

  for (const endpoint of ENDPOINTS) {
    const handler = forwardingHandler(endpoint.spec, runtime);
    for (const path of endpoint.paths) app.post(path, handler);
  }
  registerProtocolRoutes(app, runtime);
  registerInfoRoutes(app, runtime);
  registerAdminRoutes(app, runtime, new KeyRing(settings.adminKeys));

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
