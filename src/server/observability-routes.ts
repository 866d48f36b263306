// What the gateway shows about itself: GET /metrics (Prometheus), the request log (GET /v1/gateway/requests and
// /v1/gateway/requests/{id}), and the live dashboard (/dashboard, its data under /dashboard/api/, /ui redirects).
// The request log sits behind the client keys like /stats (the global onRequest hook). /metrics checks its keys
// here: an unnamed client key or an admin key, never a named client's (docs/metrics.md). The dashboard page holds
// no data and loads without a key; its data routes check the admin keys when any is set, else the client keys
// (docs/observability.md "Dashboard").
import { hash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  AuthenticationError,
  PermissionDeniedError,
  RequestNotFoundError,
  RouteNotFoundError,
  ServiceUnavailableError,
} from "../errors/gateway-error.ts";
import type { Observers } from "../observability/observers.ts";
import { parseRequestLogQuery } from "../observability/request-log-query.ts";
import type { RequestRecord } from "../observability/request-record.ts";
import { sourcePath } from "../source-paths.ts";
import { clientKeyRefused, type KeyRing } from "./auth.ts";

const DASHBOARD_HTML = readFileSync(sourcePath("server/dashboard.html"), "utf8");

/**
 * The dashboard shows text that clients (model names asked for) and upstreams (model ids from discovery, error
 * messages in attempt reasons) choose, so its headers assume a rendering mistake one day: only the page's own
 * script runs (its SHA-256, not `'unsafe-inline'`: an injected `onerror=` or `<script>` would not run), it cannot be
 * framed by another site (clickjacking), and it sends no Referer. The page writes text only (`textContent`,
 * `append(string)`), never markup, so it needs no Trusted Types policy. Styles stay `'unsafe-inline'`: the page sets
 * `style` attributes, and CSS cannot run script.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "content-security-policy": [
    "default-src 'none'",
    `script-src '${inlineScriptHash(DASHBOARD_HTML)}'`,
    "style-src 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    // Browsers that have Trusted Types (Chromium) refuse a string assigned to innerHTML and the like at all.
    "require-trusted-types-for 'script'",
  ].join("; "),
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

/** `sha256-<base64>` of the page's one inline script, as CSP matches it (the text between the tags, as served). */
function inlineScriptHash(html: string): string {
  const start = html.indexOf("<script>");
  const end = html.indexOf("</script>", start);
  if (start < 0 || end < 0 || html.indexOf("<script", start + 1) !== -1) {
    // More scripts, or none: the policy would block the page. A build or edit mistake, caught at start.
    throw new Error("server/dashboard.html must hold exactly one inline <script> (its hash is the page's CSP)");
  }
  return `sha256-${hash("sha256", html.slice(start + "<script>".length, end), "base64")}`;
}

/**
 * Paths the global client-key hook leaves alone: the dashboard page (no data) and its data routes, and /metrics
 * (each checked here).
 */
export function checksOwnKeys(path: string): boolean {
  return path === "/dashboard" || path.startsWith("/dashboard/") || path === "/ui" || path === "/metrics";
}

