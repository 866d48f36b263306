// Responses background mode (`background: true`), the server's side: the request is answered at once with the
// queued response (or, with `stream: true`, with its events as they come), while the one pipeline serves it in this
// process (same routing, budgets, failover and record) under a signal of its own: no client socket ends it, a
// cancel does (POST /v1/responses/{id}/cancel), and so does the gateway's exit (it is among the open requests).
// Its state is kept in the kept-responses store (queued -> in_progress -> completed / incomplete / failed /
// cancelled), rewritten every BACKGROUND_HEARTBEAT_MS while it runs, so another replica reading the same store
// sees it, replays its events and passes a cancel on (background-readers.ts: what those readers use).
import type { FastifyReply, FastifyRequest } from "fastify";
import { ClientAbortedError, GatewayError, InternalError } from "../errors/gateway-error.ts";
import { BackgroundCancel, type BackgroundRuns, RunStateWrites } from "../pipeline/background-runs.ts";
import { cacheRequest } from "../pipeline/cache-control.ts";
import { type ChatPipelineResult, handleChatRequest } from "../pipeline/chat-request.ts";
import type { EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { cutReason } from "../pipeline/open-requests.ts";
import type { ChatRequestBody } from "../protocols/chat-completions.ts";
import {
  BACKGROUND_HEARTBEAT_MS,
  BACKGROUND_LATE_WRITE_MS,
  backgroundEvents,
  isTerminal,
  RunningEvents,
  runStoppedError,
  stoppedRun,
} from "../protocols/responses/background.ts";
import { keptToken } from "../protocols/responses/kept-responses.ts";
import { type ResponseObject, responseErrorOf } from "../protocols/responses/response-object.ts";
import type { ForwardRequest, NativeCall, UpstreamApi } from "../upstream/forward-types.ts";
import { type FinalWriteTarget, writeFinal } from "./background-final-write.ts";
import { writeEvents } from "./background-readers.ts";
import { translatedAnswer } from "./translated-answer.ts";

/** A translator of the Responses door (chat chunks or a native provider's events -> SSE text). */
interface ResponsesTranslator {
  push(chunk: unknown): string;
  finish(): string;
  fail(error: GatewayError): string;
  /** A cancel: the output so far, ended as `cancelled` (stream-mapping.ts says which event). */
  cancel(): string;
  readonly result: ResponseObject | undefined;
  /** Always false for Responses (protocol-adapters.ts StreamTranslator.hasEndedAnswer). */
  readonly hasEndedAnswer: boolean;
}

/** What the Responses adapter gives the background run (protocol-adapters.ts). */
export interface BackgroundExchange extends FinalWriteTarget {
  readonly id: string;
  /** The response as first answered: `queued`, no output. */
  readonly queued: ResponseObject;
  readonly isStream: boolean;
  answer(upstreamAnswer: unknown, servedModel: string, api: UpstreamApi): ResponseObject;
  stream(servedModel: string, api: UpstreamApi): ResponsesTranslator;
  /**
   * Adds an answer's (`completed` / `incomplete`) items to the conversation it was made on, before its final state is
   * written (background-final-write.ts says why); true when it tried (a failure is reported, not thrown).
   */
  join(response: ResponseObject): Promise<boolean>;
  /**
   * Says the answer is about to `join`: from here the run's running writes carry the ids of the items it adds
   * (StoredResponse.joining), which a reader that finds the run stopped takes out (background-stopped.ts). False: it
   * joins nothing (no conversation, or not an answer).
   */
  willJoin(response: ResponseObject): boolean;
}

/** The pipeline's request, as the door would pass it. */
export interface BackgroundPipelineCall {
  readonly endpoint: EndpointSpec;
  readonly chatBody: ChatRequestBody;
  readonly native: NativeCall | undefined;
  /** ForwardRequest.recallToolCallExtras. */
  readonly recallToolCallExtras?: ForwardRequest["recallToolCallExtras"];
  readonly receivedAtMs: number;
  /** RequestContext.truncatesToFit. */
  readonly truncatesToFit?: boolean | undefined;
}

/**
 * Starts the background run and answers the request: the queued response as JSON, or the run's events followed
 * until its end. `openedController`: the request's own open-requests controller, already open (the run keeps it
 * open until its final state is kept, so the exit waits for that write).
 */
export async function answerInBackground(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  reply: FastifyReply,
  call: BackgroundPipelineCall,
  background: BackgroundExchange,
  controller: AbortController,
): Promise<void> {
  let token: string | undefined;
  const firstWrittenAtMs = runtime.clock.now();
  try {
    // Kept before it is answered: the client's first GET must find it. A store that cannot keep it is an error
    // answered now, and nothing runs: a 200 with an id that later GETs answer 404 for would lose the response.
    token = await background.keep(background.queued, background.isStream ? [] : undefined, false, undefined);
    if (token === undefined) {
      throw new InternalError(
        "The background response could not be kept (it is larger than responses.store allows); nothing was started.",
      );
    }
  } catch (error) {
    runtime.openRequests.close(controller);
    throw error;
  }
  runtime.backgroundRuns.start(background.id, controller);
  const firstWrite: LandedWrite = { token, writtenAtMs: firstWrittenAtMs, eventCount: 0 };
  runBackground(runtime, request, call, background, controller, firstWrite).catch((error: unknown) => {
    request.log.error({ err: error, responseId: background.id }, "background response: the run failed");
  });
  if (!background.isStream) {
    reply.code(200).header("x-request-id", request.id).type("application/json").send(background.queued);
    return;
  }
  const followed = new AbortController();
  const events = runtime.backgroundRuns.follow(background.id, 0, followed.signal);
  await writeEvents(
    request,
    reply,
    events ?? emptyEvents(),
    followed,
    runtime.snapshot.config.server.streamKeepaliveMs,
  );
}

async function* emptyEvents(): AsyncGenerator<string> {}

/** A write of the run's state that landed: its token, when it was made (this process's clock) and its events. */
interface LandedWrite {
  readonly token: string;
  readonly writtenAtMs: number;
  readonly eventCount: number;
}

/** One background run, from the pipeline to its final state kept. Long: its steps share the writes' order. */
async function runBackground(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  call: BackgroundPipelineCall,
  background: BackgroundExchange,
  controller: AbortController,
  firstWrite: LandedWrite,
): Promise<void> {
  const runs = runtime.backgroundRuns;
  const { id } = background;
  const streamEvents = (): readonly string[] | undefined => (background.isStream ? runs.events(id) : undefined);
  const running: ResponseObject = { ...background.queued, status: "in_progress" };
  // The kept state as this run last wrote it. Every write is a compare and set against it: a cancel or DELETE made on
  // another replica since (a write this run did not make) makes the write fail, and that ends the run; a plain
  // read-then-write let a heartbeat landing after the cancel write the response back as in_progress.
  let token: string | undefined = firstWrite.token;
  // Its last write that landed. A shared store refuses a write made BACKGROUND_LATE_WRITE_MS after it (background.ts:
  // a process paused that long may have been shown failed elsewhere); the run then stops, and keeps that failure.
  let landed = firstWrite;
  const notAfterMs = (): number => landed.writtenAtMs + BACKGROUND_LATE_WRITE_MS;
  const isLate = (): boolean => runtime.clock.now() > notAfterMs();
  // Every write of the state goes through this chain (one heartbeat waiting at most: RunStateWrites).
  const writes = new RunStateWrites((error) => {
    request.log.warn({ err: error, responseId: id }, "background response: its state could not be kept");
  });
  // A heartbeat hands over only the events since the last one (a copy of them all each second was O(n^2) over a long
  // run); the list it passes on is extended only by the next heartbeat, which the writes' chain starts after this one.
  const heartbeatEvents = new RunningEvents();
  const beat = async (): Promise<void> => {
    if (token === undefined) return;
    const events = background.isStream ? heartbeatEvents.add(runs.events(id, heartbeatEvents.seen)) : undefined;
    const writtenAtMs = runtime.clock.now();
    let written = await background.keep(running, events, false, token, notAfterMs());
    if (written === undefined && !isLate()) {
      // Refused, maybe against a write of this run's own whose reply was lost and which the store could not decide
      // then (unreachable longer than it waits: redis-kept-responses.ts): a running state is written by the run only
      // (a cancel writes cancelled, a DELETE removes it), so one found kept is written again against. Taken for a
      // cancel, it ended the run as cancelled.
      const kept = await background.read();
      if (kept !== undefined && !isTerminal(kept.response.status)) {
        written = await background.keep(running, events, false, keptToken(kept), notAfterMs());
      }
    }
    if (written !== undefined) {
      token = written;
      landed = { token: written, writtenAtMs, eventCount: events?.length ?? 0 };
      return;
    }
    // Cancelled or deleted on another replica (or evicted from the bounded store): end the run here, through the
    // pipeline's abort path; the final write below sees which. Or too late: the run stops as failed.
    token = undefined;
    controller.abort(isLate() ? runStoppedError() : new BackgroundCancel());
  };
  const enqueueBeat = (): void => writes.enqueueBeat(beat);
  enqueueBeat();
  const heartbeat = setInterval(enqueueBeat, BACKGROUND_HEARTBEAT_MS);
  const served: ServedRun = {};
  // Whatever throws on the way (a translator's failure events, say), the run ends: followers and a waiting cancel are
  // released and the exit does not wait out its grace for it.
  try {
    let final: ResponseObject;
    let isJoined = false;
    try {
      try {
        final = await servedResponse(runtime, request, call, background, controller.signal, served);
      } catch (error) {
        final = endedResponse(background, error, controller.signal, served, runs);
        if (background.isStream && final.status === "failed") {
          // A follower gets the failure as the stream it reads would end: `error`, then `response.failed`.
          const translator = background.stream(background.queued.model, "chat");
          for (const event of backgroundEvents(translator.fail(asGatewayError(error, controller.signal)))) {
            runs.append(id, event);
          }
        }
      }
      // Joined before the final state is written (background-final-write.ts), the heartbeats still going (a long
      // conversation's append takes a while); its followers here get the stream's ending only then, too.
      // A heartbeat naming the items first: a process killed between adding them and its final write leaves a kept
      // state that says which to take out again (background-stopped.ts), not items of an answer that never completed.
      if (background.willJoin({ ...final, background: true })) await writes.enqueue(beat);
      isJoined = await background.join({ ...final, background: true });
      for (const event of served.tail ?? []) runs.append(id, event);
    } finally {
      clearInterval(heartbeat);
    }
    runs.endEvents(id);
    const finished: ResponseObject = { ...final, background: true };
    const events = streamEvents();
    await writes.enqueueFinal(() =>
      writeFinal(
        background,
        {
          finished,
          events,
          expected: token,
          notAfterMs: notAfterMs(),
          isLate,
          stopped: { response: stoppedRun(running), events: events?.slice(0, landed.eventCount), token: landed.token },
        },
        isJoined,
      ),
    );
  } finally {
    runs.finish(id);
    // Only now: an exit waits for the final state's write (a Redis write is asynchronous).
    runtime.openRequests.close(controller);
  }
}

/** What a run's steps share: its stream's translator, and the stream's ending events held until the answer joined. */
interface ServedRun {
  translator?: ResponsesTranslator;
  tail?: readonly string[];
}

/** The pipeline's answer as a finished response; throws when the pipeline ended without one. */
async function servedResponse(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  call: BackgroundPipelineCall,
  background: BackgroundExchange,
  signal: AbortSignal,
  served: ServedRun,
): Promise<ResponseObject> {
  const sessionId = request.headers["x-session-id"];
  const result: ChatPipelineResult = await handleChatRequest(runtime, call.endpoint, call.chatBody, {
    requestId: request.id,
    clientProtocol: call.endpoint.protocol,
    receivedAtMs: call.receivedAtMs,
    signal,
    sessionId: typeof sessionId === "string" ? sessionId : undefined,
    client: request.clientName ?? undefined,
    log: request.log,
    cacheDirective: cacheRequest(request.headers),
    native: call.native,
    recallToolCallExtras: call.recallToolCallExtras,
    truncatesToFit: call.truncatesToFit,
    // A JSON answer's record says what the run became: published once it is translated (translated-answer.ts).
    writesBeforeRecord: true,
  });
  const servedModel = result.headers["x-gateway-model"] ?? "";
  if (result.kind === "json")
    return translatedAnswer(result, (answer) => background.answer(answer, servedModel, result.api));
  const translator = background.stream(servedModel, result.api);
  served.translator = translator;
  const runs = runtime.backgroundRuns;
  let isDone = false;
  try {
    for (;;) {
      const next = await result.events.next();
      if (next.done === true) {
        isDone = true;
        const ending = next.value;
        const tail = ending.isSuccess
          ? translator.finish()
          : ending.error !== undefined
            ? translator.fail(ending.error)
            : "";
        const tailEvents = [...backgroundEvents(tail)];
        if (translator.result === undefined) {
          for (const event of tailEvents) runs.append(background.id, event);
          throw ending.error ?? new ClientAbortedError();
        }
        served.tail = tailEvents;
        return translator.result;
      }
      let text = "";
      for (const chunk of next.value) text += translator.push(chunk.json);
      for (const event of backgroundEvents(text)) runs.append(background.id, event);
    }
  } finally {
    // Settles the stream whatever threw: upstream hung up on, slots freed, record published.
    if (!isDone) await result.cancel();
  }
}

/**
 * The state a run ended in without an answer: cancelled (with the output made so far, as OpenAI keeps it; a streamed
 * one's followers get the last event of it), ended by the exit, or failed.
 */
function endedResponse(
  background: BackgroundExchange,
  error: unknown,
  signal: AbortSignal,
  served: ServedRun,
  runs: BackgroundRuns,
): ResponseObject {
  if (signal.aborted && signal.reason instanceof BackgroundCancel) {
    if (!background.isStream) return { ...background.queued, status: "cancelled" };
    // Cancelled before anything came: the stream still says it began and ended.
    const translator = served.translator ?? background.stream(background.queued.model, "chat");
    for (const event of backgroundEvents(translator.cancel())) runs.append(background.id, event);
    return translator.result ?? { ...background.queued, status: "cancelled" };
  }
  return {
    ...background.queued,
    status: "failed",
    error: responseErrorOf(asGatewayError(error, signal)),
  };
}

function asGatewayError(error: unknown, signal: AbortSignal): GatewayError {
  const cut = cutReason(signal);
  if (cut !== undefined) return cut;
  if (error instanceof GatewayError) return error;
  return new InternalError("The background response failed inside the gateway.", { cause: error });
}
