// The stream half of the pipeline: hands the opened upstream stream to the relay (with a continuation source
// for chat), settles each segment through the recorder, and completes the request's record when the relay ends.
import type { GatewayError } from "../errors/gateway-error.ts";
import { calibratingTokens } from "../limits/prompt-calibration.ts";
import { countTextTokens } from "../limits/token-estimate.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import { featureSizesOf } from "../router/request-features.ts";
import { EchoedPrompt } from "../streaming/echoed-prompt.ts";
import { relayStream, streamError } from "../streaming/relay-stream.ts";
import type {
  ContinuationSource,
  RelayResult,
  RelaySegment,
  SegmentEnd,
  StreamBatch,
} from "../streaming/relay-types.ts";
import { clientAskedForUsage } from "../upstream/attempt.ts";
import type { StreamResult } from "../upstream/forward-types.ts";
import { createContinuationSource } from "./continuation-source.ts";
import { cutReason } from "./open-requests.ts";
import { type PipelineRequest, publish, type StreamAnswer, type StreamEnding } from "./pipeline-types.ts";
import { estimatedSegmentUsage } from "./segment-usage.ts";

/** Malformed events skipped in one stream before it counts as broken. */
const MAX_MALFORMED_EVENTS = 3;

export function streamAnswer(
  request: PipelineRequest,
  plan: RoutePlan,
  result: StreamResult,
  headers: Record<string, string>,
): StreamAnswer {
  request.record.headersSent();
  const first = firstSegment(request, result);
  const lifecycle: Lifecycle = {
    hasStarted: false,
    hasEnded: false,
    isAnswerEnded: false,
    failure: undefined,
    isRecordHeld: false,
    heldSettle: undefined,
  };
  const events = relayEvents(request, plan, result, first, lifecycle);
  return {
    kind: "stream",
    api: result.api,
    headers,
    events,
    promptTokensEstimate: request.runtime.promptCalibration.promptTokensFor(
      result.deployment,
      result.promptTokensSent ?? request.prompt.promptTokens,
    ),
    endAnswer() {
      lifecycle.isAnswerEnded = true;
    },
    failedBy(error) {
      lifecycle.failure ??= error;
    },
    holdRecord() {
      lifecycle.isRecordHeld = true;
      return (outcome) => {
        if (!lifecycle.isRecordHeld) return;
        lifecycle.isRecordHeld = false;
        if (outcome?.isAnswerNotKept === true) request.record.answerNotKept();
        const held = lifecycle.heldSettle;
        lifecycle.heldSettle = undefined;
        held?.();
      };
    },
    async cancel() {
      if (lifecycle.hasEnded) return;
      if (lifecycle.hasStarted) {
        // Suspended at a yield: closing it runs the relay's finally blocks (hang up, settle, publish).
        await events.return(undefined as never);
        return;
      }
      // Never started, so none of its code (and no finally) will ever run: settle here instead.
      lifecycle.hasEnded = true;
      await events.return(undefined as never);
      result.stream.controller.abort();
      first.finish({
        outcome: "client_aborted",
        reason: "the response could not be written",
        usage: undefined,
        text: "",
      });
      settleOrHold(request, lifecycle, undefined);
    },
  };
}

/**
 * Where the stream is; `failure`: the door's own error that ended it (StreamAnswer.failedBy); `isRecordHeld`: the door
 * holds the record (StreamAnswer.holdRecord), and `heldSettle` settles the stream once it releases it.
 */
interface Lifecycle {
  hasStarted: boolean;
  hasEnded: boolean;
  isAnswerEnded: boolean;
  failure: GatewayError | undefined;
  isRecordHeld: boolean;
  heldSettle: (() => void) | undefined;
}

/** Settles the stream now, or when the door releases the record it holds (the door's failure read then). */
function settleOrHold(request: PipelineRequest, lifecycle: Lifecycle, relayed: RelayResult | undefined): void {
  if (lifecycle.isRecordHeld) lifecycle.heldSettle = () => settle(request, relayed, lifecycle.failure);
  else settle(request, relayed, lifecycle.failure);
}

