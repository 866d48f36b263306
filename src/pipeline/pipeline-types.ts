// What the pipeline's steps share: the request context an adapter passes in, the result it gets back, and the
// validated request as it moves through planning, forwarding and the relay.
import { type GatewayError, UpstreamUnavailableError } from "../errors/gateway-error.ts";
import type { Outcome } from "../errors/outcomes.ts";
import type { PromptFacts } from "../limits/token-estimate.ts";
import type { ClientProtocol, RequestRecord } from "../observability/request-record.ts";
import type { RequestFeature } from "../router/request-features.ts";
import type { AudioRelayEnd } from "../streaming/relay-audio.ts";
import type { StreamBatch, TokenUsage } from "../streaming/relay-types.ts";
import type { TraceContext } from "../trace-context.ts";
import type { ForwardRequest, NativeCall, UpstreamApi } from "../upstream/forward-types.ts";
import type { CacheDirective } from "./cache-control.ts";
import { type ClientCharge, settleClientCharge } from "./client-budget.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime, GatewaySnapshot } from "./gateway-runtime.ts";
import type { RecordBuilder } from "./record-builder.ts";

export interface RequestLog {
  warn(fields: object, message: string): void;
}

export interface RequestContext {
  readonly requestId: string;
  readonly clientProtocol: ClientProtocol;
  /** When the request arrived, if before the pipeline was called (a protocol adapter translated it first). */
  readonly receivedAtMs?: number | undefined;
  /** Aborted when the client goes away before its answer is complete. */
  readonly signal: AbortSignal;
  /** `x-session-id`, for sticky routing. */
  readonly sessionId?: string | undefined;
  /**
   * The request's W3C trace (trace-context.ts requestTrace): its record keeps the ids, and each upstream attempt is
   * sent a `traceparent` of its own under it. Absent: no trace headers go upstream.
   */
  readonly trace?: TraceContext | undefined;
  /** The name of the client whose key the request carries (`server.api_keys` entries `{ key, name }`). */
  readonly client?: string | undefined;
  readonly log: RequestLog;
  /** The request in the client's own protocol, for candidates that speak it natively (Responses pass-through). */
  readonly native?: NativeCall | undefined;
  /** ForwardRequest.recallToolCallExtras: a Gemini or OpenRouter candidate's look-up of what the door kept. */
  readonly recallToolCallExtras?: ForwardRequest["recallToolCallExtras"];
  /** The batch the request is a line of (batch-runner.ts): its record says so. */
  readonly batchId?: string | undefined;
  /**
   * A batch line's body as validated and its facts, from its runner's look before sending it (plan-request.ts
   * batchLineRoute): used as they are when the pipeline is given that very body for that endpoint, not parsed and
   * estimated again.
   */
  readonly checkedLine?: CheckedLine | undefined;
  /** A batch line's: its tokens are counted in a budget now (upstream/forward-types.ts ForwardRequest.onReserved). */
  readonly onReserved?: (() => void) | undefined;
  /**
   * `x-gateway-partial: allow`: an embeddings batch sent in chunks whose later chunk no candidate answers is answered
   * with the chunks answered before it, said to be partial, instead of one error (embeddings-chunks.ts).
   */
  readonly allowsPartialAnswer?: boolean | undefined;
  /** The request's `Cache-Control`, for the answer cache (`cache.enabled`). */
  readonly cacheDirective?: CacheDirective | undefined;
  /**
   * A stream's head sent before its answer started (`server.stream_keepalive_ms`, server/stream-keepalive.ts): read
   * when the record is completed, which then says when (`earlyCommitMs`). `knows`: a header of the answer known
   * before any candidate answered (a cache miss), for that head. `tracksLookup`: a lookup whose finding that head
   * says when it settled by the time the head is due (the answer cache's in Redis); not waited for.
   */
  readonly earlyCommit?:
    | {
        readonly committedAtMs: number | undefined;
        knows(headers: Readonly<Record<string, string>>): void;
        tracksLookup(settled: Promise<unknown>): void;
      }
    | undefined;
  /**
   * The Responses API's `truncation: "auto"`: when no candidate's context holds the prompt, its oldest messages are
   * left out until one does (context-truncation.ts).
   */
  readonly truncatesToFit?: boolean | undefined;
  /**
   * The door keeps the answer once it is made (a Responses answer for `previous_response_id`): a JSON answer's record,
   * a cache hit's too, waits for it (JsonAnswer.releaseRecord), so that it can say whether the answer was kept. A
   * stream's door asks for that itself (StreamAnswer.holdRecord).
   */
  readonly holdsRecord?: boolean | undefined;
  /**
   * The door writes a JSON answer before the record's subscribers run (the forwarding door): the record is completed
   * when the answer is made (its times, the client's charge), and published by JsonAnswer.releaseRecord, which the door
   * calls once the answer is written. The subscribers' work (the log line, metrics, the request log's row: ~10 µs a
   * record in a loop, 3–4 times that in a busy process, bench/README.md sections 35 and 38) is then off the answer's
   * path, and a slow one (a request log on a slow disk) no longer delays it.
   */
  readonly writesBeforeRecord?: boolean | undefined;
  /**
   * Sends what the door wrote of a stream so far (server/write-stream.ts flushWrites), called by the relay when it is
   * about to wait for its upstream. Node holds a response's writes until the next tick (it corks the socket), and the
   * promise jobs the relay's pull of the upstream queues run before that tick: the first byte waited for them
   * (bench/README.md section 40).
   */
  readonly flushWrites?: (() => void) | undefined;
}

