// What kind of "not now" an upstream answered, so the caller can decide how long to leave the key alone and
// whether the key is to blame at all.
import { unaffordableOutput, unaffordablePrompt } from "./credit-size-refusals.ts";
import { LONG_WINDOW_REMAINING_HEADERS, rolledOverLongWindow } from "./day-rollover.ts";
import { type ErrorBodyFacts, readErrorBody } from "./error-body.ts";
import { type HeaderMap, headerValue } from "./header-map.ts";
import { matchTextSignal, type RateLimitKind, refusalText } from "./refusal-wording.ts";

export type { RateLimitKind } from "./refusal-wording.ts";

export interface RateLimitClassification {
  readonly kind: RateLimitKind;
  /** Short and human-readable, for logs and route explanations. */
  readonly reason: string;
  /**
   * The answer itself says the limit is the account's (one pool shared by every model of the key, e.g.
   * OpenRouter's free-models-per-day), so every model of the key is out, not only the one asked.
   */
  readonly isAccountWide?: boolean;
  /**
   * The request alone is larger than the whole window it is counted against ("Request too large ... Limit 6000,
   * Requested 14810"), or than what the credits left cover (its output: `affordableOutputTokens`; its prompt:
   * OpenRouter's "Prompt tokens limit exceeded: N > M"): no wait makes it fit, and smaller requests still do, so the
   * key is not to be cooled down, nor parked.
   */
  readonly isRequestTooLarge?: true;
  /**
   * The output tokens the key's credits cover, when the refusal is of this request's output limit alone (OpenRouter's
   * 402 "... You requested up to 16384 tokens, but can only afford 1234."; `isRequestTooLarge` with it): a request
   * asking for at most that many would be served.
   */
  readonly affordableOutputTokens?: number;
  /**
   * The prompt tokens the key's credits cover, when the refusal is of this request's prompt alone (OpenRouter's 402
   * "Prompt tokens limit exceeded: 64128 > 6964"; `isRequestTooLarge` with it): a shorter prompt would be served, and
   * no output limit changes it, so the client is advised that and not a smaller max_tokens.
   */
  readonly affordablePromptTokens?: number;
  /**
   * The refusal is the limit of a provider an aggregator routed to, relayed (ErrorBodyFacts.relayedProvider): it
   * says nothing about this key's own limits or pool, so nothing is learned from it and no pool cools.
   */
  readonly isRelayed?: true;
  /**
   * A `daily` refusal whose exhausted window reset a moment ago by our clock (day-rollover.ts): the new day has just
   * begun, so it is a short "not yet", not a reason to park until the end of that new day.
   */
  readonly isWindowRolledOver?: true;
  /**
   * With `isWindowRolledOver`: the reset reads "now" (a delay of 0, an instant equal to our clock), which some
   * providers send with every exhausted-day 429. Only a streak of these is taken as a roll-over (lessons.ts).
   */
  readonly isResetNow?: true;
}

export interface ClassifyRateLimitInput {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly bodyText?: string;
  /** When the answer arrived (epoch ms), to tell a day's window that just rolled over (`isWindowRolledOver`). */
  readonly nowMs?: number;
}

interface CodeSignal {
  /** A lower-cased `code`, `type` or `status` of the error object. */
  readonly providerCode: string;
  readonly kind: RateLimitKind;
  readonly reason: string;
}

