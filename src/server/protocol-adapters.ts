// The Responses and Messages front doors: thin adapters around the one pipeline. The request is translated into a
// Chat Completions body, served by the chat pipeline (routing, limits, failover, stream continuation), and the
// answer translated back: JSON at once, or stream chunks through the protocol's stream translator. A Responses
// request may also be served natively by a provider marked `responses_api: native` (its answer relayed).
import type { FastifyReply, FastifyRequest } from "fastify";
import { ClientAbortedError, type GatewayError, InternalError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { cacheRequest, withoutAnswerCache } from "../pipeline/cache-control.ts";
import { type ChatPipelineResult, handleChatRequest } from "../pipeline/chat-request.ts";
import type { EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { StreamEnding } from "../pipeline/handle-request.ts";
import { cutReason } from "../pipeline/open-requests.ts";
import { parseAnswerBody, type RecordRelease } from "../pipeline/pipeline-types.ts";
import { publishRefusal } from "../pipeline/refusal.ts";
import type { ChatRequestBody } from "../protocols/chat-completions.ts";
import { requestTrace } from "../trace-context.ts";
import type { ForwardRequest, NativeCall, UpstreamApi } from "../upstream/forward-types.ts";

type ForwardRecall = ForwardRequest["recallToolCallExtras"];

import { answerInBackground, type BackgroundExchange } from "./background-responses.ts";
import { toHeaderValue } from "./header-value.ts";
import { EarlyCommit, KeepAlive, MESSAGES_KEEP_ALIVE, SSE_KEEP_ALIVE } from "./stream-keepalive.ts";
import { clientGoneSignal, flushWrites, pumpStream, sseHeaders } from "./write-stream.ts";

/** A protocol's stream translator: fed chat chunks, it returns the SSE text to write. */
interface StreamTranslator {
  push(chunk: unknown): string;
  finish(): string;
  fail(error: GatewayError): string;
  /**
   * The translator ended the answer itself (Messages: a stop sequence it matched): StreamAnswer.endAnswer. Required, so
   * that a wrapper around a translator (tool-call-extras-door.ts) cannot drop it unseen.
   */
  readonly hasEndedAnswer: boolean;
}

/** One request of a protocol, translated: the chat body to serve, and how to answer in the protocol. */
export interface Exchange {
  readonly chatBody: ChatRequestBody;
  /** Headers of the door's own for an answer translated from chat (beside the pipeline's `x-gateway-*`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** The request in its own protocol, for candidates that speak it natively. */
  readonly native?: NativeCall | undefined;
  /** A Gemini or OpenRouter candidate's look-up of what the door kept for the history (ForwardRequest.recallToolCallExtras). */
  readonly recallToolCallExtras?: ForwardRecall;
  /**
   * The upstream's answer (a chat completion, or with `api` not `chat` the protocol's own) -> the protocol's JSON
   * answer; `servedModel` is the upstream id the gateway called.
   */
  answer(upstreamAnswer: unknown, servedModel: string, api: UpstreamApi): object;
  /**
   * `promptTokensEstimate`: the pipeline's estimate of the prompt for the serving deployment (StreamAnswer), the one
   * an estimated usage at the end carries too.
   */
  stream(servedModel: string, api: UpstreamApi, promptTokensEstimate: number): StreamTranslator;
  /**
   * After a stream ended (its translator finished or failed), before its last events are written: to keep it. What
   * it returns is written before them (an SSE comment saying what could not be kept, or nothing).
   */
  streamEnded?(isSuccess: boolean): Promise<string>;
  /** After a JSON answer was made, before it is sent: to keep it. Headers it returns go on the answer. */
  answered?(answer: object): Promise<Readonly<Record<string, string>> | undefined>;
  /**
   * After `answered` or `streamEnded`: the store failed to keep the answer (it reported that itself, once per outage):
   * the request's record says so (`isAnswerNotKept`), as it does when keeping threw.
   */
  readonly isAnswerNotKept?: () => boolean;
  /** `background: true` (Responses): answered at once, served in the gateway (background-responses.ts). */
  readonly background?: BackgroundExchange | undefined;
  /**
   * The answer cache is left out, lookup and store (Messages' `max_tokens: 0` pre-warm: a kept answer would keep it
   * from the provider, whose prompt cache it is sent to keep warm).
   */
  readonly isAnswerCacheSkipped?: boolean;
  /** Responses' `truncation: "auto"` (RequestContext.truncatesToFit). */
  readonly truncatesToFit?: boolean;
}

export interface ProtocolAdapter {
  /** The chat pipeline under the door's own name and protocol (`responses`, `messages`): records and metrics carry it. */
  readonly endpoint: EndpointSpec;
  /** `client`: the name of the request's client key (null: unnamed, or no key), for what is kept per client. */
  begin(body: unknown, client: string | null): Exchange | Promise<Exchange>;
}

export function protocolHandler(runtime: GatewayRuntime, adapter: ProtocolAdapter) {
  return async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const receivedAtMs = runtime.clock.now();
    const trace = requestTrace(request.headers.traceparent, request.headers.tracestate, runtime.traceSampler);
    // Open from here, before the door's translation (a Responses request may wait in it for the kept store): an exit
    // that ends every open request ends this one too, answered and recorded, instead of exiting under it.
    const clientGone = clientGoneSignal(reply.raw, runtime.openRequests);
    let exchange: Exchange;
    try {
      exchange = await unlessCut(adapter.begin(request.body, request.clientName), clientGone.signal);
    } catch (error) {
      // Refused in translation (a built-in tool, a missing `max_tokens`, an unknown `previous_response_id`), or
      // cut by the exit: the request still leaves its record.
      const refusal = publishRefusal(
        runtime,
        {
          requestId: request.id,
          endpoint: adapter.endpoint.name,
          clientProtocol: adapter.endpoint.protocol,
          startedAtMs: receivedAtMs,
          body: request.body,
          supportsStream: true,
          client: request.clientName ?? undefined,
          signal: clientGone.signal,
          trace,
        },
        error,
      );
      clientGone.stop();
      throw refusal;
    }
    if (exchange.background !== undefined) {
      // Its own open request from here on (no client socket ends it); this one is settled.
      const controller = runtime.openRequests.open();
      clientGone.stop();
      const call = {
        endpoint: adapter.endpoint,
        chatBody: exchange.chatBody,
        native: exchange.native,
        recallToolCallExtras: exchange.recallToolCallExtras,
        receivedAtMs,
        truncatesToFit: exchange.truncatesToFit,
      };
      await answerInBackground(runtime, request, reply, call, exchange.background, controller);
      return;
    }
    const sessionId = request.headers["x-session-id"];
    const keepAliveMs = runtime.snapshot.config.server.streamKeepaliveMs;
    const early =
      keepAliveMs > 0 && exchange.chatBody.stream === true
        ? new EarlyCommit(reply.raw, keepAliveMs, keepAliveOf(adapter), knownDoorHeaders(exchange))
        : undefined;
    let result: ChatPipelineResult;
    try {
      const pending = handleChatRequest(runtime, adapter.endpoint, exchange.chatBody, {
        requestId: request.id,
        clientProtocol: adapter.endpoint.protocol,
        receivedAtMs,
        signal: clientGone.signal,
        sessionId: typeof sessionId === "string" ? sessionId : undefined,
        client: request.clientName ?? undefined,
        trace,
        log: request.log,
        cacheDirective:
          exchange.isAnswerCacheSkipped === true
            ? withoutAnswerCache(
                cacheRequest(request.headers),
                "a max_tokens of 0 (a pre-warm) is never answered from the cache",
              )
            : cacheRequest(request.headers),
        native: exchange.native,
        recallToolCallExtras: exchange.recallToolCallExtras,
        earlyCommit: early,
        truncatesToFit: exchange.truncatesToFit,
        // The record waits for the door's keeping, so that it can say whether the answer was kept; else for its translation.
        holdsRecord: exchange.answered !== undefined,
        writesBeforeRecord: true,
        flushWrites: () => flushWrites(reply.raw),
      });
      result =
        early === undefined
          ? await pending
          : await early.wait(pending, (known) => writeHead(request, reply, known), runtime.clock.now);
    } catch (error) {
      clientGone.stop();
      if (early?.isCommitted === true) {
        // The head went out: the failure is the stream's last event, in the door's protocol, as after a commit.
        early.fail(request, error, (failure) => exchange.stream(exchange.chatBody.model, "chat", 0).fail(failure));
        return;
      }
      if (!(error instanceof ClientAbortedError)) throw error;
      reply.hijack();
      reply.raw.destroy();
      return;
    }
    const servedModel = result.headers["x-gateway-model"] ?? "";
    // A native provider got the request as it came: the door's notes about its translation do not apply.
    let answerHeaders =
      exchange.headers === undefined || result.api !== "chat"
        ? result.headers
        : { ...result.headers, ...exchange.headers };
    if (result.kind === "json" && early?.isCommitted === true) {
      // Not an answer a stream request gets (its stream, or an error thrown): said in-stream.
      clientGone.stop();
      const unsent = new InternalError("The answer could not be sent as a stream.");
      result.releaseRecord?.({ failure: unsent });
      early.fail(request, unsent, (failure) => exchange.stream(servedModel, "chat", 0).fail(failure));
      return;
    }
    if (result.kind === "json") {
      let answer: object;
      let isAnswerNotKept = false;
      let failure: GatewayError | undefined;
      try {
        answer = exchange.answer(parseAnswerBody(result.bodyText), servedModel, result.api);
        // Still an open request until it is kept: an exit (a second signal) waits for an asynchronous (Redis) save
        // instead of exiting under it.
        const kept = await keptOrCut(request, clientGone.signal, result.releaseRecord, async () =>
          exchange.answered?.(answer),
        );
        isAnswerNotKept = !kept.isKept || exchange.isAnswerNotKept?.() === true;
        if (kept.value !== undefined) answerHeaders = { ...answerHeaders, ...kept.value };
      } catch (error) {
        // An answer the door cannot translate (not JSON: a 502) is what the client gets, and what the record says.
        failure = toGatewayError(error);
        throw error;
      } finally {
        clientGone.stop();
        result.releaseRecord?.({ isAnswerNotKept, failure });
      }
      reply.code(result.status).headers(answerHeaders).type("application/json").send(answer);
      return;
    }
    // The record waits for the door's keeping at the end, so it can say whether the answer was kept (holdRecord).
    const releaseRecord = exchange.streamEnded === undefined ? undefined : result.holdRecord?.();
    try {
      let ending: StreamEnding | undefined;
      let translator: ReturnType<typeof exchange.stream> | undefined;
      try {
        translator = exchange.stream(servedModel, result.api, result.promptTokensEstimate);
        const streamTranslator = translator;
        // Header values set on the raw response bypass Fastify's onSend check: make them safe here (a model id
        // from discovery may hold characters a header cannot).
        const gatewayHeaders = Object.fromEntries(
          Object.entries(answerHeaders).map(([name, value]) => [name, toHeaderValue(value)]),
        );
        if (early?.isCommitted !== true) writeHead(request, reply, gatewayHeaders);
        // A cache hit found after an early head: the stream says it first (its head could not).
        let unsaid = early?.unsaid(answerHeaders) ?? "";
        ending = await pumpStream(
          reply.raw,
          result.events,
          (chunks) => {
            let text = unsaid;
            unsaid = "";
            for (const chunk of chunks) text += streamTranslator.push(chunk.json);
            // Told before the next batch is pulled: a failure the relay reads next is after the answer's end.
            if (streamTranslator.hasEndedAnswer === true) result.endAnswer();
            return text;
          },
          {
            maxDurationMs: runtime.snapshot.config.routing.maxStreamDurationMs,
            keepAlive:
              early?.keepAlive ??
              (keepAliveMs > 0 ? new KeepAlive(reply.raw, keepAliveMs, keepAliveOf(adapter)) : undefined),
            // A bug in the translator mid-stream: its own in-stream 500 (what it already wrote is closed in order).
            lastEvent: (error) => {
              const failure = toGatewayError(error);
              result.failedBy?.(failure);
              return streamTranslator.fail(failure);
            },
          },
        );
      } catch (error) {
        // The gateway's own fault, not a client that left: its record says so (`cancel` below publishes it).
        if (!(error instanceof ClientAbortedError)) result.failedBy?.(toGatewayError(error));
        // Thrown before the stream's writer took over (it cuts the response itself once it has), after an early head:
        // the reply is hijacked, so nothing else would end it, and its keep-alives would go on while the client waits.
        // A stream its writer ended with its in-stream error (pumpStream's lastEvent) is not ended again.
        if (early?.isCommitted !== true || reply.raw.destroyed || reply.raw.writableEnded) throw error;
        early.fail(request, error, (failure) => exchange.stream(servedModel, "chat", 0).fail(failure));
        return;
      } finally {
        // Whatever threw above, the stream is settled: upstream hung up on, concurrency slots freed, record published.
        if (ending === undefined) {
          try {
            await result.cancel();
          } finally {
            clientGone.stop();
          }
        }
      }
      let isKept = true;
      let tail: string;
      try {
        tail = ending.isSuccess ? translator.finish() : ending.error !== undefined ? translator.fail(ending.error) : "";
        // Kept before the client reads `response.completed`, so a follow-up request finds it.
        const isSuccess = ending.isSuccess;
        const kept = await keptOrCut(request, clientGone.signal, releaseRecord, async () =>
          exchange.streamEnded?.(isSuccess),
        );
        isKept = kept.isKept && exchange.isAnswerNotKept?.() !== true;
        tail = (kept.value ?? "") + tail;
      } catch (error) {
        // The reply is hijacked: nothing else would end it, and the client would wait for its own timeout.
        reply.raw.destroy();
        throw error;
      } finally {
        // Still an open request until it is kept: an exit (a second signal) waits for an asynchronous (Redis) save.
        clientGone.stop();
        releaseRecord?.({ isAnswerNotKept: !isKept });
      }
      if (!reply.raw.destroyed) reply.raw.end(tail);
    } finally {
      // Whatever ended the stream before its keeping (an exception, a client gone), its record is published.
      releaseRecord?.();
    }
  };
}

/**
 * What a door keeps of an answer already made (a Responses answer for `previous_response_id`, a tool call's
 * `extra_content`). A throw there (a store failing past its own error handling, a bug) loses only what was kept: it is
 * logged with the request, and the client still gets its answer whole. It turned a made JSON answer into a 500 and a
 * finished stream into a cut connection (its `response.completed` never written).
 */
async function keptOrLogged<T>(
  request: FastifyRequest,
  keep: () => Promise<T>,
): Promise<{ readonly value: T | undefined; readonly isKept: boolean }> {
  try {
    return { value: await keep(), isKept: true };
  } catch (error) {
    request.log.error(
      { err: error },
      "the answer was sent, but what the door keeps of it (a Responses answer for previous_response_id, a tool call's extra_content) could not be kept",
    );
    return { value: undefined, isKept: false };
  }
}

/**
 * keptOrLogged for an answer whose record waits for its keeping (`release`): the gateway cutting the request meanwhile
 * (its exit: a second signal, the shutdown timeout) publishes the record at once, marked not kept. The exit waits for
 * the requests it ends for half a second, not for a store that hangs (up to responses.store.write_timeout_ms): the
 * record, the answer's usage and cost for the request log and the client's budgets, was lost with the process.
 */
async function keptOrCut<T>(
  request: FastifyRequest,
  signal: AbortSignal,
  release: RecordRelease | undefined,
  keep: () => Promise<T>,
): Promise<{ readonly value: T | undefined; readonly isKept: boolean }> {
  if (release === undefined) return keptOrLogged(request, keep);
  // A client that left is no exit: the keeping goes on and its record says how it went.
  const onCut = (): void => {
    if (cutReason(signal) !== undefined) release({ isAnswerNotKept: true });
  };
  signal.addEventListener("abort", onCut);
  onCut();
  try {
    return await keptOrLogged(request, keep);
  } finally {
    signal.removeEventListener("abort", onCut);
  }
}

/**
 * The door's own answer headers (`x-gateway-dropped-tools`), known before any candidate answers when every candidate
 * is sent the translation they describe: not when a native provider may be (it gets the request as it came, and
 * its answer goes without them).
 */
function knownDoorHeaders(exchange: Exchange): Record<string, string> {
  return exchange.native === undefined && exchange.headers !== undefined ? { ...exchange.headers } : {};
}

/** The door's keep-alive: Anthropic's `ping` event on Messages, an SSE comment on Responses. */
function keepAliveOf(adapter: ProtocolAdapter): string {
  return adapter.endpoint.protocol === "anthropic-messages" ? MESSAGES_KEEP_ALIVE : SSE_KEEP_ALIVE;
}

/** The stream's status line and headers, written raw: the reply is hijacked first. */
function writeHead(request: FastifyRequest, reply: FastifyReply, headers: Record<string, string>): void {
  reply.hijack();
  // `request-id` too when set (Messages routes, build-server.ts): Fastify's are not written on a hijacked reply.
  const anthropicRequestId = reply.getHeader("request-id");
  reply.raw.writeHead(200, {
    ...sseHeaders(request.headers.connection),
    "x-request-id": request.id,
    ...(anthropicRequestId === undefined ? {} : { "request-id": anthropicRequestId }),
    ...headers,
  });
}

/**
 * The door's translation, unless the gateway's exit cuts the request first (open-requests.ts): then it rejects at
 * once with the exit's error, not waiting for a lookup that may hang on an unreachable store. A client that left
 * (an abort without that error) still waits for it, as before: the pipeline then ends the request.
 */
function unlessCut(begun: Exchange | Promise<Exchange>, signal: AbortSignal): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      const cut = cutReason(signal);
      if (cut !== undefined) reject(cut);
    };
    onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve(begun)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}
