// Planning one request: the route now, or after waiting in the queue while nothing is free (routing.queue_timeout_ms).
// Split from handle-request.ts, which calls it once per round of plan, reserve, queue again; the route request is built
// here for both the pipeline and the batch runner's look before it sends a line (batchLineRoute).
import { ClientAbortedError, RateLimitedError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import { outputLimitNameOf } from "../providers/body-rules.ts";
import {
  featureSizesOf,
  JSON_SCHEMA_FEATURE,
  type RequestFeature,
  requestFeatures,
  responseFormatFeature,
  STREAM_FEATURE,
} from "../router/request-features.ts";
import { moderationInputs } from "../upstream/moderation-dialect.ts";
import type { ClientRouteRequest } from "./client-rules.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime, GatewaySnapshot, PlannedRoute } from "./gateway-runtime.ts";
import type { CheckedLine, PipelineRequest, RequestFacts } from "./pipeline-types.ts";
import { parseBody } from "./request-body.ts";

/**
 * Plans the route, queueing while nothing is free (routing.queue_timeout_ms). A batch line never queues: it is answered
 * at once (a 429 with the time to wait, from the plan without candidates; no record, handle-request.ts
 * `deferredLine`), and its runner waits that time off its slot (batch-runner.ts): queued here, it held the slot, and every other line behind it, since no line starts while a
 * request waits in the queue.
 */
export async function planRequest(request: PipelineRequest): Promise<PlannedRoute> {
  const { runtime } = request;
  // Set once the request is queued: planning itself (a plan made at once, or refused) is no wait in a queue.
  let queuedAtMs: number | undefined;
  let planned: PlannedRoute;
  try {
    const route = routeRequestOf(request);
    const planning =
      request.context.batchId === undefined
        ? runtime.planOrQueue(route, request.context.signal, request.snapshot, request.context.receivedAtMs)
        : batchLinePlan(runtime, route, request.snapshot);
    // Without queueing the plan comes at once (no promise to wait for).
    if (planning instanceof Promise) {
      queuedAtMs = runtime.clock.now();
      planned = await planning;
    } else planned = planning;
  } catch (error) {
    // A refusal after queueing (the queue's time ran out) keeps how long it waited.
    if (queuedAtMs !== undefined) request.record.waited(runtime.clock.now() - queuedAtMs);
    throw error;
  }
  const waitedMs = queuedAtMs === undefined ? 0 : runtime.clock.now() - queuedAtMs;
  request.record.planned(planned.plan, waitedMs);
  if (planned.queueRefusal !== undefined) planned = { ...planned, queueRefusal: { ...planned.queueRefusal, waitedMs } };
  // The queue hands back its last plan when the client leaves: that is a client gone, not "no candidate" (429).
  if (request.context.signal.aborted) {
    throw new ClientAbortedError("the client closed the connection while the request was queued");
  }
  // Shutdown began while it waited: nothing was sent for it, so another instance can serve it at once.
  if (queuedAtMs !== undefined && runtime.isShuttingDown) {
    throw new ServiceUnavailableError("The gateway is shutting down; retry the request (on another instance).");
  }
  return planned;
}

/** What the route is planned from: the request's body and the facts estimated from it (requestFactsOf). */
type RoutedRequest = Pick<PipelineRequest, "runtime" | "body" | "endpoint" | "sessionKey"> &
  RequestFacts & { readonly context: Pick<PipelineRequest["context"], "client"> };

/**
 * The estimate every plan counts (the door's `estimate`, token-estimate.ts), and `max_tokens`: one function, so the
 * batch runner's plan of a line (batchLineRoute) counts what the line's own plan will.
 */
export function requestFactsOf(endpoint: EndpointSpec, body: Record<string, unknown>, isStream: boolean): RequestFacts {
  const prompt = endpoint.estimate(body);
  return {
    prompt,
    features: featuresOf(endpoint, body, prompt.hasImages, isStream),
    maxOutputTokens: requestedOutputTokens(body),
  };
}

/** The route request of a request: its model, fallbacks, needs and tokens, as the router plans it. */
export function routeRequestOf(request: RoutedRequest): ClientRouteRequest {
  const { runtime, body, endpoint, prompt, maxOutputTokens, sessionKey } = request;
  return {
    model: body.model,
    fallbackModels: body.models ?? [],
    kind: endpoint.kind,
    endpointPath: endpoint.upstreamPath,
    needsTools: Array.isArray(body.tools) && body.tools.length > 0,
    needsVision: prompt.hasImages,
    needsJsonSchema: responseFormatFeature(body.response_format) === JSON_SCHEMA_FEATURE,
    features: request.features,
    featureSizes: featureSizesOf(body),
    promptTokens: prompt.promptTokens,
    // Embeddings: the longest input (token-estimate.ts PromptFacts.fitTokens); a rerank: 0 (endpoints.ts).
    contextTokens: endpoint.hasContextFit === false ? 0 : prompt.fitTokens,
    promptParam: endpoint.promptParam,
    maxOutputTokens,
    outputLimitName: outputLimitNameOf(body),
    outputLimitParam: outputLimitParamOf(endpoint, body),
    isLegacyCompletion: endpoint.isLegacyCompletion,
    moderationInputs: endpoint.isModeration === true ? moderationInputs(body.input).length : undefined,
    audioSeconds: prompt.audio?.seconds,
    stickyDeploymentKey: sessionKey === undefined ? undefined : runtime.sticky.get(sessionKey),
    // Its client's own `paid` and `models` are applied on the config it is planned on (client-rules.ts).
    client: request.context.client,
  };
}

/**
 * A batch line's route as its pipeline will plan it (the same body check, estimate and `max_tokens`), for its runner
 * to see before sending whether the line fits a token budget now (batch-line-run.ts), with the checked body and facts
 * for its pipeline (CheckedLine: not parsed and estimated again); undefined when the body would be refused (the
 * pipeline then answers it, with its record). `rawBody`: the body the pipeline gets (a Responses line's translated
 * one).
 */
export function batchLineRoute(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  rawBody: unknown,
  client: string | undefined,
): { readonly route: ClientRouteRequest; readonly checked: CheckedLine } | undefined {
  let body: PipelineRequest["body"];
  try {
    body = parseBody(endpoint.schema, rawBody) as PipelineRequest["body"];
  } catch {
    return undefined;
  }
  // A line never streams (batch-lines.ts unstreamed). No sticky session: it only orders the candidates, and the
  // runner asks whether there is any.
  const facts = requestFactsOf(endpoint, body, false);
  const route = routeRequestOf({ runtime, body, endpoint, sessionKey: undefined, context: { client }, ...facts });
  return { route, checked: { endpoint, rawBody, body, facts } };
}

/**
 * The request's features; a streamed transcription's also `stream`, which is no feature elsewhere (every chat
 * request may stream): a provider that refuses to stream a transcription is ranked after the others for the next.
 */
function featuresOf(
  endpoint: EndpointSpec,
  body: Record<string, unknown>,
  hasImages: boolean,
  isStream: boolean,
): readonly RequestFeature[] {
  const features = requestFeatures(body, hasImages);
  return isStream && endpoint.kind === "transcription" ? [...features, STREAM_FEATURE] : features;
}

/**
 * The name the client gave its output limit, as its door spells it (EndpointSpec `outputLimitParam`: the Responses
 * door's `max_output_tokens` arrives as the chat body's `max_tokens`); undefined when it sent none. Refusals name it:
 * they all said `max_tokens`, which a Responses client never sent.
 */
export function outputLimitParamOf(
  endpoint: EndpointSpec,
  body: Readonly<Record<string, unknown>>,
): string | undefined {
  // Both sent (outputLimitNameOf's undefined: ambiguous for body rules): max_completion_tokens is the one counted
  // (requestedOutputTokens), so the one named.
  const name =
    outputLimitNameOf(body) ?? (isPositiveCount(body.max_completion_tokens) ? "max_completion_tokens" : undefined);
  return name === undefined ? undefined : (endpoint.outputLimitParam ?? name);
}

function isPositiveCount(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value > 0;
}

function requestedOutputTokens(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * A batch line's plan, never queued. While live requests wait in the route queue the line is refused (429, to be
 * tried again at once: its runner starts nothing until the queue is empty; no record: handle-request.ts
 * `deferredLine`): its runner checked the queue before it started the line, but a live request may have queued since
 * (the line's client charge went to Redis meanwhile), and the line would take the slot it waits for.
 */
function batchLinePlan(runtime: GatewayRuntime, route: ClientRouteRequest, snapshot: GatewaySnapshot): PlannedRoute {
  if (runtime.queuedRequests > 0) {
    throw new RateLimitedError("Live requests wait in the route queue; batch lines start after them.", {
      retryAfterMs: 0,
    });
  }
  return { plan: runtime.plan(route, snapshot), snapshot };
}
