// Responses background mode (`background: true`), the server's side: the request is answered at once with the
// queued response (or, with `stream: true`, with its events as they come), while the one pipeline serves it in this
// process (same routing, budgets, failover and record) under a signal of its own: no client socket ends it, a
// cancel does (POST /v1/responses/{id}/cancel), and so does the gateway's exit (it is among the open requests).
// Its state is kept in the kept-responses store (queued -> in_progress -> completed / incomplete / failed /
// cancelled), rewritten every BACKGROUND_HEARTBEAT_MS while it runs, so another replica reading the same store
// sees it, replays its events and passes a cancel on.
import type { FastifyReply, FastifyRequest } from "fastify";
import {
  ClientAbortedError,
  GatewayError,
  InternalError,
  InvalidRequestError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import { BackgroundCancel } from "../pipeline/background-runs.ts";
import { cacheRequest } from "../pipeline/cache-control.ts";
import type { EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { type ChatPipelineResult, handleChatRequest } from "../pipeline/handle-request.ts";
import { cutReason } from "../pipeline/open-requests.ts";
import type { ChatRequestBody } from "../protocols/chat-completions.ts";
import {
  BACKGROUND_HEARTBEAT_MS,
  backgroundEvents,
  backgroundView,
  isTerminal,
} from "../protocols/responses/background.ts";
import type { KeptResponses } from "../protocols/responses/kept-responses.ts";
import { type ResponseObject, responseErrorOf } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import type { NativeCall, UpstreamApi } from "../upstream/forward-types.ts";
import { sseHeaders } from "./write-stream.ts";

/** A translator of the Responses door (chat chunks or a native provider's events -> SSE text). */
interface ResponsesTranslator {
  push(chunk: unknown): string;
  finish(): string;
  fail(error: GatewayError): string;
  readonly result: ResponseObject | undefined;
}

/** What the Responses adapter gives the background run (protocol-adapters.ts). */
export interface BackgroundExchange {
  readonly id: string;
  /** The response as first answered: `queued`, no output. */
  readonly queued: ResponseObject;
  readonly isStream: boolean;
  answer(upstreamAnswer: unknown, servedModel: string, api: UpstreamApi): ResponseObject;
  stream(servedModel: string, api: UpstreamApi): ResponsesTranslator;
  /** Writes the response's state to the kept store; `isFinal`: its end (then it joins its conversation). */
  keep(response: ResponseObject, events: readonly string[] | undefined, isFinal: boolean): Promise<void>;
  /** The kept state (to see a cancel another replica wrote). */
  read(): Promise<StoredResponse | undefined>;
}

/** The pipeline's request, as the door would pass it. */
export interface BackgroundPipelineCall {
  readonly endpoint: EndpointSpec;
  readonly chatBody: ChatRequestBody;
  readonly native: NativeCall | undefined;
  readonly receivedAtMs: number;
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
  try {
    // Kept before it is answered: the client's first GET must find it.
    await background.keep(background.queued, background.isStream ? [] : undefined, false);
  } catch (error) {
    runtime.openRequests.close(controller);
    throw error;
  }
  runtime.backgroundRuns.start(background.id, controller);
  runBackground(runtime, request, call, background, controller).catch((error: unknown) => {
    request.log.error({ err: error, responseId: background.id }, "background response: the run failed");
  });
  if (!background.isStream) {
    reply.code(200).header("x-request-id", request.id).type("application/json").send(background.queued);
    return;
  }
  const followed = new AbortController();
  const events = runtime.backgroundRuns.follow(background.id, 0, followed.signal);
  await writeEvents(request, reply, events ?? emptyEvents(), followed);
}

async function* emptyEvents(): AsyncGenerator<string> {}

/**
 * Writes followed events as an SSE answer until they end or the reader leaves (then `followed` aborts, which ends
 * the following; the run goes on: a background response outlives its client).
 */
export async function writeEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  events: AsyncGenerator<string>,
  followed: AbortController,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { ...sseHeaders(request.headers.connection), "x-request-id": request.id });
  const onClose = (): void => followed.abort();
  raw.on("close", onClose);
  try {
    for await (const event of events) {
      if (raw.destroyed) break;
      if (!raw.write(event)) await new Promise<void>((resolve) => raw.once("drain", resolve).once("close", resolve));
    }
  } finally {
    raw.off("close", onClose);
    if (!raw.destroyed) raw.end();
  }
}

/**
 * The kept events of a response run elsewhere (another replica), from index `from` on: read again every
 * BACKGROUND_HEARTBEAT_MS until the response is finished, or its run is stale, or the reader left.
 */