/**
 * Publishes a held record (`isAnswerNotKept`: the door could not keep the answer; `failure`: what the client got
 * instead of the answer, a JSON answer the door could not send or an in-band error after an early head, recorded as
 * that error); later calls do nothing.
 */
export type RecordRelease = (outcome?: {
  readonly isAnswerNotKept?: boolean | undefined;
  readonly failure?: GatewayError | undefined;
}) => void;

export interface JsonAnswer {
  readonly kind: "json";
  /** `chat`: a chat completion; else the client protocol's own answer (a native call). */
  readonly api: UpstreamApi;
  readonly status: number;
  readonly bodyText: string;
  /**
   * Undefined: JSON. An audio request's plain-text answer (`response_format: text`, `srt`, `vtt`) or speech's audio
   * says its type.
   */
  readonly contentType?: string | undefined;
  /** Speech's audio: sent as these bytes instead of `bodyText`. */
  readonly bytes?: Buffer | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * With RequestContext.holdsRecord or writesBeforeRecord, the record is published when this is called: the door must
   * call it on every path (a `finally`). Absent: it was published before the answer was returned.
   */
  readonly releaseRecord?: RecordRelease | undefined;
}

/**
 * A JSON answer's body as the adapters read it. The attempt has checked a 2xx chat answer already; what an adapter
 * is handed otherwise (a native call's, a relayed one's) is a bad upstream answer when it is not JSON.
 */
export function parseAnswerBody(bodyText: string): unknown {
  try {
    return JSON.parse(bodyText) as unknown;
  } catch (error) {
    throw new UpstreamUnavailableError("The upstream answer is not JSON.", { cause: error });
  }
}

/** How a relayed stream ended: the adapter writes its protocol's end marker, or `error` in-band. */
export interface StreamEnding {
  readonly isSuccess: boolean;
  /** The in-band error for the client; undefined on success and when the client is gone. */
  readonly error: GatewayError | undefined;
  readonly usage: TokenUsage | undefined;
}

