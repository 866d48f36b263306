// Read-only routes: model list, health, stats.

import type { FastifyInstance, FastifyRequest } from "fastify";
import { isoTime } from "../clock.ts";
import { MAX_MODEL_NAME_CHARS } from "../config/request-bounds.ts";
import type { ModelKind } from "../config/types.ts";
import { InvalidRequestError, ModelNotFoundError } from "../errors/gateway-error.ts";
import { cutText, shownReason } from "../errors/shown-reason.ts";
import { ALL_FRONT_DOORS } from "../front-doors.ts";
import { type BudgetScope, POOL_SCOPE_PREFIX } from "../limits/budget-types.ts";
import { LEARNED_CONTEXT_TRUST_MS, learnedWindowOf } from "../limits/learned-context.ts";
import { type FeatureRefusal, isGatewayLesson } from "../limits/refused-features.ts";
import { unservedEndpointsKey } from "../limits/unserved-endpoints.ts";
import { clientRules, hasClientRules } from "../pipeline/client-rules.ts";
import { ENDPOINTS, explainedPathOf, hasContextFit, SERVED_KINDS } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { anthropicModelPage, toAnthropicModel } from "../protocols/messages/model-list.ts";
import type { Deployment } from "../providers/catalog.ts";
import { explainRoute } from "../router/explain-route.ts";
import { PRIORITY_AUTO } from "../router/plan-route.ts";
import { explainedNeeds, explainedParameters } from "../router/request-features.ts";
import { budgetWindows, deploymentState, describeHealth, type KeptResponsesStatus } from "./health-state.ts";
import { MODELS_PATHS, speaksAnthropic } from "./protocol-paths.ts";

export { GATEWAY_VERSION } from "./gateway-version.ts";

/**
 * The routes a model can be used on, as the model list shows them, by kind. Other audio (music, audio chat), video and
 * OCR models are known (discovery finds them, a config may name them) but no route serves them: listed with no
 * endpoint rather than with the chat routes, which would refuse them.
 */
const ENDPOINTS_OF_KIND: ReadonlyMap<string, readonly string[]> = routesByKind();

function routesByKind(): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  for (const door of ALL_FRONT_DOORS) routes.set(door.kind, [...(routes.get(door.kind) ?? []), door.path]);
  return routes;
}