async function* relayEvents(
  request: PipelineRequest,
  plan: RoutePlan,
  result: StreamResult,
  first: RelaySegment,
  lifecycle: Lifecycle,
): AsyncGenerator<StreamBatch, StreamEnding, void> {
  lifecycle.hasStarted = true;
  if (lifecycle.hasEnded) return { isSuccess: false, error: undefined, usage: undefined };
  const relay = relayStream(first, {
    ...relayOptions(request, plan, result),
    isAnswerEnded: () => lifecycle.isAnswerEnded,
  });
  let relayed: RelayResult | undefined;
  try {
    for (;;) {
      const next = await relay.next();
      if (next.done === true) {
        relayed = next.value;
        break;
      }
      request.record.firstTokenSent();
      yield next.value;
    }
  } finally {
    // The consumer stopped early (it should not): end the relay so every segment is settled and its slot freed.
    if (relayed === undefined) await relay.return(undefined as never);
    lifecycle.hasEnded = true;
    settleOrHold(request, lifecycle, relayed);
  }
  if (relayed === undefined) return { isSuccess: false, error: undefined, usage: undefined };
  // A stream the gateway cut at its exit ends, for a client still there, with the error it was cut with.
  const error: GatewayError | undefined = relayed.isSuccess
    ? undefined
    : relayed.isClientGone
      ? cutReason(request.context.signal)
      : streamError(relayed.outcome, request.runtime.secrets.redact(relayed.reason), relayed.upstreamStatus);
  return { isSuccess: relayed.isSuccess, error, usage: relayed.usage };
}

function firstSegment(request: PipelineRequest, result: StreamResult): RelaySegment {
  const { runtime, prompt } = request;
  const deployment = result.deployment;
  let endedAtMs: number | undefined;
  return {
    stream: result.stream,
    isUsageInjected: result.isUsageInjected,
    ended(end: SegmentEnd) {
      endedAtMs ??= runtime.clock.now();
      runtime.recorder.segmentStopped(deployment, result.reservation, end, {
        startedAtMs: result.stream.startedAtMs,
        endedAtMs,
      });
    },
    finish(end: SegmentEnd) {
      // One estimate for every book: the record's attempt (tokens_total), the budgets and /stats.
      // The prompt of the body it was sent (without reasoning its host refused): ForwardRequest.reasoningPromptTokens;
      // as its deployment counts it (calibrated), the figure its reservation and the client's estimated usage take.
      const sentTokens = result.promptTokensSent ?? prompt.promptTokens;
      const estimatedUsage = estimatedSegmentUsage(
        end,
        runtime.promptCalibration.promptTokensFor(deployment, sentTokens),
      );
      runtime.recorder.segmentEnded(deployment, result.reservation, end, {
        isFirst: true,
        startedAtMs: result.stream.startedAtMs,
        estimatedUsage,
        promptEstimate: calibratingTokens(prompt) === undefined ? undefined : sentTokens,
        endedAtMs,
      });
      request.record.segmentEnded(result.attempt, end, { endedAtMs, estimatedUsage });
      if (end.outcome !== "success" && end.outcome !== "client_aborted") {
        request.context.log.warn(
          {
            provider: deployment.provider.settings.name,
            model: deployment.model.id,
            end: end.outcome,
            reason: runtime.secrets.redact(end.reason),
          },
          "stream ended with an error",
        );
      }
    },
  };
}

