// What the failover executor is asked for a planned request (upstream/forward-types.ts ForwardRequest): one place, so
// that a request sent whole and each chunk of an embeddings batch (embeddings-chunks.ts) are asked alike.
import { calibratingTokens } from "../limits/prompt-calibration.ts";
import type { ForwardRequest, ForwardTrace } from "../upstream/forward-types.ts";
import { moderationInputs } from "../upstream/moderation-dialect.ts";
import type { PlannedRoute } from "./gateway-runtime.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { outputLimitParamOf } from "./plan-request.ts";

/** `startedAtMs`: when the client's request arrived (`routing.total_timeout_ms` counts from then). */
export function forwardRequestOf(
  request: PipelineRequest,
  planned: PlannedRoute,
  trace: ForwardTrace,
  startedAtMs: number,
): ForwardRequest {
  const { endpoint, body, context } = request;
  return {
    endpointPath: endpoint.upstreamPath,
    body,
    isMultipart: endpoint.isMultipart,
    isLegacyCompletion: endpoint.isLegacyCompletion,
    isBinaryAnswer: endpoint.isBinaryAnswer,
    isRerank: endpoint.isRerank,
    isModeration: endpoint.isModeration,
    moderationInputs: endpoint.isModeration === true ? moderationInputs(body.input).length : undefined,
    audioSeconds: request.prompt.audio?.seconds,
    audioMostSeconds: request.prompt.audio?.mostSeconds,
    native: context.native,
    queueRefusal: planned.queueRefusal,
    recallToolCallExtras: context.recallToolCallExtras,
    isStream: request.isStream,
    estimatesUsage: endpoint.estimatesUsage,
    signal: context.signal,
    receivedAtMs: startedAtMs,
    trace,
    traceContext: context.trace,
    onReserved: context.onReserved,
    promptTokens: request.prompt.promptTokens,
    maxOutputTokens: request.maxOutputTokens,
    outputLimitField: outputLimitParamOf(endpoint, body),
    calibratingPromptTokens: calibratingTokens(request.prompt),
    reasoningPromptTokens: request.prompt.reasoningTokens,
    features: request.features,
  };
}
