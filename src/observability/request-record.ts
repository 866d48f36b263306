// One record per request, built by the pipeline as the request goes and handed, complete, to every subscriber:
// the log line, metrics, the request log and the dashboard all read these and nothing else. A record never
// holds a key; message content only when `log.content` is on (not yet recorded at all).

import type { RecordedProtocol } from "../api-routes.ts";
import type { MessageChange, MessageOrder } from "../config/message-orders.ts";
import type { Outcome } from "../errors/outcomes.ts";
import type { ClientProtocol } from "../front-doors.ts";

export type { ClientProtocol, RecordedProtocol };

export interface RecordedCandidate {
  readonly deploymentKey: string;
  readonly provider: string;
  /** Upstream model id. */
  readonly model: string;
  readonly publicName: string;
  readonly score: number;
  /**
   * It refused a feature of this request as not supported not long ago (the feature, then the refusal's words): ranked
   * after every candidate that did not (docs/routing.md "Learned refusals").
   */
  readonly refusedFeature?: string;
}

export interface RecordedSkip {
  readonly deploymentKey: string;
  readonly provider: string;
  readonly model: string;
  /**
   * `plan`: left out when the route was planned; `attempt`: passed over when its turn came; `continuation`: passed
   * over when it was asked to continue a broken stream.
   */
  readonly phase: "plan" | "attempt" | "continuation";
  /** e.g. cooldown, budget, context, capability (plan); free text at attempt time. */
  readonly cause: string;
  readonly reason: string;
  readonly untilMs?: number;
  /**
   * Plan `cooldown` skips: why the candidate is unavailable (rate_limited, daily_quota, credits_exhausted,
   * capacity, budget_exhausted, invalid_key, circuit_open).
   */
  readonly cooldownCause?: string;
  /**
   * Plan `cooldown` and `budget` skips, and skips at attempt or continuation time: true when the candidate was left
   * out for a rate limit, quota, budget or concurrency limit, false for an open circuit or a refused key (nothing to
   * do with rate limits).
   */
  readonly isLimit?: boolean;
}

/** A plan skip that spared an upstream 429: the "429s avoided" of the dashboard and `route_skips_total`. */
export function isAvoidedRateLimit(skip: RecordedSkip): boolean {
  return skip.phase === "plan" && skip.isLimit === true;
}

export interface RecordedAttempt {
  readonly provider: string;
  /** Upstream model id. */
  readonly model: string;
  readonly deploymentKey: string;
  /** `primary`: part of the failover loop; `continuation`: opened to continue a broken stream. */
  readonly role: "primary" | "continuation";
  /** For continuations: how the answer was resumed. */
  readonly mode?: "prefill" | "replay";
  readonly status: number | undefined;
  readonly outcome: Outcome;
  /** Human-readable, never containing a key. */
  readonly reason: string;
  readonly startedAtMs: number;
  /** From sending the request to the upstream's response headers. */
  readonly headersMs?: number;
  /** Streams: from sending the request to the first content event. */
  readonly firstTokenMs?: number;
  /** From sending the request to the attempt's end (for a stream: the end of its segment). */
  readonly durationMs: number;
  readonly tokensIn?: number;
  readonly tokensOut?: number;
  /**
   * The tokens are an estimate, not the provider's report: a stream segment that broke (or was left), or a
   * continuation that finished the answer, without a usage report (the gateway's: its prompt plus the text and
   * reasoning it delivered), or a segment whose upstream gateway marked its usage `usage_estimated`.
   */
  readonly isUsageEstimated?: true;
  /**
   * An attempt that failed before it opened an answer: the tokens its deployment's budgets stay charged, and its named
   * client's (docs/limits.md "Client budgets"): what its calls that answered reported (a Llama Guard moderation's),
   * else its prompt when its provider took it in (it was sent and abandoned, or broke, before an answer). Absent when
   * 0 (a refusal the provider answered, or never sent).
   */
  readonly chargedTokens?: number;
  /**
   * The role order (`message_order`: `strict`, `alternate`, or `any` with a refused `prefix` removed) that changed the
   * messages this attempt sent; absent when they went as the client wrote them (docs/configuration.md "Message order").
   */
  readonly messageOrder?: MessageOrder;
  /**
   * The span id this attempt was sent under (its `traceparent`), when the request has a trace (RequestRecord.trace):
   * the provider's own spans, if it traces, are children of it.
   */
  readonly spanId?: string;
  /** What it changed: system_folded, tool_bridged, tool_ids_fitted, users_merged, prefix_marked, prefix_removed, reasoning_removed. */
  readonly messageChanges?: readonly MessageChange[];
}

export interface RecordedContinuation {
  readonly provider: string;
  readonly model: string;
  /** Characters of first-choice text the client had when the switch happened. */
  readonly afterChars: number;
  /** Why the previous segment failed. */
  readonly reason: string;
  readonly mode: "prefill" | "replay";
}

