// The answer cache's steps in the pipeline (answer-cache.ts holds the cache): which requests may be answered from
// it and kept in it, the lookup before planning, and the answer given again.
import type { JsonResult } from "../upstream/forward-types.ts";
import { type CachedAnswer, cacheKey, isCacheableEndpoint } from "./answer-cache.ts";
import { answerText } from "./answer-text.ts";
import type { EndpointSpec } from "./endpoints.ts";
import { type JsonAnswer, type PipelineRequest, publish, type RequestContext } from "./pipeline-types.ts";

/** The request's key in the answer cache, when its answer may be kept (answer-cache.ts). */
export function answerCacheKey(
  snapshot: PipelineRequest["snapshot"],
  endpoint: EndpointSpec,
  body: PipelineRequest["body"],
  context: RequestContext,
  isStream: boolean,
): string | undefined {
  if (!snapshot.config.cache.enabled) return undefined;
  // Streams are relayed as they come, never kept; a native Responses call's answer carries its own ids.
  if (isStream || context.native !== undefined || context.cacheDirective === "no-store") return undefined;
  return isCacheableEndpoint(endpoint.name) ? cacheKey(endpoint.name, context.client, body) : undefined;
}

/**
 * The kept answer to the same request, unless the client asked for a fresh one (`Cache-Control: no-cache`). A
 * promise only when the cache is shared (Redis).
 */
export function lookUpAnswer(request: PipelineRequest): CachedAnswer | undefined | Promise<CachedAnswer | undefined> {
  const { runtime, snapshot, cacheKey: key, context } = request;
  if (key === undefined || context.cacheDirective === "no-cache") return undefined;
  const looked = runtime.answers.get(key, snapshot.config.cache, runtime.clock.now());
  if (!(looked instanceof Promise)) return noted(request, looked);
  return looked.then((cached) => noted(request, cached));
}

function noted(request: PipelineRequest, cached: CachedAnswer | undefined): CachedAnswer | undefined {
  request.record.cache(cached === undefined ? "miss" : "hit");
  return cached;
}

/** A kept answer given again: no plan, no attempt, no upstream tokens (its body still carries the first `usage`). */
export function cachedAnswer(request: PipelineRequest, cached: CachedAnswer): JsonAnswer {
  const ageS = Math.max(0, Math.floor((request.runtime.clock.now() - cached.storedAtMs) / 1000));
  request.record.headersSent();
  if (request.snapshot.config.log.content) {
    const responseText = answerText(cached.bodyText);
    if (responseText !== undefined) request.record.content({ responseText });
  }
  publish(request, cached.status, "success");
  const headers = {
    "x-gateway-provider": cached.provider,
    "x-gateway-model": cached.model,
    "x-gateway-attempts": "0",
    "x-gateway-cost": cached.cost,
    "x-gateway-cache": "hit",
    age: String(ageS),
  };
  return { kind: "json", api: cached.api, status: cached.status, bodyText: cached.bodyText, headers };
}

/** Keeps a successful answer for the same request (`cache.enabled`); the answer says it was a miss when looked up. */
export function keepAnswer(request: PipelineRequest, result: JsonResult, headers: Record<string, string>): void {
  const { runtime, snapshot, cacheKey: key } = request;
  if (key === undefined) return;
  if (request.context.cacheDirective !== "no-cache") headers["x-gateway-cache"] = "miss";
  if (result.status !== 200) return;
  runtime.answers.put(
    key,
    {
      api: result.api,
      bodyText: result.bodyText,
      status: result.status,
      provider: result.deployment.provider.settings.name,
      model: result.deployment.model.id,
      cost: result.deployment.cost,
      storedAtMs: runtime.clock.now(),
    },
    snapshot.config.cache,
    runtime.clock.now(),
  );
}
