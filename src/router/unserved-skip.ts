// Leaving out a provider that has no route for the request's endpoint (declared `served_paths`, or learned from a
// 405 or a router's 404: limits/unserved-endpoints.ts). Pure: the plan's context answers what was learned.
import type { Deployment } from "../providers/catalog.ts";
import type { RouteRequest, RouterContext, RouteSkip } from "./route-types.ts";

/**
 * The provider has no route for the request's endpoint: its `served_paths` leave it out (never sent), or it answered
 * it with a 405 or a router's 404 not long ago (learned). Left out like a misfit: no cooldown, nothing to wait for,
 * and none of its other endpoints (its chat) touched.
 */
export function unservedSkip(
  request: RouteRequest,
  deployment: Deployment,
  score: number,
  context: RouterContext,
): RouteSkip | undefined {
  const path = request.endpointPath;
  if (path === undefined) return undefined;
  const settings = deployment.provider.settings;
  if (settings.servedPaths !== undefined && !settings.servedPaths.some((served) => served === path)) {
    return {
      deployment,
      cause: "endpoint",
      score,
      reason: `provider ${settings.name} does not serve ${path} (its served_paths: ${settings.servedPaths.join(", ")})`,
    };
  }
  const lesson = context.unservedEndpoint?.(deployment, path);
  if (lesson === undefined) return undefined;
  return {
    deployment,
    cause: "endpoint",
    score,
    reason: `provider ${settings.name} has no ${path} route (learned until ${new Date(lesson.untilMs).toISOString()}: ${lesson.reason})`,
    untilMs: lesson.untilMs,
  };
}
