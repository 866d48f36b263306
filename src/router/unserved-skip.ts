// Leaving out a provider that has no route for the request's endpoint (declared `served_paths`, or learned from a
// 405 or a router's 404: limits/unserved-endpoints.ts). Pure: the plan's context answers what was learned.
import type { Deployment } from "../providers/catalog.ts";
import { moderationApiOf } from "../providers/moderation-api.ts";
import type { RouteRequest, RouterContext, RouteSkip } from "./route-types.ts";

const CHAT_COMPLETIONS_PATH = "/chat/completions";

/**
 * A moderation model the gateway calls in no way (providers/moderation-api.ts), or: the provider has no route for the
 * request's endpoint: its `served_paths` leave it out (never sent), or it answered
 * it with a 405 or a router's 404 not long ago (learned). Left out like a misfit: no cooldown, nothing to wait for,
 * and none of its other endpoints (its chat) touched.
 */
export function unservedSkip(
  request: RouteRequest,
  deployment: Deployment,
  score: number,
  context: RouterContext,
): RouteSkip | undefined {
  const moderationApi = request.kind === "moderation" ? moderationApiOf(deployment.model) : undefined;
  if (request.kind === "moderation" && moderationApi === undefined) {
    return {
      deployment,
      cause: "endpoint",
      score,
      reason: `${deployment.model.id} answers neither OpenAI's /moderations nor as Llama Guard 3 or 4 (a Prompt Guard, safeguard or older Llama Guard model): no moderation request can be sent to it (a model that does answer so says it with \`moderation_api\`)`,
    };
  }
  // Llama Guard is called through chat completions: that is the route its provider must have.
  const path = moderationApi === "llama_guard" ? CHAT_COMPLETIONS_PATH : request.endpointPath;
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
