// The one outcome vocabulary: what happened to one upstream attempt (or one stream segment), and what that
// means for failover, blame, health and stream continuation. The failover loop, the recorder, the relay, the
// request record and metrics all read these traits instead of keeping string sets of their own.

/** Who an outcome blames: the provider's key/account, the deployment (provider+model), or nobody. */
export type Blame = "none" | "key" | "deployment";

export interface OutcomeTraits {
  /** The attempt produced the answer (or, for a stream, the whole answer). */
  readonly isSuccess: boolean;
  /** Another candidate may still serve the request after this outcome (failover goes on). */
  readonly isRetryable: boolean;
  /** The same candidate may be tried again in this request (up to its `retries`): a blip, not a verdict. */
  readonly isRetryableOnSameCandidate: boolean;
  readonly blames: Blame;
  /** Feeds the score's health term (rate limits and rejected requests do not: cooldowns handle the first). */
  readonly countsForHealth: boolean;
  /** A stream that ended this way after it started may be continued by another candidate. */
  readonly mayContinueStream: boolean;
  /**
   * The request ended as its client asked, whatever its HTTP status: no failure of the gateway or of an upstream.
   * Counted apart from the 4xx/5xx classes and from errors (metrics, dashboard, traces), so alerts on those stay quiet.
   */
  readonly isClientsChoice: boolean;
  /**
   * Sent, and not refused by an answer, the attempt reached a provider that took its prompt in: its token windows
   * counted the prompt whether or not an answer came back (hasProviderCountedPrompt).
   */
  readonly mayCountPrompt: boolean;
}

const traits = (
  isSuccess: boolean,
  isRetryable: boolean,
  isRetryableOnSameCandidate: boolean,
  blames: Blame,
  countsForHealth: boolean,
  mayContinueStream: boolean,
  { isClientsChoice = false, mayCountPrompt = false }: { isClientsChoice?: boolean; mayCountPrompt?: boolean } = {},
): OutcomeTraits =>
  Object.freeze({
    isSuccess,
    isRetryable,
    isRetryableOnSameCandidate,
    blames,
    countsForHealth,
    mayContinueStream,
    isClientsChoice,
    mayCountPrompt,
  });

/** Outcomes whose provider took the prompt in once the request went out (OutcomeTraits.mayCountPrompt). */
const COUNTS_PROMPT = { mayCountPrompt: true } as const;