export function registerInfoRoutes(
  app: FastifyInstance,
  runtime: GatewayRuntime,
  keptResponsesStatus?: () => KeptResponsesStatus,
): void {
  app.get("/ok", async () => ({ status: "ok" }));
  // The base URL itself (and its HEAD, which Fastify adds): what a client checking it before its first request gets.
  app.get("/", async () => ({ status: "ok" }));

  /**
   * The models the request's client may use: every one, unless its key lists `models` or states its own `paid`
   * (server.api_keys): then only the names that reach a deployment its rules allow.
   */
  const entry = (id: string, ownedBy: string, kind: string) => ({
    id,
    object: "model",
    created: Math.floor(runtime.startedAtMs / 1000),
    owned_by: ownedBy,
    kind,
    endpoints: ENDPOINTS_OF_KIND.get(kind) ?? [],
  });
  const modelEntries = (request: FastifyRequest) => {
    const { catalog, config } = runtime.snapshot;
    const client = request.clientName;
    const hasRules = hasClientRules(config.server, client);
    const data = catalog
      .publicNames()
      .filter((model) => !hasRules || servedKind(runtime, model.name, client) !== undefined)
      .map((model) => entry(model.name, model.providers.join(","), model.kind));
    // Meta models (and `priority-auto`) only when a member is served: listing a name that answers 404 misleads.
    for (const name of [...Object.keys(config.metaModels), PRIORITY_AUTO]) {
      const kind = servedKind(runtime, name, client);
      if (kind !== undefined) data.push(entry(name, "llm-gateway", kind));
    }
    return data;
  };
  const listModels = async (request: FastifyRequest) =>
    speaksAnthropic(request.url, request.headers)
      ? anthropicModelPage(modelEntries(request), singleValues(request.query))
      : { object: "list", data: modelEntries(request) };
  for (const path of MODELS_PATHS) app.get(path, listModels);
  // Model ids may contain `/` (`meta-llama/Llama-3.3-70B-Instruct`): the id is the rest of the path. The router
  // has already percent-decoded it (`%2F` included; a malformed escape is its 400 `invalid_request`): decoding
  // again would turn the id `m%20x` into `m x` and throw on a literal `%` (`50%25off`).
  const retrieveModel = async (request: FastifyRequest) => {
    const id = (request.params as Record<string, string | undefined>)["*"] ?? "";
    const found = modelEntries(request).find((model) => model.id === id) ?? resolvedEntry(id, request.clientName);
    if (found === undefined) {
      // No model name is longer than MAX_MODEL_NAME_CHARS: a longer path is not quoted whole (kilobytes of it).
      const shown = id.length > MAX_MODEL_NAME_CHARS ? cutText(id, 65) : id;
      throw new ModelNotFoundError(
        `The model \`${shown}\` does not exist on this gateway; GET /v1/models lists them.`,
        {
          param: "model",
        },
      );
    }
    return speaksAnthropic(request.url, request.headers) ? toAnthropicModel(found) : found;
  };
  for (const path of MODELS_PATHS) app.get(`${path}/*`, retrieveModel);
  /**
   * A name the list does not show but a request accepts (`provider/name`, an upstream id, a normalised spelling:
   * routing.md "Resolve names"), as its providers serve it to this client. The list shows each model once by its
   * public name; a client that checks its configured model before using it (`models.retrieve`) got a 404 for a name
   * its chat requests were served under. One name only: a comma list is a request's, not a model's.
   */
  const resolvedEntry = (id: string, client: string | null) => {
    if (id === "" || id.includes(",")) return undefined;
    const kind = servedKind(runtime, id, client);
    if (kind === undefined) return undefined;
    const plan = runtime.plan({ model: id, fallbackModels: [], kind, client });
    const reached = [...plan.candidates, ...(plan.waitFor === undefined ? [] : [plan.waitFor]), ...plan.skipped];
    return entry(id, [...new Set(reached.map((route) => route.deployment.provider.settings.name))].join(","), kind);
  };

  app.get("/health", async (_request, reply) => {
    const health = describeHealth(runtime, keptResponsesStatus?.());
    reply.code(health.status === "down" ? 503 : 200);
    return health;
  });

  app.get("/stats", async (request) => {
    const stats = describeStats(runtime, request.clientName);
    // Shared through Redis, the fleet's figures at most a second old (one Redis read a second however often polled).
    return stats.cache === undefined
      ? stats
      : { ...stats, cache: await runtime.answers.currentSummary(runtime.clock.now()) };
  });

  app.get("/v1/gateway/route", async (request) => {
    const query = singleValues(request.query);
    const model = query.model;
    if (model === undefined || model === "") {
      throw new InvalidRequestError("Query parameter `model` is required, e.g. /v1/gateway/route?model=best", {
        param: "model",
        code: "invalid_value",
      });
    }
    const door =
      query.endpoint === undefined ? undefined : ENDPOINTS.find((endpoint) => endpoint.name === query.endpoint);
    if (query.endpoint !== undefined && door === undefined) {
      throw new InvalidRequestError(
        `Query parameter \`endpoint\` names no endpoint; one of: ${ENDPOINTS.map((endpoint) => endpoint.name).join(", ")}`,
        { param: "endpoint", code: "invalid_value" },
      );
    }
    // `endpoint=images` explains that door's route (its kind, its upstream path); else `kind=`'s first door's.
    const kind = door?.kind ?? (isServedKind(query.kind) ? query.kind : "chat");
    const endpointPath = door?.upstreamPath ?? explainedPathOf(kind);
    const promptTokens = query.tokens === undefined ? undefined : Number(query.tokens);
    if (promptTokens !== undefined && !(Number.isInteger(promptTokens) && promptTokens >= 0)) {
      throw new InvalidRequestError("Query parameter `tokens` must be a whole number of tokens, e.g. tokens=20000", {
        param: "tokens",
        code: "invalid_value",
      });
    }
    const maxOutputTokens = query.max_tokens === undefined ? undefined : Number(query.max_tokens);
    if (maxOutputTokens !== undefined && !(Number.isInteger(maxOutputTokens) && maxOutputTokens >= 0)) {
      throw new InvalidRequestError(
        "Query parameter `max_tokens` must be a whole number of tokens, e.g. max_tokens=1024",
        {
          param: "max_tokens",
          code: "invalid_value",
        },
      );
    }
    const audioSeconds = query.audio_seconds === undefined ? undefined : Number(query.audio_seconds);
    if (audioSeconds !== undefined && !(Number.isFinite(audioSeconds) && audioSeconds >= 0)) {
      throw new InvalidRequestError(
        "Query parameter `audio_seconds` must be a number of seconds of audio, e.g. audio_seconds=600",
        { param: "audio_seconds", code: "invalid_value" },
      );
    }
    // The route the asking client's requests would take: its own `paid` and `models` apply (client-rules.ts).
    return explainRoute(runtime, model, {
      kind,
      ...(endpointPath === undefined ? {} : { endpointPath }),
      ...clientRules(runtime.snapshot.config.server, request.clientName),
      ...(promptTokens === undefined ? {} : { promptTokens }),
      // A kind planned without a context fit (a rerank, endpoints.ts hasContextFit): `tokens` counts against its
      // token budgets but fits in any window, as its requests are planned.
      ...(hasContextFit(kind) ? {} : { contextTokens: 0 }),
      ...(maxOutputTokens === undefined ? {} : { maxOutputTokens }),
      // `audio_seconds=600`: an upload that long, checked against the candidates' `ash`/`asd` budgets.
      ...(audioSeconds === undefined ? {} : { audioSeconds }),
      ...(door?.isLegacyCompletion === true ? { isLegacyCompletion: true } : {}),
      ...explainedNeeds((name) => isFlagAsked(query, name)),
      // `parameters=seed,stop:6`: body keys the request would carry (a candidate that refused one is last), an array's
      // with its number of entries (a lesson about a size holds for requests at least that large).
      ...(query.parameters === undefined ? {} : explainedParameters(query.parameters)),
    });
  });
}