export interface RequestRecord {
  readonly id: string;
  readonly startedAtMs: number;
  /**
   * Endpoint name: a door's (chat, completions, embeddings, ...), a route family's that is no door (conversations,
   * files, batches, count_tokens, input_tokens, kept_responses: api-routes.ts), or `unknown` (refused by the HTTP
   * server before it knew the route).
   */
  readonly endpoint: string;
  readonly clientProtocol: RecordedProtocol;
  /**
   * Only on a record of a request no model door served: its method and route as registered (`GET
   * /v1/conversations/:id`: a bounded set, never the URL with its ids), or `unknown` for a request the HTTP server
   * refused before routing it (malformed, headers too large, too slow).
   */
  readonly route?: string;
  /**
   * The `model` the client asked for (as sent, bounded in length); `""` for a request refused because its body
   * named none (refused before planning: no candidates, no attempts).
   */
  readonly requestedModel: string;
  /** The name of the client whose key the request carried (`server.api_keys`); absent: unnamed, or no key. */
  readonly client?: string;
  readonly isStream: boolean;
  /** The batch (`/v1/batches`) this request is a line of; absent for a live request. */
  readonly batchId?: string;
  readonly candidates: readonly RecordedCandidate[];
  readonly skips: readonly RecordedSkip[];
  readonly attempts: readonly RecordedAttempt[];
  readonly continuations: readonly RecordedContinuation[];
  /** Time spent queued for a free candidate and waiting for a better one that was cooling. */
  readonly queueWaitMs: number;
  /**
   * The W3C trace the request belongs to (docs/observability.md "Trace context"): the caller's `traceparent`
   * continued, or one the gateway started because spans are exported. Absent otherwise.
   */
  readonly trace?: RecordedTrace;
  /**
   * The answer cache (`cache.enabled`): `hit`, answered with a kept answer (no candidates, no attempts, no tokens);
   * `miss`, looked up and not found. Absent when the cache was not asked (off, `Cache-Control: no-cache` or
   * `no-store`, a native Responses pass-through).
   */
  readonly cache?: "hit" | "miss";
  /** The deployment that produced (the start of) the answer. */
  readonly servedBy?: {
    readonly deploymentKey: string;
    readonly provider: string;
    readonly model: string;
    /** `paid`: the answer cost money (routing.paid allowed it); `free`: a free tier answered. */
    readonly cost?: "free" | "paid";
  };
  /**
   * An embeddings batch sent in this many chunks (pipeline/embeddings-chunks.ts): each chunk's answering attempt is
   * among `attempts` with its own tokens, and `servedBy` is the last chunk's deployment (its `cost` is `paid` when any
   * chunk's was). Absent: the request was sent whole.
   */
  readonly chunks?: number;
  readonly tokensIn: number;
  readonly tokensOut: number;
  /**
   * The tokens are the gateway's estimate, told the client in an estimated usage chunk: it asked for usage
   * (`stream_options.include_usage`) and no upstream reported any (docs/streaming.md "Usage chunks").
   */
  readonly isUsageEstimated?: true;
  /** HTTP status the client got (499: the client left first). */
  readonly status: number;
  /** The error code of a failed request (docs/errors.md). */
  readonly errorCode?: string;
  /** The request's outcome: the answering attempt's, or the last failure's. */
  readonly outcome: Outcome;
  /** Client side: from the request's arrival to the response headers (JSON: to the whole answer). */
  readonly timeToHeadersMs?: number;
  /** Streams (and speech's audio), client side: from arrival to the first content event (or audio byte) written. */
  readonly timeToFirstTokenMs?: number;
  /**
   * A stream whose head (status 200, its headers, then keep-alives) went out before its answer started, because it
   * waited `server.stream_keepalive_ms` for it (queued, failing over, waiting for a first token): from arrival to
   * that head. Its failure then reached the client as an in-stream error event; `status` is still that error's.
   */
  readonly earlyCommitMs?: number;
  /** Speech relayed as it came: the audio's bytes written to the client (all of them, or up to a cut). */
  readonly responseBytes?: number;
  /**
   * An answer the door sent but could not keep (a Responses answer for `previous_response_id`, streamed or JSON, from
   * an upstream or the answer cache): the store failed or did not answer in time (`responses.store.write_timeout_ms`),
   * or its keeping threw; the log says why.
   */
  readonly isAnswerNotKept?: true;
  readonly durationMs: number;
  /** Message content, when the pipeline keeps it; stored by the request log only with `log.content: true`. */
  readonly content?: RecordedContent;
}

export interface RecordedTrace {
  readonly traceId: string;
  /** The gateway's span for the request. */
  readonly spanId: string;
  /** The caller's span (its `traceparent`); absent when the gateway started the trace. */
  readonly parentSpanId?: string;
  /** The sampled flag sent upstream: with export on, whether the request's spans are exported. */
  readonly isSampled: boolean;
}

export interface RecordedContent {
  /** The request's messages (or prompt / input), as the client sent them. */
  readonly request?: unknown;
  /** The answer's first-choice text as delivered. */
  readonly responseText?: string;
}

export type RecordListener = (record: RequestRecord) => void;