export const OUTCOMES = Object.freeze({
  /** The upstream answered (JSON 2xx, or a stream that finished). */
  success: traits(true, false, false, "none", true, false, COUNTS_PROMPT),
  /** 429 or a quota answer: the deployment (or the whole key, per its 429 class) cools down. */
  rate_limited: traits(false, true, false, "deployment", false, false),
  /** 401/403 for the key, or credits exhausted: the provider's key is parked. */
  invalid_key: traits(false, true, false, "key", false, false),
  /** The prompt does not fit this model: only a larger context may serve it. */
  context_length: traits(false, true, false, "none", false, false),
  /** A 4xx about the request itself: every candidate would refuse it; the client gets it. */
  rejected: traits(false, false, false, "none", false, false),
  /**
   * `Cache-Control: only-if-cached` and no kept answer: the 504 `not_cached` the client asked for rather than an
   * upstream call (RFC 9111 5.2.1.7). Never attempted upstream: a request outcome only, and not an error.
   */
  not_cached: traits(false, false, false, "none", false, false, { isClientsChoice: true }),
  /** This provider does not serve the model (a 404, "does not exist", decommissioned): parked a while, fail over. */
  model_unavailable: traits(false, true, false, "deployment", false, false),
  /**
   * This provider has no route for the request's endpoint at all (a 405, or a 404 from its web server's router): fail
   * over; the provider is left out for that endpoint only (limits/unserved-endpoints.ts), none of its models blamed.
   */
  unserved_endpoint: traits(false, true, false, "none", false, false),
  /**
   * This candidate refuses a parameter or feature of the request that another may take, or flagged its input by a
   * moderation only some models have (OpenRouter's 403 with `metadata.reasons`): fail over, nothing parked.
   */
  unsupported: traits(false, true, false, "none", false, false),
  /** 5xx, or an error answered as a 200. */
  server_error: traits(false, true, true, "deployment", true, false),
  /** Connection refused, reset, DNS failure before any answer. */
  network_error: traits(false, true, true, "deployment", true, false, COUNTS_PROMPT),
  /** No response headers within `timeout_ms`, or the request's total time ran out: a silent upstream stays silent. */
  timeout: traits(false, true, false, "deployment", true, false, COUNTS_PROMPT),
  /** A stream sent headers but no content within `first_token_timeout_ms`. */
  first_token_timeout: traits(false, true, false, "deployment", true, false, COUNTS_PROMPT),
  /** A 2xx the gateway cannot use (not JSON, not an object, not an event stream). */
  bad_response: traits(false, true, true, "deployment", true, false, COUNTS_PROMPT),
  /** The client left, or the gateway ended the request at its exit (pipeline/open-requests.ts); nobody is blamed. */
  client_aborted: traits(false, false, false, "none", false, false, COUNTS_PROMPT),
  /** A started stream closed or broke before it finished. */
  stream_cut: traits(false, true, false, "deployment", true, true, COUNTS_PROMPT),
  /** A started stream went silent for `stream_idle_timeout_ms`. */
  stream_stalled: traits(false, true, false, "deployment", true, true, COUNTS_PROMPT),
  /** A started stream sent an in-band error event. */
  stream_error_event: traits(false, true, false, "deployment", true, true, COUNTS_PROMPT),
  /**
   * A started stream sent an in-band error that names a rate limit (a 429 `code`): the deployment cools down as after
   * a 429 status, and neither its health nor its circuit counts it (rate limits are for cooldowns to handle).
   */
  stream_rate_limited: traits(false, true, false, "deployment", false, true, COUNTS_PROMPT),
  /** A started stream sent more malformed events than tolerated. */
  stream_malformed: traits(false, true, false, "deployment", true, true, COUNTS_PROMPT),
  /** A replayed answer did not repeat what was delivered: sound, only different; nobody is blamed. */
  stream_diverged: traits(false, true, false, "none", false, true, COUNTS_PROMPT),
  /** A stream ran past `max_stream_duration_ms`; never continued (the cap would be hit again). */
  stream_too_long: traits(false, false, false, "deployment", true, false, COUNTS_PROMPT),
  /** A stream grew past the gateway's own bounds (line, event or retained text size). */
  stream_too_large: traits(false, false, false, "deployment", true, false, COUNTS_PROMPT),
} satisfies Record<string, OutcomeTraits>);

export type Outcome = keyof typeof OUTCOMES;

export function traitsOf(outcome: Outcome): OutcomeTraits {
  return OUTCOMES[outcome];
}

/**
 * Whether a failed attempt's provider counted its prompt, so that its token budgets keep the prompt's estimate (the
 * prompt part of its reservation) though no usage came back. Providers count a request's tokens against TPM/TPD when
 * they admit it, not when its answer is read (Cerebras's rate-limit docs: the prompt's estimate plus
 * `max_completion_tokens`, counted as the request arrives, before it is processed; OpenAI counts `max_tokens` at
 * admission the same way), and none documents giving an aborted request's tokens back (Groq's docs say nothing of
 * it): a request the gateway gave up on after it went out
 * (the client left, `timeout_ms` or `first_token_timeout_ms` ran out, the connection broke after the send, a 200
 * stream that broke or ended before its first content) was admitted and its prompt processed. Charged 0 (before
 * 2026-12-07, "a failed attempt consumed no tokens"), it was counted nowhere, and the budget admitted more than the
 * provider would: the upstream 429s the budgets are there to prevent. A refusal the provider answered (a 4xx, a 429, a
 * 5xx, a redirect) stays 0: it was turned away before a model read the prompt (most 5xx come at once; a gateway's 504
 * after a long wait may have cost the prompt, but cannot be told apart). Not sent (a refused connection, a client that
 * left while it connected): nothing reached a provider.
 */
export function hasProviderCountedPrompt(outcome: Outcome, isSent: boolean, status: number | undefined): boolean {
  if (!isSent || !traitsOf(outcome).mayCountPrompt) return false;
  return status === undefined || (status >= 200 && status < 300);
}

/** The outcomes a stream segment can end with. */
export type StreamOutcome =
  | "success"
  | "client_aborted"
  | "stream_cut"
  | "stream_stalled"
  | "stream_error_event"
  | "stream_rate_limited"
  | "stream_malformed"
  | "stream_diverged"
  | "stream_too_long"
  | "stream_too_large"
  /** A native Responses stream's malformed event after it started (streaming/responses-stream-check.ts). */
  | "bad_response";