/**
 * The query string as one string per name: a repeated name (`?model=a&model=b`) is a 400, not an array that
 * code expecting a string trips over.
 */
function singleValues(query: unknown): Readonly<Record<string, string | undefined>> {
  const values: Record<string, string | undefined> = {};
  if (query === null || typeof query !== "object") return values;
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === "string") values[name] = value;
    else if (Array.isArray(value)) {
      throw new InvalidRequestError(`Query parameter \`${name}\` is given more than once.`, {
        param: name,
        code: "invalid_value",
      });
    }
  }
  return values;
}

/**
 * A capability query (`tools=true`, `vision=true`, `json_schema=true`): `true` asks for it, `false` or none does not,
 * anything else is a 400 naming it. Until 2026-12-07 `tools=yes` or `tools=1` silently asked for nothing, so the
 * explanation showed a route the request with tools would not take.
 */
function isFlagAsked(query: Readonly<Record<string, string | undefined>>, name: string): boolean {
  const value = query[name];
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw new InvalidRequestError(`Query parameter \`${name}\` takes true or false, e.g. ${name}=true`, {
    param: name,
    code: "invalid_value",
  });
}

/** A route explanation's `kind=`: one the endpoints serve (anything else explains a chat request). */
function isServedKind(kind: string | undefined): kind is ModelKind {
  return (SERVED_KINDS as readonly (string | undefined)[]).includes(kind);
}