export function registerObservabilityRoutes(
  app: FastifyInstance,
  observers: Observers,
  keys: { readonly client: () => KeyRing; readonly admin: () => KeyRing },
): void {
  /**
   * The scrape's key. The `llm_gateway_client_*` series and the `client:NAME` budget scopes name every client and
   * its traffic, which a named client must not learn of another (as it lists only its own requests): a named key is
   * refused. An unnamed client key reads it as before, and so does an admin key, so that a gateway whose client keys
   * are all named can still be scraped. Without client keys /metrics is open, as every other route is.
   */
  const requireMetricsKey = (request: FastifyRequest): void => {
    const client = keys.client();
    if (client.isEmpty || keys.admin().accepts(request.headers.authorization)) return;
    const name = client.clientOf(request.headers);
    if (name === null) return;
    if (name === undefined) throw clientKeyRefused(request.headers);
    throw new PermissionDeniedError(
      "/metrics names every client (llm_gateway_client_*): a named client key may not read it. Scrape with an unnamed client key or an admin key.",
    );
  };

  app.get("/metrics", async (request, reply) => {
    requireMetricsKey(request);
    if (observers.metrics === undefined) {
      throw new RouteNotFoundError("Metrics are disabled (metrics.enabled: false).");
    }
    const { contentType, body } = await observers.metrics.render();
    reply.type(contentType);
    return body;
  });

  app.get("/v1/gateway/requests", async (request) => {
    const asked = parseRequestLogQuery(request.query as Record<string, unknown>);
    const log = observers.requestLog;
    if (log === undefined) throw new RouteNotFoundError("The request log is disabled (request_log.enabled: false).");
    // A named client sees its own requests only (other clients' may hold their messages, `log.content`).
    const own = request.clientName;
    if (own !== null && asked.client !== undefined && asked.client !== own) {
      throw new PermissionDeniedError(`A named client key lists its own requests only (client=${own}).`, {
        param: "client",
      });
    }
    const filter = own === null ? asked : { ...asked, client: own };
    return { object: "list", data: await unlessStoreDown(log.query(filter)) };
  });

  app.get("/v1/gateway/requests/:id", async (request) => {
    const { id } = request.params as { id: string };
    const own = request.clientName ?? undefined;
    // The request log's answer (retention applies); the dashboard's memory only when the log is off. A named
    // client's lookup asks for its own record: another client's request with the same id must not hide it.
    const record =
      observers.requestLog === undefined
        ? observers.recentRecord(id, own)
        : await unlessStoreDown(observers.requestLog.get(id, own));
    // Another client's request is not found for a named client (its existence is not theirs to learn).
    if (record === undefined || !isVisibleTo(record, request.clientName)) return notFound(id);
    return record;
  });

  app.get("/ui", async (_request, reply) => reply.redirect("/dashboard", 302));
  app.get("/dashboard", async (_request, reply) => {
    reply.type("text/html; charset=utf-8").headers(DASHBOARD_HEADERS);
    return DASHBOARD_HTML;
  });

  /**
   * The dashboard's key: an admin key when any is set (null: sees everything), else a client key, whose client's
   * name (a named key) limits the feed and the routes shown to its own requests, as the request log does.
   */
  const requireDashboardKey = (request: FastifyRequest): string | null => {
    const admin = keys.admin();
    if (!admin.isEmpty) {
      if (admin.accepts(request.headers.authorization)) return null;
    } else {
      const client = keys.client();
      if (client.isEmpty) return null;
      // Any of the client key headers, as every other route takes them (a script may send `x-api-key`).
      const name = client.clientOf(request.headers);
      if (name !== undefined) return name;
    }
    throw new AuthenticationError(
      admin.isEmpty
        ? "The dashboard needs a gateway key: open /dashboard#key=<one of server.api_keys>."
        : "The dashboard needs an admin key: open /dashboard#key=<one of server.admin_keys>.",
    );
  };

  app.get("/dashboard/api/state", async (request) => {
    const viewer = requireDashboardKey(request);
    const { live, recent } = observers;
    return {
      now_ms: live.nowMs(),
      queue_depth: live.queueDepth(),
      deployments: live.deployments(),
      // Clients with budgets: a named client's key sees its own only.
      clients: viewer === null ? live.clients() : live.clients().filter((client) => client.name === viewer),
      // A named client's key: its own latest requests and its own charts (recent-activity.ts).
      feed: recent.feed(viewer ?? undefined),
      series: recent.series(viewer ?? undefined),
      request_log: observers.requestLog?.kind ?? null,
    };
  });

  app.get("/dashboard/api/requests/:id", async (request) => {
    const viewer = requireDashboardKey(request);
    const id = (request.params as { id: string }).id;
    const record = await findRecord(observers, id, viewer ?? undefined);
    return isVisibleTo(record, viewer) ? record : notFound(id);
  });
}

/** Whether a key's client may see a request's record: every one for an unnamed key, its own for a named one. */
function isVisibleTo(record: RequestRecord, client: string | null): boolean {
  return client === null || record.client === client;
}

/** The dashboard: its own memory of recent requests first, then the request log; `client`: a named viewer's own. */
async function findRecord(observers: Observers, id: string, client: string | undefined): Promise<RequestRecord> {
  return observers.recentRecord(id, client) ?? (await observers.requestLog?.get(id, client)) ?? notFound(id);
}

function notFound(id: string): never {
  throw new RequestNotFoundError(`No request with id ${JSON.stringify(id.slice(0, 100))} in the request log.`);
}

/**
 * The request log's store failing (Redis unreachable or too slow) is the store being unavailable, not a bug of the
 * gateway: a 503 saying so, as kept responses answer, rather than an opaque 500 logged as an internal error.
 */
async function unlessStoreDown<T>(reading: Promise<T>): Promise<T> {
  try {
    return await reading;
  } catch {
    // Without the store's own words: a connection error may name the Redis URL, credentials included.
    throw new ServiceUnavailableError("The request log's store (Redis) is unavailable; try again shortly.", {
      retryAfterMs: 1_000,
    });
  }
}
