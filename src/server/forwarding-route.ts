// The OpenAI front door (Chat Completions, legacy completions, embeddings, audio transcriptions and translations,
// text to speech, image generation and edits) and the rerank door (the shape Cohere, Jina and vLLM share): an
// adapter between Fastify and the pipeline. It passes the parsed body in and writes the JSON answer (speech: the
// audio's bytes), or the stream as OpenAI SSE with `[DONE]` at the end and, after a failure, one final
// `data: {"error":...}` event (docs/streaming.md).
import type { FastifyReply, FastifyRequest } from "fastify";
import { ClientAbortedError, type GatewayError, InternalError, InvalidRequestError } from "../errors/gateway-error.ts";
import { renderError, toGatewayError } from "../errors/render-error.ts";
import { cacheRequest } from "../pipeline/cache-control.ts";
import type { EndpointSpec } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { AudioAnswer, PipelineResult, StreamEnding } from "../pipeline/handle-request.ts";
import type { AudioRelayEnd } from "../streaming/relay-audio.ts";
import { SSE_DONE, sseData } from "../streaming/sse-format.ts";
import { requestTrace } from "../trace-context.ts";
import { refusedBody } from "./body-refusals.ts";
import { toHeaderValue } from "./header-value.ts";
import { sharedLoad } from "./lazy-routes.ts";
import { isMultipartRequest, uploadExpected } from "./multipart-body.ts";
import { asksForEvents, EarlyCommit, KeepAlive, SSE_KEEP_ALIVE } from "./stream-keepalive.ts";
import { clientGoneSignal, flushWrites, pumpStream, sseHeaders } from "./write-stream.ts";

type HandleRequest = typeof import("../pipeline/handle-request.ts").handleRequest;

/**
 * The pipeline's per-request modules (planning, attempts' relay, the record, ~50 KB of the bundle) are imported at the
 * first request, not at start: an idle gateway (health checks only) never runs them (bench/README.md, section 32).
 * One import for concurrent first requests; a failed one answers 500 and is tried again at the next request. Once
 * loaded, the function is called directly.
 */
let loadedHandleRequest: HandleRequest | undefined;
const loadPipeline = sharedLoad(async () => {
  try {
    loadedHandleRequest = (await import("../pipeline/handle-request.ts")).handleRequest;
    return loadedHandleRequest;
  } catch (error) {
    throw new InternalError("The request pipeline could not be loaded; retry the request.", { cause: error });
  }
});

export function forwardingHandler(endpoint: EndpointSpec, runtime: GatewayRuntime) {
  const clientProtocol = endpoint.protocol;
  return async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (endpoint.isMultipart && !isMultipartRequest(request)) {
      // Refused for its body's type, as the parsers refuse one: recorded by the error handler (body-refusals.ts).
      throw refusedBody(new InvalidRequestError(uploadExpected(endpoint), { code: "invalid_content_type" }));
    }
    // Taken before a first request waits for the pipeline's import: the client waited it too, so its record (latency,
    // time to first token) and its routing.total_timeout_ms count it (they left it out: a few ms, where the import
    // took tens). Later requests leave the time to the pipeline, as before.
    const receivedAtMs = loadedHandleRequest === undefined ? runtime.clock.now() : undefined;
    const clientGone = clientGoneSignal(reply.raw, runtime.openRequests);
    const sessionId = request.headers["x-session-id"];
    const early = earlyCommitFor(endpoint, request.body, reply, runtime.snapshot.config.server.streamKeepaliveMs);
    let result: PipelineResult;
    try {
      const handleRequest = loadedHandleRequest ?? (await loadPipeline());
      const pending = handleRequest(runtime, endpoint, request.body, {
        requestId: request.id,
        clientProtocol,
        receivedAtMs,
        signal: clientGone.signal,
        sessionId: typeof sessionId === "string" ? sessionId : undefined,
        client: request.clientName ?? undefined,
        trace: requestTrace(request.headers.traceparent, request.headers.tracestate, runtime.traceSampler),
        log: request.log,
        cacheDirective: cacheRequest(request.headers),
        allowsPartialAnswer: isPartialAllowed(request.headers["x-gateway-partial"]),
        earlyCommit: early,
        // A JSON answer is written before its record's subscribers run (releaseRecord below).
        writesBeforeRecord: true,
        flushWrites: () => flushWrites(reply.raw),
      });
      result =
        early === undefined
          ? await pending
          : await early.wait(pending, (known) => writeSseHead(request, reply, known), runtime.clock.now);
    } catch (error) {
      clientGone.stop();
      if (early?.isCommitted === true) {
        // The head went out: the failure is the stream's last event, as after a commit (docs/streaming.md).
        early.fail(request, error, (failure) => sseData(renderError(failure)));
        return;
      }
      if (!(error instanceof ClientAbortedError)) throw error;
      reply.hijack();
      reply.raw.destroy();
      return;
    }
    if (early?.isCommitted === true && result.kind !== "stream") {
      // Not an answer an SSE request gets (its stream, or an error thrown): settled, and said in-stream.
      clientGone.stop();
      const unsent = new InternalError("The answer could not be sent as a stream.");
      if (result.kind === "audio") await result.cancel();
      else result.releaseRecord?.({ failure: unsent });
      early.fail(request, unsent, (failure) => sseData(renderError(failure)));
      return;
    }
    if (result.kind === "json") {
      clientGone.stop();
      let failure: GatewayError | undefined;
      try {
        reply
          .code(result.status)
          .headers(result.headers)
          .type(toHeaderValue(result.contentType ?? "application/json"))
          .send(result.bytes ?? result.bodyText);
      } catch (error) {
        // Fastify's error handler answers it instead (a 500): the record says so, not the answer's status.
        failure = toGatewayError(error);
        throw error;
      } finally {
        result.releaseRecord?.({ failure });
      }
      return;
    }
    if (result.kind === "audio") {
      await writeAudio(request, reply, result, clientGone.stop);
      return;
    }
    let ending: StreamEnding | undefined;
    try {
      // Before hijacking: if the head cannot be written (a header value Node refuses), nothing was sent and
      // Fastify's error handler still answers; the `finally` settles the stream (slot, upstream, record).
      if (early?.isCommitted !== true) writeSseHead(request, reply, safeHeaders(result.headers));
      const keepMs = runtime.snapshot.config.server.streamKeepaliveMs;
      // A cache hit found after an early head: the stream says it first (its head could not).
      let unsaid = early?.unsaid(result.headers) ?? "";
      ending = await pumpStream(
        reply.raw,
        result.events,
        (chunks) => {
          // Not the upstream's own bytes (chunks.bytes): a write of them pins the upstream read's whole buffer until
          // the socket takes it, +20-30 MB of RSS after the bench's loads for ~1.5 % of a stream's CPU (section 49).
          let text = unsaid;
          unsaid = "";
          for (const chunk of chunks) text += sseData(chunk.data);
          return text;
        },
        {
          maxDurationMs: runtime.snapshot.config.routing.maxStreamDurationMs,
          keepAlive: early?.keepAlive ?? (keepMs > 0 ? new KeepAlive(reply.raw, keepMs, SSE_KEEP_ALIVE) : undefined),
          // A chunk the door cannot render (a bug): the door's in-stream 500, recorded as that 500, as the Responses
          // and Messages doors end theirs (protocol-adapters.ts), instead of a cut the client reads as the network's.
          lastEvent: (error) => {
            const failure = toGatewayError(error);
            result.failedBy?.(failure);
            return sseData(renderError(failure));
          },
        },
      );
    } finally {
      try {
        // Whatever happened above, the stream is settled and its concurrency slot freed.
        if (ending === undefined) await result.cancel();
      } finally {
        clientGone.stop();
      }
    }
    if (reply.raw.destroyed) return;
    if (ending.isSuccess) reply.raw.end(SSE_DONE);
    else if (ending.error !== undefined) reply.raw.end(sseData(renderError(ending.error)));
    else reply.raw.end();
  };
}

