// How long an upstream asks us to wait before trying again, from whichever signal it sent.
import { parseDurationMs } from "./duration.ts";
import { type ErrorBodyFacts, readErrorBody } from "./error-body.ts";
import { type HeaderMap, headerValue } from "./header-map.ts";
import { refusalText } from "./refusal-wording.ts";
import { MAX_UPSTREAM_WAIT_MS, parseNumber, parseResetAtMs } from "./reset-time.ts";

export type { HeaderMap } from "./header-map.ts";

export type RetryHintSource = "retry-after" | "retry-after-ms" | "x-ratelimit-reset" | "body";

export interface RetryHint {
  /** Milliseconds to wait from `nowMs`; never negative. */
  readonly delayMs: number;
  readonly source: RetryHintSource;
}

export interface RetryHintInput {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly bodyText?: string;
  /** Epoch milliseconds at which the response arrived; HTTP dates and reset instants are measured from it. */
  readonly nowMs: number;
}

/**
 * The upstream's own retry advice, by priority: `retry-after-ms`, `retry-after`, the `x-ratelimit-reset-*`
 * windows, an epoch `x-ratelimit-reset`, then hints in the body (only those for a 429 an aggregator relays).
 * `undefined` for successes and when nothing usable was sent.
 */
export function retryHintFromResponse(input: RetryHintInput): RetryHint | undefined {
  const { status, headers, bodyText, nowMs } = input;
  // A success's retry-after or reset headers describe windows we have not hit; only failures ask us to wait.
  if (status < 400) return undefined;
  const facts = readErrorBody(bodyText);
  // A 429 an aggregator relays from the provider it routed to (OpenRouter's "Provider returned error"): the answer's
  // own headers are the aggregator's, about the account's window (OpenRouter's x-ratelimit-reset is its key's), not
  // the routed model's. Its wait is the relay's (`metadata.retry_after_seconds`, `metadata.headers`) or the
  // provider's body, else none: the account's reset cooled a model the provider would serve again in seconds, or
  // the minute's reset hid the provider's longer wait.
  const isRelayed = status === 429 && facts.relayedProvider !== undefined;
  return isRelayed
    ? bodyHint(facts, bodyText, nowMs, true)
    : (headerHint(status, headers, facts, nowMs) ?? bodyHint(facts, bodyText, nowMs, false));
}

/** The wait the answer's headers give (a 429's reset headers included), or a reset relayed in the body. */
function headerHint(status: number, headers: HeaderMap, facts: ErrorBodyFacts, nowMs: number): RetryHint | undefined {
  // OpenAI (and the OpenAI SDKs) send the precise value in retry-after-ms next to a whole-second retry-after.
  // A negative value is no wait (retry-after's grammar has no sign) but unreadable: clamped to 0, a `retry-after-ms:
  // -10` hid the `retry-after: 30` next to it and cooled the candidate for 0 ms, into the next 429 at once.
  const retryAfterMsText = headerValue(headers, "retry-after-ms");
  if (retryAfterMsText !== undefined) {
    const delayMs = parseNumber(retryAfterMsText);
    if (delayMs !== undefined && delayMs >= 0) return hint(delayMs, "retry-after-ms");
  }
  const retryAfterText = headerValue(headers, "retry-after");
  if (retryAfterText !== undefined) {
    const delayMs = parseRetryAfter(retryAfterText, nowMs);
    if (delayMs !== undefined) return hint(delayMs, "retry-after");
  }

  // Reset headers describe every window, also ones with room left: only a 429 says one of them is the problem.
  if (status === 429) {
    const windowDelayMs = exhaustedWindowDelayMs(headers, nowMs);
    if (windowDelayMs !== undefined) return hint(windowDelayMs, "x-ratelimit-reset");
    // OpenRouter's X-RateLimit-Reset is an epoch instant (ms), and on its own 429s it is often relayed inside
    // error.metadata.headers rather than sent as a header.
    return resetHint(headerValue(headers, "x-ratelimit-reset") ?? facts.relayedRateLimitReset, nowMs);
  }
  return undefined;
}