/** Exact error codes, checked before any wording. First match wins. */
const CODE_SIGNALS: readonly CodeSignal[] = [
  {
    providerCode: "insufficient_quota",
    kind: "credits",
    reason: "insufficient_quota: out of credits or over the billing cap",
  },
  // Cloudflare Workers AI: 3036 over the REST API, 4006 through the Workers binding, same wording.
  { providerCode: "3036", kind: "daily", reason: "Cloudflare daily free allocation used up (3036)" },
  { providerCode: "4006", kind: "daily", reason: "Cloudflare daily free allocation used up (4006)" },
  { providerCode: "3040", kind: "capacity", reason: "Cloudflare out of capacity (3040)" },
  // Cerebras answers 429 both for the key's quota and for its own full queue; only the code tells them apart.
  { providerCode: "queue_exceeded", kind: "capacity", reason: "Cerebras queue full (queue_exceeded)" },
  // Mistral answers 429 with code 3505 when the shared free tier has no room, not the key's own limit.
  { providerCode: "3505", kind: "capacity", reason: "Mistral service tier capacity exceeded (3505)" },
  {
    providerCode: "service_tier_capacity_exceeded",
    kind: "capacity",
    reason: "Mistral service tier capacity exceeded",
  },
  { providerCode: "overloaded_error", kind: "capacity", reason: "provider overloaded (overloaded_error)" },
];

const LIMIT_HEADER_PREFIX = "x-ratelimit-limit";

/**
 * Classifies a refusal (429, 402, 503, 529, ...) by status, error codes, Google quota details, wording and
 * rate-limit headers. An unrecognised 429 is `short`; an unrecognised 5xx is `capacity`.
 */
export function classifyRateLimit(input: ClassifyRateLimitInput): RateLimitClassification {
  const classification = classifyRefusal(input);
  if (classification.kind !== "daily" || input.nowMs === undefined) return classification;
  // Still `daily` (what it teaches of the key's limits is a day's), but the day the provider counted is over.
  const rolledOver = rolledOverLongWindow(input.headers, input.nowMs);
  if (rolledOver === undefined) return classification;
  return {
    ...classification,
    reason: `${classification.reason}, but ${rolledOver.resetHeader} is already past: the window just rolled over`,
    isWindowRolledOver: true,
    ...(rolledOver.isResetNow ? { isResetNow: true as const } : {}),
  };
}

function classifyRefusal(input: ClassifyRateLimitInput): RateLimitClassification {
  const { status, headers, bodyText } = input;
  if (status === 402) return classifyPaymentRequired(bodyText);
  const relayedProvider = status === 413 || status === 429 ? readErrorBody(bodyText).relayedProvider : undefined;
  const relayed = relayedProvider === undefined ? {} : { isRelayed: true as const };
  if (status === 413 || status === 429) {
    const tooLarge = requestLargerThanWindow(bodyText);
    if (tooLarge !== undefined) {
      return {
        kind: "short",
        reason: `request larger than the whole window${relayedProvider === undefined ? "" : ` of ${relayedProvider}`} (limit ${tooLarge.limit}, requested ${tooLarge.requested})`,
        isRequestTooLarge: true,
        ...relayed,
      };
    }
  }
  if (relayedProvider !== undefined) {
    // OpenRouter relays the 429 of the provider it routed this model to ("Provider returned error" with the
    // provider's body in `metadata.raw`): that provider's limit, on OpenRouter's account with it (or the user's own
    // key there), for this model. Not this key's pool (the provider preset's `rate_limit_scope: account` would cool
    // every model of the key for it) and not its windows: the model is skipped briefly, as for an overloaded provider.
    const signal = matchTextSignal(refusalText(bodyText));
    return {
      kind: "capacity",
      reason: `${relayedProvider} (the provider this model was routed to) is rate-limited${signal === undefined ? "" : `: ${signal.reason}`}`,
      isRelayed: true,
    };
  }

  const text = refusalText(bodyText);
  if (status === 503 || status === 529) {
    const signal = matchTextSignal(text);
    return {
      kind: "capacity",
      reason:
        signal?.kind === "capacity"
          ? signal.reason
          : `${status} ${status === 529 ? "Overloaded" : "Service Unavailable"}`,
    };
  }

  if (status === 429) {
    // Mistral answers 429 forever, with a limit of 0, for a model the workspace's plan does not include.
    const zeroLimitHeader = findZeroLimitHeader(headers);
    if (zeroLimitHeader !== undefined) {
      return { kind: "credits", reason: `${zeroLimitHeader} is 0: the plan does not include this model` };
    }
  }

  if (status === 429) {
    const named = classifyLimitType(headerValue(headers, LIMIT_TYPE_HEADER));
    if (named !== undefined) return named;
  }

  if (status === 429) {
    const statedWindow = windowStatedInSeconds(text);
    if (statedWindow !== undefined) return statedWindow;
  }

  const facts = readErrorBody(bodyText);
  for (const signal of CODE_SIGNALS) {
    if (facts.codes.includes(signal.providerCode)) return { kind: signal.kind, reason: signal.reason };
  }
  if (facts.codes.includes("resource_exhausted")) return classifyGoogleQuota(facts, text);

  const textSignal = matchTextSignal(text);
  if (textSignal !== undefined) {
    return textSignal.isAccountWide === true
      ? { kind: textSignal.kind, reason: textSignal.reason, isAccountWide: true }
      : { kind: textSignal.kind, reason: textSignal.reason };
  }

  if (status === 429) {
    for (const name of LONG_WINDOW_REMAINING_HEADERS) {
      if (headerValue(headers, name) === "0") return { kind: "daily", reason: `${name} is 0` };
    }
    return { kind: "short", reason: "429 with no known cause: assumed a short window" };
  }
  if (status >= 500) return { kind: "capacity", reason: `${status} from the provider` };
  return { kind: "short", reason: `${status} with no known cause: assumed a short window` };
}

