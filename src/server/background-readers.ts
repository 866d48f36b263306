// What readers of a background response use (GET, GET ?stream=true, POST /cancel): the kept state as a reader sees
// it, its events written as SSE (followed live here, or read from the store every heartbeat when another replica runs
// it), and the cancel. The run itself is background-responses.ts.
import type { FastifyReply, FastifyRequest } from "fastify";
import { InvalidRequestError, ResourceNotFoundError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import {
  BACKGROUND_HEARTBEAT_MS,
  backgroundView,
  cancelledEndEvent,
  isEndingEvent,
  isTerminal,
  stoppedRunEvents,
  unreadableRunEvent,
} from "../protocols/responses/background.ts";
import { BEFORE_WRITE } from "../protocols/responses/kept-read-options.ts";
import { type KeptResponses, keptToken } from "../protocols/responses/kept-responses.ts";
import type { ResponseObject } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import { KeepAlive, SSE_KEEP_ALIVE } from "./stream-keepalive.ts";
import { sseHeaders } from "./write-stream.ts";

/** Times a cancel reads the kept state again when the running replica changed it meanwhile. */
const MAX_CANCEL_ATTEMPTS = 5;

/**
 * Writes followed events as an SSE answer until they end or the reader leaves (then `followed` aborts, which ends
 * the following; the run goes on: a background response outlives its client). A silence of `keepAliveMs` (a run
 * queued, or its model reasoning unseen) gets a keep-alive, as a stream answered directly does (stream-keepalive.ts).
 */
export async function writeEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  events: AsyncGenerator<string>,
  followed: AbortController,
  keepAliveMs: number,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { ...sseHeaders(request.headers.connection), "x-request-id": request.id });
  const onClose = (): void => followed.abort();
  raw.on("close", onClose);
  const keepAlive = keepAliveMs > 0 ? new KeepAlive(raw, keepAliveMs, SSE_KEEP_ALIVE) : undefined;
  keepAlive?.start();
  try {
    for await (const event of events) {
      if (raw.destroyed) break;
      keepAlive?.wrote();
      if (!raw.write(event)) await new Promise<void>((resolve) => raw.once("drain", resolve).once("close", resolve));
    }
  } finally {
    keepAlive?.stop();
    raw.off("close", onClose);
    if (!raw.destroyed) raw.end();
  }
}

/**
 * The kept events of a response run elsewhere (another replica), from index `from` on: read again every
 * BACKGROUND_HEARTBEAT_MS until the response is finished, or its run is stale (then ended with `error` and
 * `response.failed`, as GET shows it failed), or it was cancelled from elsewhere before its run ended its events
 * (then ended with `response.incomplete`, as a cancelled run ends), or it can no longer be read (an `error` event:
 * the store unreachable, or the response deleted), or the reader left. Each read asks
 * only for the events after the last one it has (`read(next)`: reading the whole list each second read O(n^2) over
 * a long run).
 */
export async function* followKept(
  id: string,
  read: (eventsFrom: number) => Promise<StoredResponse | undefined>,
  from: number,
  nowMs: () => number,
  signal: AbortSignal,
): AsyncGenerator<string> {
  let next = from;
  let hasEnded = false;
  for (;;) {
    let stored: StoredResponse | undefined;
    try {
      stored = await read(next);
    } catch (error) {
      // The store cannot be read (Redis gone): said in the stream, as GET would say it; not a clean end.
      yield unreadableRunEvent(toGatewayError(error), next);
      return;
    }
    if (stored === undefined) {
      yield unreadableRunEvent(deletedWhileFollowed(id), next);
      return;
    }
    for (const event of stored.events ?? []) {
      next += 1;
      if (isEndingEvent(event)) hasEnded = true;
      yield event;
    }
    if (stored.response.status === "cancelled" && !hasEnded) {
      // Cancelled from elsewhere while its run had not ended its events (or never will: its replica died): ended as
      // a cancelled run ends, numbered after the kept events, unless the reader resumed after that (or a kept end).
      const at = next > from ? next : await cancelledEndAt(read, from);
      if (at !== undefined && at >= from) yield cancelledEndEvent(stored.response, at);
      return;
    }
    const view = backgroundView(stored, false, nowMs());
    if (isTerminal(view.status) && !isTerminal(stored.response.status)) {
      // Stale: its replica died before the run ended it. Ended as a failed run ends, not left without an end.
      yield* stoppedRunEvents(stored.response, next);
      return;
    }
    if (isTerminal(view.status) || signal.aborted) return;
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

/**
 * Where a cancelled response's made-up end goes when the reader resumed with nothing left to read (`from` on): after
 * all its kept events; undefined when they have an end of their own (the last event) or cannot be read.
 */
async function cancelledEndAt(
  read: (eventsFrom: number) => Promise<StoredResponse | undefined>,
  from: number,
): Promise<number | undefined> {
  if (from === 0) return 0;
  try {
    const events = (await read(0))?.events;
    return events === undefined || events.some(isEndingEvent) ? undefined : events.length;
  } catch {
    return undefined;
  }
}

/** A followed response gone from the store (deleted, or evicted) while its stream was being followed. */
function deletedWhileFollowed(id: string): ResourceNotFoundError {
  return new ResourceNotFoundError(
    `Response '${id}' was deleted (or expired) while its stream was being followed; nothing more of it can be read.`,
    { param: "response_id", code: "response_not_found" },
  );
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
    const after = await kept.get(id, undefined, BEFORE_WRITE);
    return after === undefined ? { ...view, status: "cancelled" } : viewOf(runtime, after);
  }
  // Run on another replica: marked cancelled in the store, only if it is still what was read (its run may have
  // finished meanwhile: then that answer stands, as cancelling a finished response changes nothing).
  let current = stored;
  for (let attempt = 0; attempt < MAX_CANCEL_ATTEMPTS; attempt++) {
    const cancelled: ResponseObject = { ...current.response, status: "cancelled" };
    const written = await kept.putIfUnchanged(
      { ...current, response: cancelled, heartbeatAtMs: runtime.clock.now() },
      keptToken(current),
    );
    if (written !== undefined) return cancelled;
    const after = await kept.get(id, undefined, BEFORE_WRITE);
    if (after === undefined) {
      throw new ResourceNotFoundError(
        `Response with id '${id}' not found: it was deleted while it was being cancelled.`,
        {
          param: "response_id",
          code: "response_not_found",
        },
      );
    }
    const afterView = viewOf(runtime, after);
    if (isTerminal(afterView.status)) return afterView;
    current = after;
  }
  throw new ServiceUnavailableError("The response kept changing while it was being cancelled; try again.");
}