function resetHint(resetText: string | undefined, nowMs: number): RetryHint | undefined {
  if (resetText === undefined) return undefined;
  const resetAtMs = parseResetAtMs(resetText, "timestamp", nowMs);
  // An instant already past (a provider's clock behind ours, a stale relayed header) says nothing of when this
  // refusal ends: taken as a wait of 0, the next request went straight into the next 429, and the client was told
  // "available again in 0 s". The body's hint or the gateway's backoff decides instead.
  return resetAtMs !== undefined && resetAtMs > nowMs ? hint(resetAtMs - nowMs, "x-ratelimit-reset") : undefined;
}

/**
 * The wait the body gives: a relay's own number, Google's RetryInfo, then the message's words. `isRelayed`: the
 * routed provider's reset the relay passes on in `metadata.headers` counts too, before the words.
 */
function bodyHint(
  facts: ErrorBodyFacts,
  bodyText: string | undefined,
  nowMs: number,
  isRelayed: boolean,
): RetryHint | undefined {
  // OpenRouter's wait for a 429 it relays, inside the body (error-body.ts relayedRetryAfter): its own number, read
  // before the words of the provider's message it quotes.
  const relayedDelayMs = parseRetryAfter(facts.relayedRetryAfter, nowMs);
  if (relayedDelayMs !== undefined) return hint(relayedDelayMs, "body");
  const relayedReset = isRelayed ? resetHint(facts.relayedRateLimitReset, nowMs) : undefined;
  if (relayedReset !== undefined) return relayedReset;
  if (facts.retryDelay !== undefined) {
    const delayMs = parseDurationMs(facts.retryDelay);
    if (delayMs !== undefined) return hint(delayMs, "body");
  }
  // The words of the error's message (a relayed provider's too), not of the whole body: a wait quoted in OpenRouter's
  // `metadata.previous_errors` (another provider's "try again in 9m38s") cooled the model for that provider's wait.
  const delayMs = delayFromMessage(refusalText(bodyText));
  return delayMs === undefined ? undefined : hint(delayMs, "body");
}

/**
 * Milliseconds until retrying is allowed by a `Retry-After` value: integer or fractional seconds (also a Go
 * duration, which some gateways send), or an HTTP date measured from `nowMs` (a date already past is 0: the server
 * said when, and it has come). `undefined` when unreadable, a negative number of seconds included.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const delayMs = parseDurationMs(value);
  if (delayMs !== undefined) return delayMs < 0 ? undefined : Math.min(MAX_UPSTREAM_WAIT_MS, delayMs);
  // Date.parse reads loose text such as "1 2" as a date; an HTTP date always has a clock time and a day name.
  if (!HTTP_DATE_SHAPE.test(value)) return undefined;
  const dateMs = Date.parse(value);
  return Number.isNaN(dateMs) ? undefined : Math.min(MAX_UPSTREAM_WAIT_MS, Math.max(0, dateMs - nowMs));
}

const HTTP_DATE_SHAPE = /[A-Za-z].*\d:\d\d/;

interface ResetWindow {
  readonly remaining: string;
  readonly reset: string;
}

/** OpenAI/Groq name two windows; Cerebras names each window with its period. */
const RESET_WINDOWS: readonly ResetWindow[] = [
  { remaining: "x-ratelimit-remaining-requests", reset: "x-ratelimit-reset-requests" },
  { remaining: "x-ratelimit-remaining-tokens", reset: "x-ratelimit-reset-tokens" },
  ...(["requests", "tokens"] as const).flatMap((unit) =>
    (["minute", "hour", "day"] as const).map((period) => ({
      remaining: `x-ratelimit-remaining-${unit}-${period}`,
      reset: `x-ratelimit-reset-${unit}-${period}`,
    })),
  ),
];

/**
 * The wait for the windows a 429 is about: the longest among those with nothing remaining (waiting out only the
 * shorter one would hit the longer one at once), or the longest of all when none says it is empty. None when that
 * window's reset is not after now: an epoch instant a provider's clock (or its rounding to the second) puts behind
 * ours says nothing of when the refusal ends, as for an epoch `x-ratelimit-reset` below; a wait of 0 sent the next
 * request straight into the next 429.
 */