/**
 * A 402: the key out of credits, unless it refuses this request's size alone (credit-size-refusals.ts), which a
 * smaller request from the same key escapes: then nothing is parked, and only-such refusals end as a 413.
 */
function classifyPaymentRequired(bodyText: string | undefined): RateLimitClassification {
  const output = unaffordableOutput(bodyText);
  if (output !== undefined) {
    return {
      kind: "credits",
      reason: `the credits left cover ${output.affordable} output tokens of this request, not the ${output.requested} it may use (402; a request asking for fewer is served)`,
      isRequestTooLarge: true,
      affordableOutputTokens: output.affordable,
    };
  }
  const prompt = unaffordablePrompt(bodyText);
  if (prompt !== undefined) {
    return {
      kind: "credits",
      reason: `the credits left cover a prompt of ${prompt.affordable} tokens, not this request's ${prompt.requested} (402; a shorter prompt is served)`,
      isRequestTooLarge: true,
      affordablePromptTokens: prompt.affordable,
    };
  }
  return { kind: "credits", reason: "402 Payment Required" };
}

/**
 * Google's RESOURCE_EXHAUSTED covers per-minute and per-day quotas alike, with the same "check your plan and
 * billing details" message; the QuotaFailure violations' quota ids ("...PerDay...", "...PerMinute...") are what
 * tell them apart. "limit: 0" in the message means the free tier does not include the model at all.
 */
function classifyGoogleQuota(facts: ErrorBodyFacts, text: string): RateLimitClassification {
  if (text.includes("limit: 0,")) {
    return { kind: "credits", reason: "Gemini quota limit is 0: the tier does not include this model" };
  }
  const longWindowId = facts.quotaIds.find((id) => id.includes("PerDay") || id.includes("PerMonth"));
  if (longWindowId !== undefined) return { kind: "daily", reason: `Gemini quota ${longWindowId} exhausted` };
  const firstId = facts.quotaIds[0];
  if (firstId !== undefined) return { kind: "short", reason: `Gemini quota ${firstId} exhausted` };
  if (text.includes("per day") || text.includes("perday")) {
    return { kind: "daily", reason: "Gemini per-day quota exhausted" };
  }
  return { kind: "short", reason: "Gemini RESOURCE_EXHAUSTED without quota details: assumed per-minute" };
}