function relayOptions(request: PipelineRequest, plan: RoutePlan, result: StreamResult) {
  const { runtime, snapshot, body, endpoint, prompt, context } = request;
  const deployment = result.deployment;
  // The prompt as the serving deployment counts it (calibrated from its provider's reports), of the body it was sent:
  // closer to what it would have reported than the plain estimate, which stays above every common tokenizer. The
  // figure a Messages `message_start` shows (StreamAnswer.promptTokensEstimate), so an estimated usage and a
  // prefill-continued answer's combined usage end with it too.
  const promptEstimate = runtime.promptCalibration.promptTokensFor(
    deployment,
    result.promptTokensSent ?? prompt.promptTokens,
  );
  // A native stream (the client's own protocol) ends in an error when it breaks: continuations speak chat.
  const isContinuable =
    endpoint.isContinuable && result.api === "chat" && (body.n === undefined || body.n === null || body.n === 1);
  return {
    maxDurationMs: snapshot.config.routing.maxStreamDurationMs,
    maxMalformedEvents: MAX_MALFORMED_EVENTS,
    maxRetainedChars: snapshot.config.upstreamLimits.maxRetainedStreamChars,
    shouldStripUsage: result.isUsageInjected,
    signal: context.signal,
    promptTokens: promptEstimate,
    countTokens: countTextTokens,
    // Every stream of a door that estimates usage, asked for or not: an answer no upstream reported usage for is
    // counted by the estimate in every book, and only a chat client that asked is sent it. A native Responses stream
    // (its `response.completed` without usage) is relayed as its provider sent it: its estimate is for the books.
    usageEstimate:
      endpoint.estimatesUsage === true
        ? { promptTokens: promptEstimate, isSentToClient: result.api === "chat" && clientAskedForUsage(body) }
        : undefined,
    // A legacy completion that asked `echo` starts with its prompt, which its provider counts as prompt.
    echoedPrompt: endpoint.isLegacyCompletion === true ? EchoedPrompt.of(body) : undefined,
    redact: runtime.secrets.redactor,
    onUpstreamWait: context.flushWrites,
    ...(isContinuable
      ? {
          continuation: lazyContinuationSource(() =>
            createContinuationSource({
              runtime,
              snapshot,
              plan,
              body,
              endpointPath: endpoint.upstreamPath,
              promptTokens: prompt.promptTokens,
              reasoningPromptTokens: prompt.reasoningTokens,
              maxOutputTokens: request.maxOutputTokens,
              signal: context.signal,
              traceContext: context.trace,
              firstDeployment: deployment,
              features: request.features,
              featureSizes: featureSizesOf(body),
              onLog: (fields, message) => context.log.warn(fields, message),
              onAttempts: (trace, mode) => request.record.attempted(trace.attempts, trace.skips, "continuation", mode),
              onSegmentEnd: (report, end, settled) => request.record.segmentEnded(report, end, settled),
            }),
          ),
        }
      : {}),
    onMalformedEvent: (data: string) =>
      context.log.warn(
        { provider: deployment.provider.settings.name, model: deployment.model.id, sample: data.slice(0, 120) },
        "skipped a malformed stream event",
      ),
    onContinuation: (continuation: Parameters<typeof request.record.continued>[0]) => {
      request.record.continued(continuation);
      context.log.warn(
        { ...continuation, failed: deployment.key },
        "stream continued on another upstream after a mid-stream failure",
      );
    },
  };
}

/**
 * The continuation source, made at the first failure it is asked about: its candidates, the body's feature sizes and
 * its closures were built for every stream before its first byte, and most streams never break. What it reads (the
 * plan, the body, the request's figures) does not change meanwhile.
 */
function lazyContinuationSource(create: () => ContinuationSource): ContinuationSource {
  let source: ContinuationSource | undefined;
  return {
    next(failure, bound) {
      source ??= create();
      return source.next(failure, bound);
    },
  };
}

function settle(request: PipelineRequest, relayed: RelayResult | undefined, failure?: GatewayError): void {
  const cut = cutReason(request.context.signal);
  if (relayed === undefined) {
    // Closed by the door that failed it (its in-stream error told the client): that error, as its HTTP one would be.
    if (cut === undefined && failure !== undefined) publish(request, failure.status, "rejected", failure.code);
    else publish(request, cut?.status ?? 499, "client_aborted", cut?.code);
    return;
  }
  request.record.usage(relayed.usage, relayed.isUsageEstimated === true);
  if (request.snapshot.config.log.content && relayed.deliveredText !== undefined) {
    request.record.content({ responseText: relayed.deliveredText });
  }
  const status = relayed.isSuccess ? 200 : relayed.isClientGone ? (cut?.status ?? 499) : 502;
  const outcome = relayed.isSuccess ? "success" : relayed.isClientGone ? "client_aborted" : relayed.outcome;
  const errorCode =
    status === 502
      ? streamError(relayed.outcome, "", relayed.upstreamStatus).code
      : relayed.isClientGone
        ? cut?.code
        : undefined;
  publish(request, status, outcome, errorCode);
}
