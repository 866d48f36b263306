// CORS for browser clients: preflights answered before (and without) the client key check, and the CORS headers
// set on the raw Node response, so they also go out with streams written after `reply.hijack()`.
import type { FastifyInstance } from "fastify";

/**
 * Headers a browser may send. Named explicitly: `*` does not cover `Authorization`. Whatever else a preflight
 * asks for (the SDKs' `x-stainless-*` telemetry headers, ...) is allowed too.
 */
const ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "x-api-key",
  "api-key",
  "anthropic-version",
  "anthropic-beta",
  "x-session-id",
  "x-request-id",
  "cache-control",
  "x-gateway-cache-ttl",
  "x-gateway-cache-namespace",
  "x-gateway-partial",
];
const ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS";
const EXPOSED_HEADERS =
  "x-request-id, request-id, x-gateway-provider, x-gateway-model, x-gateway-attempts, x-gateway-cost, x-gateway-cache, x-gateway-chunks, x-gateway-chunk-providers, x-gateway-chunk-models, x-gateway-partial, age, retry-after, retry-after-ms, x-should-retry";
/** Seconds a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_S = 600;

/** Whether `origin` matches one of the configured patterns (exact, `*`, or `scheme://host:*`). */
export function isOriginAllowed(origin: string, patterns: readonly string[]): boolean {
  for (const pattern of patterns) {
    if (pattern === "*" || pattern === origin) return true;
    if (pattern.endsWith(":*")) {
      const base = pattern.slice(0, -2);
      if (origin === base || (origin.startsWith(`${base}:`) && /^\d+$/.test(origin.slice(base.length + 1)))) {
        return true;
      }
    }
  }
  return false;
}

export function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  // Callback style: an async hook costs a promise and a microtask on every request, CORS or not.
  app.addHook("onRequest", (request, reply, done) => {
    const origin = request.headers.origin;
    if (origin === undefined || !isOriginAllowed(origin, origins)) {
      done();
      return;
    }
    const raw = reply.raw;
    raw.setHeader("access-control-allow-origin", origin);
    raw.setHeader("vary", "Origin");
    raw.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
    const requestedMethod = request.headers["access-control-request-method"];
    if (request.method !== "OPTIONS" || requestedMethod === undefined) {
      done();
      return;
    }
    const requested = (request.headers["access-control-request-headers"] ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== "" && /^[a-z0-9-]+$/.test(name));
    raw.setHeader("access-control-allow-headers", [...new Set([...ALLOWED_HEADERS, ...requested])].join(", "));
    raw.setHeader("access-control-allow-methods", ALLOWED_METHODS);
    raw.setHeader("access-control-max-age", String(PREFLIGHT_MAX_AGE_S));
    // The preflight is answered here; `done` is not called once a hook has sent the reply.
    reply.code(204).send();
  });
}