/**
 * GitHub Models (Azure AI inference underneath) names the limit a 429 hit in `x-ratelimit-type`, next to its
 * `retry-after`: `UserByModelByDay` (requests per model per day), `UserByModelByMinute`, `UserByMinute`,
 * `UserByModelByMinuteUncachedInputTokens` (input tokens per minute), `UserConcurrentRequests` (requests in flight).
 * The names and the limits behind them (requests per minute, per day, concurrent requests, per rate-limit tier):
 * docs.github.com/en/github-models/use-github-models/prototyping-with-ai-models#rate-limits; the header with its
 * retry-after as seen on a 429 ("x-ratelimit-type: UserByModelByDay", "retry-after: 24367"):
 * devactivity.com/insights/navigating-github-models-api-rate-limits-essential-for-effective-planning-a-software-development-project
 * (quoting a GitHub Community discussion). A header alone used to be an unrecognised 429 (short): a day's quota
 * then learned nothing about the day and showed as a per-minute cooldown, and a concurrency refusal ("Please wait
 * 0 seconds") taught a per-second limit of the requests that happened to be in flight.
 */
const LIMIT_TYPE_HEADER = "x-ratelimit-type";

function classifyLimitType(limitType: string | undefined): RateLimitClassification | undefined {
  if (limitType === undefined) return undefined;
  const name = limitType.toLowerCase();
  if (name.includes("concurrent")) {
    return { kind: "concurrency", reason: `too many requests in flight (x-ratelimit-type: ${limitType})` };
  }
  // Only the names seen; another one falls through to the body and the other signals.
  if (name.includes("byday")) {
    return { kind: "daily", reason: `a per-day limit (x-ratelimit-type: ${limitType})` };
  }
  if (name.includes("byminute")) {
    return { kind: "short", reason: `a short window (x-ratelimit-type: ${limitType})` };
  }
  return undefined;
}

/**
 * SambaNova names the violated window in seconds: "Request would exceed rate limit\nViolated duration_s: 86400,
 * current usage: 196279, limit: 200000" (its free tier's tokens per day, as recorded in user reports and confirmed by
 * SambaNova staff, community.sambanova.ai/t/1654). A stated window settles the class before any error code: the
 * error-code table of SambaNova's docs, as transcribed, gives its rate-limit 429 the code `insufficient_quota`,
 * which elsewhere means out of credits.
 */
// No leading \b: in the raw JSON the word follows an escaped newline ("limit\nViolated").
const VIOLATED_DURATION = /violated duration_s:\s*(\d+)/;
const DAY_SECONDS = 86_400;

function windowStatedInSeconds(lowerCasedText: string): RateLimitClassification | undefined {
  const match = VIOLATED_DURATION.exec(lowerCasedText);
  if (match === null) return undefined;
  const seconds = Number(match[1]);
  return seconds >= DAY_SECONDS
    ? { kind: "daily", reason: `a ${seconds} s window is used up (violated duration_s: ${seconds})` }
    : { kind: "short", reason: `a ${seconds} s window is used up (violated duration_s: ${seconds})` };
}

/**
 * "Request too large for model `m` ... on tokens per minute (TPM): Limit 6000, Requested 14810" (Groq, with HTTP
 * 413) and "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 342389" (OpenAI, with 429).
 */
const REQUEST_TOO_LARGE = /\brequest too large\b[\s\S]{0,300}?\blimit:?\s*(\d+),?\s*requested:?\s*(\d+)/i;

/** The window's limit and the request's size when the body says the request alone exceeds a whole window. */
export function requestLargerThanWindow(
  bodyText: string | undefined,
): { readonly limit: number; readonly requested: number } | undefined {
  // The error's message (or the relayed provider's), as every wording: the same words quoted in its metadata are not
  // this refusal's.
  const match = REQUEST_TOO_LARGE.exec(refusalText(bodyText));
  if (match === null) return undefined;
  const limit = Number(match[1]);
  const requested = Number(match[2]);
  return requested > limit ? { limit, requested } : undefined;
}

function findZeroLimitHeader(headers: HeaderMap): string | undefined {
  for (const name in headers) {
    if (name.startsWith(LIMIT_HEADER_PREFIX) && headerValue(headers, name) === "0") return name;
  }
  return undefined;
}
