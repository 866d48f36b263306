// The audio half of the pipeline (text to speech): hands the committed upstream body to the audio relay
// (streaming/relay-audio.ts), settles it through the recorder as a stream segment is settled (budgets, stats,
// health: a cut blames the upstream as a cut stream does), and completes the request's record when it ends.
import { calibratingTokens } from "../limits/prompt-calibration.ts";
import { type AudioRelayEnd, relayAudio } from "../streaming/relay-audio.ts";
import { streamError } from "../streaming/relay-stream.ts";
import type { AudioResult } from "../upstream/forward-types.ts";
import { cutReason } from "./open-requests.ts";
import { type AudioAnswer, type PipelineRequest, publish } from "./pipeline-types.ts";

export function audioAnswer(
  request: PipelineRequest,
  result: AudioResult,
  headers: Record<string, string>,
): AudioAnswer {
  request.record.headersSent();
  const lifecycle = { hasStarted: false, hasEnded: false };
  const chunks = relayChunks(request, result, lifecycle);
  return {
    kind: "audio",
    status: result.status,
    contentType: result.audio.contentType,
    contentEncoding: result.audio.contentEncoding,
    headers,
    chunks,
    stopped: result.audio.controller.signal,
    async cancel() {
      if (lifecycle.hasEnded) return;
      if (lifecycle.hasStarted) {
        await chunks.return(undefined as never);
        return;
      }
      // Never started, so none of its code (and no finally) will ever run: settle here instead.
      lifecycle.hasEnded = true;
      await chunks.return(undefined as never);
      result.audio.controller.abort();
      settle(request, result, {
        outcome: "client_aborted",
        reason: "the response could not be written",
        deliveredBytes: 0,
      });
    },
  };
}

async function* relayChunks(
  request: PipelineRequest,
  result: AudioResult,
  lifecycle: { hasStarted: boolean; hasEnded: boolean },
): AsyncGenerator<Uint8Array, AudioRelayEnd, void> {
  lifecycle.hasStarted = true;
  const relay = relayAudio(result.audio, {
    signal: request.context.signal,
    maxDurationMs: request.snapshot.config.routing.maxStreamDurationMs,
  });
  let ended: AudioRelayEnd = { outcome: "client_aborted", reason: "the response was not written", deliveredBytes: 0 };
  let isDone = false;
  let handedBytes = 0;
  try {
    for (;;) {
      const next = await relay.next();
      if (next.done === true) {
        ended = next.value;
        isDone = true;
        break;
      }
      request.record.firstTokenSent();
      handedBytes += next.value.byteLength;
      yield next.value;
    }
  } finally {
    // The consumer stopped early (the response could not be written): the relay's finally hangs up on the upstream.
    if (!isDone) {
      await relay.return(undefined as never);
      ended = { ...ended, deliveredBytes: handedBytes };
    }
    lifecycle.hasEnded = true;
    settle(request, result, ended);
  }
  return ended;
}

function settle(request: PipelineRequest, result: AudioResult, ended: AudioRelayEnd): void {
  const { runtime, prompt, context } = request;
  const deployment = result.deployment;
  // The reason quotes the network's error text, which may echo what the upstream sent: redacted as attempt reasons are.
  const end = { outcome: ended.outcome, reason: runtime.secrets.redact(ended.reason), usage: undefined, text: "" };
  // The provider reports no usage for speech: the reservation keeps the estimate of `input`, as a buffered answer did.
  runtime.recorder.segmentEnded(deployment, result.reservation, end, {
    isFirst: true,
    startedAtMs: result.audio.startedAtMs,
    estimatedUsage: undefined,
    promptEstimate: calibratingTokens(prompt),
    endedAtMs: undefined,
  });
  request.record.segmentEnded(result.attempt, end, { endedAtMs: undefined, estimatedUsage: undefined });
  request.record.responseBytes(ended.deliveredBytes);
  if (ended.outcome !== "success" && ended.outcome !== "client_aborted") {
    context.log.warn(
      {
        provider: deployment.provider.settings.name,
        model: deployment.model.id,
        end: ended.outcome,
        bytes: ended.deliveredBytes,
        reason: end.reason,
      },
      "audio ended with an error",
    );
  }
  if (ended.outcome === "success") {
    publish(request, 200, "success");
    return;
  }
  const cut = cutReason(context.signal);
  if (ended.outcome === "client_aborted") {
    publish(request, cut?.status ?? 499, "client_aborted", cut?.code);
    return;
  }
  // The 200 and part of the audio were sent: the client sees the body cut off (no end of its chunked encoding).
  publish(request, 502, ended.outcome, streamError(ended.outcome, "").code);
}