function exhaustedWindowDelayMs(headers: HeaderMap, nowMs: number): number | undefined {
  let longestExhaustedMs: number | undefined;
  let longestMs: number | undefined;
  for (const window of RESET_WINDOWS) {
    const resetText = headerValue(headers, window.reset);
    if (resetText === undefined) continue;
    // Read as the dialects read these headers (reset-time.ts): an epoch instant where a delay was expected (SambaNova's
    // x-ratelimit-reset-requests-day, read both ways in the wild) is that instant, not 31 years clamped to 32 days.
    const resetAtMs = parseResetAtMs(resetText, "delay", nowMs);
    if (resetAtMs === undefined) continue;
    const delayMs = resetAtMs - nowMs;
    if (longestMs === undefined || delayMs > longestMs) longestMs = delayMs;
    const remainingText = headerValue(headers, window.remaining);
    const remaining = remainingText === undefined ? undefined : parseNumber(remainingText);
    if (remaining !== undefined && remaining <= 0) {
      if (longestExhaustedMs === undefined || delayMs > longestExhaustedMs) longestExhaustedMs = delayMs;
    }
  }
  const delayMs = longestExhaustedMs ?? longestMs;
  return delayMs !== undefined && delayMs > 0 ? delayMs : undefined;
}

/**
 * "Please try again in 9m38.016s" (Groq, OpenAI), "Please retry in 45.578569677s" (Gemini), "try again in 20
 * seconds", "retry after 5 seconds". The amount is either a Go duration or a number followed by a unit word.
 */
const RETRY_PHRASE =
  /\b(?:try again|retry|wait)\s+(?:in\s+|after\s+)?(\d[\d.]*(?:[a-z\u00b5\u03bc]+[\d.]*)*)(?:\s*([a-z]+))?/i;

const MS_PER_UNIT_WORD: ReadonlyMap<string, number> = new Map([
  ["ms", 1],
  ["millisecond", 1],
  ["milliseconds", 1],
  ["s", 1_000],
  ["sec", 1_000],
  ["secs", 1_000],
  ["second", 1_000],
  ["seconds", 1_000],
  ["m", 60_000],
  ["min", 60_000],
  ["mins", 60_000],
  ["minute", 60_000],
  ["minutes", 60_000],
  ["h", 3_600_000],
  ["hr", 3_600_000],
  ["hrs", 3_600_000],
  ["hour", 3_600_000],
  ["hours", 3_600_000],
]);

/** `text`: the refusal's words, lower-cased and cut to what is scanned (refusal-wording.ts `refusalText`). */
function delayFromMessage(text: string): number | undefined {
  const match = RETRY_PHRASE.exec(text);
  if (match === null) return undefined;
  const amount = trimTrailingDots((match[1] ?? "").toLowerCase());
  const number = parseNumber(amount);
  if (number !== undefined) {
    // A bare amount: the next word is its unit ("20 seconds"); without one, seconds.
    const unitWord = match[2]?.toLowerCase();
    const msPerUnit = unitWord === undefined ? 1_000 : (MS_PER_UNIT_WORD.get(unitWord) ?? 1_000);
    return number * msPerUnit;
  }
  const goDurationMs = parseDurationMs(amount);
  if (goDurationMs !== undefined) return goDurationMs;
  // "20sec", "2mins": a number glued to a unit word.
  let split = 0;
  while (split < amount.length && (isDigitCode(amount.charCodeAt(split)) || amount.charCodeAt(split) === 46)) split++;
  const gluedNumber = parseNumber(amount.slice(0, split));
  const gluedUnitMs = MS_PER_UNIT_WORD.get(amount.slice(split));
  return gluedNumber === undefined || gluedUnitMs === undefined ? undefined : gluedNumber * gluedUnitMs;
}

function trimTrailingDots(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 46) end--;
  return text.slice(0, end);
}

function isDigitCode(code: number): boolean {
  return code >= 48 && code <= 57;
}

function hint(delayMs: number, source: RetryHintSource): RetryHint {
  return { delayMs: Math.min(MAX_UPSTREAM_WAIT_MS, Math.max(0, Math.round(delayMs))), source };
}