export interface StreamAnswer {
  readonly kind: "stream";
  /** `chat`: chat chunks; else the client protocol's own events (a native call). */
  readonly api: UpstreamApi;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Batches of chunks; drive it to its end (the client leaving aborts the context's signal, which ends it). A batch's
   * `bytes` may be written in place of its chunks' `data: ...` events (StreamBatch).
   */
  readonly events: AsyncGenerator<StreamBatch, StreamEnding, void>;
  /**
   * The prompt's estimate for the serving deployment (of the body it was sent, calibrated from its provider's
   * reports): the figure an estimated usage at the end would carry, so a door that shows a prompt count before any
   * usage (Messages' `message_start`) shows the same one.
   */
  readonly promptTokensEstimate: number;
  /**
   * Settles the stream when the adapter will not (or can no longer) drive `events` to its end: the upstream is
   * hung up on, every segment settled (its concurrency slot freed) and the record published. Safe to call
   * always, in a `finally`: a no-op once `events` has ended. Needed because a generator that never started
   * (the response head could not be written) runs none of its `finally` blocks when closed.
   */
  cancel(): Promise<void>;
  /**
   * The door ended the client's answer itself (Messages matched a stop sequence the upstream was not sent): the answer
   * is whole from here, so what its upstream does after (breaks, stalls, is cut at the duration cap) ends the stream as
   * a success, never continued elsewhere. `events` is still driven to its end (the upstream's usage comes last).
   */
  endAnswer(): void;
  /**
   * The door failed the stream itself (an exception in its translator) and tells the client so in-stream, before it
   * closes `events` or calls `cancel`: the record is that error's (a 500 `rejected`), not a client that left.
   */
  failedBy?(error: GatewayError): void;
  /**
   * The door still has work of its own once `events` ends (keeping the answer): the record waits for it, so that it can
   * say how that went. Returns the release, which publishes it (`isAnswerNotKept`: the door could not keep the
   * answer); it must be called on every path (a `finally`), and once is enough (later calls do nothing).
   */
  holdRecord?(): RecordRelease;
}

/** Speech's audio, relayed as it comes: write each chunk before pulling the next (backpressure). */
export interface AudioAnswer {
  readonly kind: "audio";
  readonly status: number;
  /** The provider's audio type (`audio/mpeg`), `application/octet-stream` when it named none. */
  readonly contentType: string;
  /** The provider's `content-encoding`, when it compressed the audio (its bytes are relayed as they came). */
  readonly contentEncoding: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The audio's chunks; returns how the relay ended (a failure after the first byte is a cut response). */
  readonly chunks: AsyncGenerator<Uint8Array, AudioRelayEnd, void>;
  /**
   * Aborted when the relay has stopped (duration cap, stall, client gone, the gateway's exit): a writer waiting for a
   * client that reads nothing must stop waiting then, or the response, its record and its reservation stay open.
   */
  readonly stopped: AbortSignal;
  /** As StreamAnswer.cancel: settles the relay when the adapter will not drive `chunks` to its end. */
  cancel(): Promise<void>;
}

export type PipelineResult = JsonAnswer | StreamAnswer | AudioAnswer;

/** A validated request on its way: what every step after validation reads. */
export interface PipelineRequest {
  readonly runtime: GatewayRuntime;
  readonly snapshot: GatewaySnapshot;
  readonly endpoint: EndpointSpec;
  readonly body: Record<string, unknown> & { model: string; models?: string[]; stream?: boolean };
  readonly context: RequestContext;
  readonly prompt: PromptFacts;
  /** What it asks of a candidate beyond the model (router/request-features.ts): refusals of them are learned. */
  readonly features: readonly RequestFeature[];
  readonly maxOutputTokens: number;
  readonly isStream: boolean;
  readonly sessionKey: string | undefined;
  readonly record: RecordBuilder;
  /** What the request's client was charged (client-budget.ts); settled when the record is published. */
  readonly clientCharge: ClientCharge;
  /** Its key in the answer cache, when its answer may be kept (`cache.enabled`, JSON, no `Cache-Control: no-store`). */
  readonly cacheKey: string | undefined;
}

export function publish(request: PipelineRequest, status: number, outcome: Outcome, errorCode?: string): void {
  const record = completed(request, status, outcome, errorCode);
  if (record !== undefined) request.runtime.recorder.publish(record);
}

/** The request's record completed (its times taken now) and its client's charge settled; undefined once done. */
function completed(
  request: PipelineRequest,
  status: number,
  outcome: Outcome,
  errorCode?: string,
): RequestRecord | undefined {
  const earlyCommitAtMs = request.context.earlyCommit?.committedAtMs;
  if (earlyCommitAtMs !== undefined) request.record.committedEarly(earlyCommitAtMs);
  const record = request.record.finish(status, outcome, errorCode);
  if (record !== undefined) settleClientCharge(request.runtime, request.clientCharge, record);
  return record;
}

/**
 * Publishes a successful answer's record now, or, when the door keeps the answer first (RequestContext.holdsRecord),
 * returns the release that publishes it. A door that writes the answer first (RequestContext.writesBeforeRecord) gets
 * the record completed now, as it would have been published, and handed to the subscribers by the release.
 */
export function publishOrHold(request: PipelineRequest, status: number): RecordRelease | undefined {
  if (request.context.holdsRecord !== true) {
    if (request.context.writesBeforeRecord !== true) {
      publish(request, status, "success");
      return undefined;
    }
    let record = completed(request, status, "success");
    return (outcome) => {
      if (record !== undefined) request.runtime.recorder.publish(failedAs(record, outcome?.failure));
      record = undefined;
    };
  }
  return (outcome) => {
    if (outcome?.isAnswerNotKept === true) request.record.answerNotKept();
    const failure = outcome?.failure;
    if (failure === undefined) publish(request, status, "success");
    else publish(request, failure.status, "rejected", failure.code);
  };
}

/**
 * A record completed as a success, told what the client got instead (the door's error, as a stream's door failure is
 * recorded: stream-answer.ts settle): the answer was made, but its status and outcome say what was delivered.
 */
function failedAs(record: RequestRecord, failure: GatewayError | undefined): RequestRecord {
  if (failure === undefined) return record;
  return { ...record, status: failure.status, outcome: "rejected", errorCode: failure.code };
}

/** What a plan needs of a request beyond its body: its prompt's estimate, its output tokens, its features. */
export interface RequestFacts {
  readonly prompt: PromptFacts;
  readonly features: readonly RequestFeature[];
  readonly maxOutputTokens: number;
}

/**
 * A batch line's body as its pipeline validates it and the facts estimated from it, made once by its runner's look
 * (plan-request.ts batchLineRoute) and handed to the pipeline (RequestContext.checkedLine), which then neither parses
 * nor estimates it again: a line of 100,000 tokens of messages was walked twice, once for the look and once for its
 * plan. `rawBody`: the body it was checked from (the pipeline uses it only when given that same body).
 */
export interface CheckedLine {
  readonly endpoint: EndpointSpec;
  readonly rawBody: unknown;
  readonly body: PipelineRequest["body"];
  readonly facts: RequestFacts;
}