export async function* followKept(
  read: () => Promise<StoredResponse | undefined>,
  from: number,
  nowMs: () => number,
  signal: AbortSignal,
): AsyncGenerator<string> {
  let next = from;
  for (;;) {
    const stored = await read();
    if (stored === undefined) return;
    const events = stored.events ?? [];
    while (next < events.length) {
      const event = events[next];
      next += 1;
      if (event !== undefined) yield event;
    }
    if (isTerminal(backgroundView(stored, false, nowMs()).status) || signal.aborted) return;
    // The abort listener goes with its round: one added per heartbeat and never removed piled up on the reader's
    // signal (Node's "possible EventTarget memory leak" warning after 11 s of following another replica's run).
    await new Promise<void>((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, BACKGROUND_HEARTBEAT_MS);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** One background run, from the pipeline to its final state kept. Long: its steps share the writes' order. */
async function runBackground(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  call: BackgroundPipelineCall,
  background: BackgroundExchange,
  controller: AbortController,
): Promise<void> {
  const runs = runtime.backgroundRuns;
  const { id } = background;
  const streamEvents = (): readonly string[] | undefined => (background.isStream ? runs.events(id) : undefined);
  const running: ResponseObject = { ...background.queued, status: "in_progress" };
  // Every write of the state goes through this chain: a heartbeat never lands after the final state.
  let writes: Promise<void> = Promise.resolve();
  const enqueue = (write: () => Promise<void>): Promise<void> => {
    writes = writes.then(write).catch((error: unknown) => {
      request.log.warn({ err: error, responseId: id }, "background response: its state could not be kept");
    });
    return writes;
  };
  const beat = async (): Promise<void> => {
    const kept = await background.read();
    // Cancelled on another replica (cancel wrote it to the store), or deleted there (or gone from the bounded
    // store): end the run here; writing it again would bring back what the client deleted.
    if (kept === undefined || kept.response.status === "cancelled") {
      controller.abort(new BackgroundCancel());
      return;
    }
    await background.keep(running, streamEvents(), false);
  };
  void enqueue(() => background.keep(running, streamEvents(), false));
  const heartbeat = setInterval(() => void enqueue(beat), BACKGROUND_HEARTBEAT_MS);
  // Whatever throws on the way (a translator's failure events, say), the run ends: followers and a waiting cancel are
  // released and the exit does not wait out its grace for it.
  try {
    let final: ResponseObject;
    try {
      final = await servedResponse(runtime, request, call, background, controller.signal);
    } catch (error) {
      final = endedResponse(background, error, controller.signal);
      if (background.isStream && final.status === "failed") {
        // A follower gets the failure as the stream it reads would end: `error`, then `response.failed`.
        const translator = background.stream(background.queued.model, "chat");
        for (const event of backgroundEvents(translator.fail(asGatewayError(error, controller.signal)))) {
          runs.append(id, event);
        }
      }
    } finally {
      clearInterval(heartbeat);
    }
    runs.endEvents(id);
    const finished: ResponseObject = { ...final, background: true };
    await enqueue(async () => {
      // A cancel written by another replica after the run ended stays: the client was told it is cancelled.
      const kept = await background.read();
      // Deleted meanwhile (on another replica): it stays deleted.
      if (kept === undefined) return;
      const response = kept.response.status === "cancelled" ? { ...finished, status: "cancelled" as const } : finished;
      await background.keep(response, streamEvents(), true);
    });
  } finally {
    runs.finish(id);
    // Only now: an exit waits for the final state's write (a Redis write is asynchronous).
    runtime.openRequests.close(controller);
  }
}

/** The pipeline's answer as a finished response; throws when the pipeline ended without one. */
async function servedResponse(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  call: BackgroundPipelineCall,
  background: BackgroundExchange,
  signal: AbortSignal,
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
  });
  const servedModel = result.headers["x-gateway-model"] ?? "";
  if (result.kind === "json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.bodyText) as unknown;
    } catch (error) {
      throw new UpstreamUnavailableError("The upstream answer is not JSON.", { cause: error });
    }
    return background.answer(parsed, servedModel, result.api);
  }
  const translator = background.stream(servedModel, result.api);
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
        for (const event of backgroundEvents(tail)) runs.append(background.id, event);
        if (translator.result === undefined) throw ending.error ?? new ClientAbortedError();
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

/** The state a run ended in without an answer: cancelled, ended by the exit, or failed. */
function endedResponse(background: BackgroundExchange, error: unknown, signal: AbortSignal): ResponseObject {
  if (signal.aborted && signal.reason instanceof BackgroundCancel) return { ...background.queued, status: "cancelled" };
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

/** `GET /v1/responses/{id}?stream=true`: only a background response created with `stream: true` has events. */
export function notReplayable(id: string): InvalidRequestError {
  return new InvalidRequestError(
    `Response '${id}' cannot be streamed: only a response created with \`background: true\` and \`stream: true\` keeps its events.`,
    { param: "stream", code: "invalid_value" },
  );
}

/** What a reader of a kept response sees (a stale run is failed: background.ts). */
export function viewOf(runtime: GatewayRuntime, stored: StoredResponse): ResponseObject {
  return backgroundView(stored, runtime.backgroundRuns.has(stored.response.id), runtime.clock.now());
}

/**
 * `POST /v1/responses/{id}/cancel`. As OpenAI: a response not created in background is refused; a finished one is
 * answered as it is (cancelling twice changes nothing); a running one is cancelled here when this process runs it
 * (its upstream call aborted through the pipeline), otherwise marked cancelled in the store, which its run reads
 * within BACKGROUND_HEARTBEAT_MS and ends on.
 */
export async function cancelBackground(
  runtime: GatewayRuntime,
  kept: KeptResponses,
  stored: StoredResponse,
): Promise<ResponseObject> {
  const id = stored.response.id;
  if (stored.response.background !== true) {
    throw new InvalidRequestError(
      `Cannot cancel a synchronous response: '${id}' was not created with \`background: true\`.`,
      { param: "response_id", code: "invalid_value" },
    );
  }
  const view = viewOf(runtime, stored);
  if (isTerminal(view.status)) return view;
  if (await runtime.backgroundRuns.cancel(id)) {
    const after = await kept.get(id);
    return after === undefined ? { ...view, status: "cancelled" } : viewOf(runtime, after);
  }
  const cancelled: ResponseObject = { ...stored.response, status: "cancelled" };
  await kept.put({ ...stored, response: cancelled, heartbeatAtMs: runtime.clock.now() });
  return cancelled;
}