/**
 * The kind of request `name` would find a deployment for (cooling or over budget counts: it comes back), or
 * undefined when it serves none: a meta model of embedding models only is an embedding model.
 */
function servedKind(runtime: GatewayRuntime, name: string, client: string | null): ModelKind | undefined {
  return SERVED_KINDS.find((kind) => {
    try {
      runtime.plan({ model: name, fallbackModels: [], kind, client });
      return true;
    } catch {
      return false;
    }
  });
}

function scoreTerms(runtime: GatewayRuntime, deployment: Deployment) {
  const breakdown = runtime.explainScore(deployment);
  if (breakdown === undefined) return null;
  return {
    base_priority: breakdown.basePriority,
    priority: breakdown.terms.priority,
    leaderboard: breakdown.terms.leaderboard.weighted,
    params: breakdown.terms.params.weighted,
    context: breakdown.terms.context.weighted,
    adjustment: breakdown.terms.adjustment.weighted,
    health_penalty: breakdown.terms.healthPenalty.weighted,
  };
}

/**
 * Per client with budgets (`server.api_keys` entries `{ key, name, limits }`): its windows and its slots. A named
 * client's key (`viewer`) sees its own entry only: the others' names and traffic are not its to learn (as with
 * their request records); unnamed keys see every client.
 */
function clientBudgets(runtime: GatewayRuntime, nowMs: number, viewer: string | null) {
  const clients: Record<string, { budgets: ReturnType<typeof budgetWindows>; concurrency: object }> = {};
  for (const [name, scope] of runtime.snapshot.clientScopes) {
    if (viewer !== null && name !== viewer) continue;
    clients[name] = { budgets: budgetWindows(runtime, scope, nowMs), concurrency: scopeConcurrency(runtime, scope) };
  }
  return clients;
}

/** `viewer`: the name of the asking client's key (null: an unnamed key, or a gateway without keys). */
export function describeStats(runtime: GatewayRuntime, viewer: string | null = null) {
  const { catalog } = runtime.snapshot;
  const nowMs = runtime.clock.now();
  const deployments = catalog.deployments.map((deployment) => {
    const stats = runtime.stats.get(deployment.key);
    const calls = stats?.successes ?? 0;
    return {
      provider: deployment.provider.settings.name,
      model: deployment.model.publicName,
      upstream_id: deployment.model.id,
      kind: deployment.kind,
      score: runtime.scoreOf(deployment),
      score_terms: scoreTerms(runtime, deployment),
      ...deploymentState(runtime, deployment, nowMs),
      concurrency: deploymentConcurrency(runtime, deployment),
      successes: calls,
      failures: stats?.failures ?? 0,
      tokens_in: stats?.tokensIn ?? 0,
      tokens_out: stats?.tokensOut ?? 0,
      prompt_token_factor: runtime.promptCalibration.factorOf(deployment.key),
      // What it refused as not supported: ranked last for requests carrying it until `until` (routing.md).
      refused_features: featureLessonsOf(runtime, deployment, nowMs).map((refusal) => ({
        feature: refusal.feature,
        reason: shownReason(refusal.reason),
        until: isoTime(refusal.untilMs),
        // A refusal for its size: only requests with at least this many entries of it are ranked last.
        ...(refusal.minEntries === undefined ? {} : { min_entries: refusal.minEntries }),
      })),
      // A context window its refusal stated, smaller than the listed one (routing.md "Context fit"): in tokens.
      learned_context: learnedContextOf(runtime, deployment, nowMs),
      // The endpoints its provider has no route for, learned from a 405 or a "no such path" 404 (routing.md).
      unserved_endpoints: runtime.refusedFeatures
        .refusalsOf(unservedEndpointsKey(deployment.provider.settings.name), nowMs)
        .map((lesson) => ({
          path: lesson.feature,
          reason: shownReason(lesson.reason),
          until: isoTime(lesson.untilMs),
        })),
      latency_ms:
        calls === 0 || stats === undefined
          ? null
          : { min: stats.latencyMinMs, mean: Math.round(stats.latencyTotalMs / calls), max: stats.latencyMaxMs },
    };
  });
  return {
    object: "stats",
    queued_requests: runtime.queuedRequests,
    providers: providerSlots(runtime),
    clients: clientBudgets(runtime, nowMs, viewer),
    ...(runtime.snapshot.config.cache.enabled ? { cache: runtime.answers.summary } : {}),
    deployments,
  };
}