/** An SSE request's early head (stream-keepalive.ts), when keep-alives are on (`server.stream_keepalive_ms`). */
function earlyCommitFor(
  endpoint: EndpointSpec,
  body: unknown,
  reply: FastifyReply,
  intervalMs: number,
): EarlyCommit | undefined {
  return intervalMs > 0 && asksForEvents(endpoint, body)
    ? new EarlyCommit(reply.raw, intervalMs, SSE_KEEP_ALIVE)
    : undefined;
}

/** The stream's status line and headers; the reply is hijacked after them (written raw from here on). */
function writeSseHead(request: FastifyRequest, reply: FastifyReply, headers: Record<string, string>): void {
  reply.raw.writeHead(200, {
    ...sseHeaders(request.headers.connection),
    "x-request-id": request.id,
    ...headers,
  });
  reply.hijack();
}

/**
 * Speech's audio as it comes, with backpressure (pumpStream). After the first byte there is no failover: a relay that
 * ends in a failure ends the response without the end of its chunked encoding, which every HTTP client reports as a
 * cut body (there is no in-band error in raw audio).
 */
async function writeAudio(
  request: FastifyRequest,
  reply: FastifyReply,
  result: AudioAnswer,
  stopClientGone: () => void,
): Promise<void> {
  let ending: AudioRelayEnd | undefined;
  try {
    // Before hijacking: if the head cannot be written, Fastify's error handler still answers; `finally` settles.
    reply.raw.writeHead(result.status, {
      "content-type": toHeaderValue(result.contentType),
      "x-content-type-options": "nosniff",
      "x-request-id": request.id,
      ...(result.contentEncoding === undefined ? {} : { "content-encoding": toHeaderValue(result.contentEncoding) }),
      ...safeHeaders(result.headers),
    });
    reply.hijack();
    ending = await pumpStream(reply.raw, result.chunks, (chunk) => chunk, { stopped: result.stopped });
  } finally {
    try {
      if (ending === undefined) await result.cancel();
    } finally {
      stopClientGone();
    }
  }
  if (reply.raw.destroyed) return;
  if (ending.outcome === "success") reply.raw.end();
  else reply.raw.destroy();
}

/** Upstream-derived values (a model id outside Latin-1) must never make writing the headers throw. */
function safeHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const safe: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) safe[name] = toHeaderValue(value);
  return safe;
}

/** `x-gateway-partial: allow` (any case): a chunked embeddings batch may be answered in part (docs/protocols.md). */
function isPartialAllowed(value: string | string[] | undefined): boolean {
  return typeof value === "string" && value.trim().toLowerCase() === "allow";
}