/**
 * A scope's requests and open streams holding a concurrency slot now, and its limit (null: unlimited): the configured
 * `concurrency`, or the one a concurrency refusal taught when lower (with `learned_from`).
 */
function scopeConcurrency(runtime: GatewayRuntime, scope: BudgetScope) {
  const in_flight = runtime.budgets.inFlight(scope.id);
  const learned = runtime.budgets.learnedConcurrency(scope.id, runtime.clock.now());
  if (learned === undefined || (scope.concurrency !== undefined && scope.concurrency <= learned.limit)) {
    return { in_flight, limit: scope.concurrency ?? null };
  }
  return { in_flight, limit: learned.limit, learned_from: learned.evidence };
}

/** The deployment's own `limits.concurrency` slots (its pool's are under `providers[]`). */
function deploymentConcurrency(runtime: GatewayRuntime, deployment: Deployment) {
  const own = runtime.scopesOf(deployment).find((scope) => !scope.id.startsWith(POOL_SCOPE_PREFIX));
  return own === undefined ? null : scopeConcurrency(runtime, own);
}

/**
 * Per provider: its `max_in_flight` gate (upstream requests in flight now and those waiting for a slot) and, when
 * it has a pool (provider-level `limits`, or counted per account), the pool's concurrency slots.
 */
function providerSlots(runtime: GatewayRuntime) {
  const { catalog } = runtime.snapshot;
  return catalog.providers.map((provider) => {
    const name = provider.settings.name;
    const first = (catalog.byProvider(name) ?? [])[0];
    const pool =
      first === undefined ? undefined : runtime.scopesOf(first).find((scope) => scope.id.startsWith(POOL_SCOPE_PREFIX));
    return {
      name,
      in_flight: runtime.inFlight.inFlight(name),
      waiting_for_slot: runtime.inFlight.waiting(name),
      max_in_flight: provider.settings.maxInFlight,
      pool_concurrency: pool === undefined ? null : scopeConcurrency(runtime, pool),
    };
  });
}

/** The deployment's lessons about request features; the gateway's own (the learned window) are shown apart. */
function featureLessonsOf(runtime: GatewayRuntime, deployment: Deployment, nowMs: number): readonly FeatureRefusal[] {
  return runtime.refusedFeatures
    .refusalsOf(deployment.key, nowMs)
    .filter((refusal) => !isGatewayLesson(refusal.feature));
}

/**
 * The context window a refusal stated, as /stats shows it: its tokens (the lesson keeps the size refused, one more),
 * when it was learned, until when the fit applies it (learned-context.ts LEARNED_CONTEXT_TRUST_MS: then the next longer
 * prompt is sent to try it again) and until when it is kept; null when none is. Before 2026-12-07 it was listed among
 * `refused_features` as `x_gateway_context_window` with `min_entries` one above the window.
 */
function learnedContextOf(runtime: GatewayRuntime, deployment: Deployment, nowMs: number) {
  const learned = learnedWindowOf(runtime.refusedFeatures, deployment.key, nowMs);
  if (learned === undefined) return null;
  return {
    tokens: learned.limitTokens,
    reason: shownReason(learned.reason),
    learned_at: isoTime(learned.atMs),
    applied_until: isoTime(learned.atMs + LEARNED_CONTEXT_TRUST_MS),
    until: isoTime(learned.untilMs),
  };
}
