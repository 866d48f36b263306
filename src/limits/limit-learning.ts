// Learning a provider's limits from its 429s, for providers whose limits are not in the config. Pure.
//
// On a refusal the provider usually says more than "not now": a limit header (x-ratelimit-limit-*), a body
// ("on requests per minute (RPM): Limit 30, Used 30", "Rate limit of 50 per 86400s", Google's quota id with its
// value), a retry delay (RetryInfo, retry-after, a reset time). Where it names a limit, that is the limit. Where
// it does not, the spacing of what we sent before the 429 is the evidence: a provider that refuses a request
// less than a second after the last accepted one, or asks us to wait at most a second, counts per second, and
// its limit is what it accepted in that second; a wait of up to a minute means a per-minute limit of what it
// accepted in the last minute; a daily quota's limit is what it accepted today. A learned limit paces the
// candidate (budgets.ts checks it like a configured one), so the next request waits for room instead of
// provoking the next 429.
import type { RateLimitKind } from "./classify-429.ts";
import { readErrorBody } from "./error-body.ts";
import type { RateLimitDialect, RateLimitUnit, RateLimitWindow } from "./header-dialects.ts";
import type { HeaderMap } from "./header-map.ts";
import { parseRateLimitHeaders } from "./rate-limit-headers.ts";
import { refusalWords } from "./refusal-wording.ts";
import type { WindowAlgorithm } from "./window-counters.ts";

/** A limit the provider stated or we inferred, with what it was learned from. */
export interface LearnedRule {
  readonly unit: RateLimitUnit;
  readonly window: RateLimitWindow;
  readonly limit: number;
  readonly evidence: string;
  /** Inferred from what we sent before the 429 (the provider stated no limit): see BudgetRule.isOwnEvidence. */
  readonly isOwnEvidence?: true;
}

/** What a refusal told us, as read when it arrived. */
export interface RefusalFacts {
  /** When the refused request was sent (its reservation's time). */
  readonly sentAtMs: number;
  readonly kind: RateLimitKind;
  /** The provider's retry delay (ms), from whichever signal it sent. */
  readonly hintDelayMs: number | undefined;
  /** Limits the headers or the body named. */
  readonly stated: readonly LearnedRule[];
  /** A concurrency refusal's stated number of requests that may be in flight at once. */
  readonly statedConcurrency?: number;
  /** How the provider counts (from its `limits.window`), applied to learned second/minute/hour limits. */
  readonly algorithm?: WindowAlgorithm;
  readonly offsetMs?: number;
}

const SECOND_MS = 1_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** A retry-after in whole seconds is up to a second longer than the provider's exact wait. */
const HINT_ROUNDING_MS = 1_000;

/** The limits a refusal teaches, given the send times the provider accepted before it (the last minute). */
export function limitsFromRefusal(
  refusal: RefusalFacts,
  acceptedSendsMs: readonly number[],
  acceptedToday: number,
): LearnedRule[] {
  // Capacity and credits refusals say nothing about the key's limits; a concurrency refusal says nothing about its
  // rates (the requests in flight were all accepted: reading them as a per-second limit paced the key wrongly).
  if (refusal.kind === "capacity" || refusal.kind === "credits" || refusal.kind === "concurrency") return [];
  const learned: LearnedRule[] = [...refusal.stated];
  const hasStated = (window: RateLimitWindow) => learned.some((rule) => rule.window === window);
  if (refusal.kind === "daily") {
    if (!hasStated("day") && acceptedToday > 0) {
      learned.push({
        unit: "requests",
        window: "day",
        limit: acceptedToday,
        evidence: `a daily-quota 429 after ${acceptedToday} accepted requests today`,
        isOwnEvidence: true,
      });
    }
    return learned;
  }
  if (refusal.stated.some((rule) => rule.window === "second" || rule.window === "minute" || rule.window === "hour")) {
    return learned;
  }
  const sentAtMs = refusal.sentAtMs;
  const acceptedWithin = (windowMs: number) =>
    acceptedSendsMs.filter((atMs) => atMs > sentAtMs - windowMs && atMs <= sentAtMs).length;
  const lastAcceptedMs = acceptedSendsMs.filter((atMs) => atMs <= sentAtMs).at(-1);
  const hint = refusal.hintDelayMs;
  const inSecond = acceptedWithin(SECOND_MS);
  if (inSecond > 0 && (hint === undefined ? lastAcceptedMs !== undefined : hint <= SECOND_MS)) {
    const gapMs = lastAcceptedMs === undefined ? 0 : sentAtMs - lastAcceptedMs;
    learned.push({
      unit: "requests",
      window: "second",
      limit: inSecond,
      evidence:
        hint === undefined
          ? `429 ${gapMs} ms after the last accepted request (${inSecond} accepted in the second before)`
          : `429 asking to wait ${hint} ms (${inSecond} accepted in the second before)`,
      isOwnEvidence: true,
    });
    return learned;
  }
  const window: RateLimitWindow | undefined =
    hint === undefined || hint <= MINUTE_MS ? "minute" : hint <= HOUR_MS ? "hour" : undefined;
  if (window === "minute") {
    const inMinute = acceptedWithin(MINUTE_MS);
    // A sliding minute of our own requests frees room when the oldest of them leaves it. A much shorter wait means
    // the provider counts something else (other clients of the key, another window): no limit is learned from
    // our spacing then, only the cooldown applies. (Fixed windows and buckets free room sooner by design.)
    const oldestMs = acceptedSendsMs.find((atMs) => atMs > sentAtMs - MINUTE_MS && atMs <= sentAtMs);
    const isSliding = refusal.algorithm === undefined || refusal.algorithm === "sliding";
    const isConsistent =
      hint === undefined ||
      !isSliding ||
      oldestMs === undefined ||
      oldestMs + MINUTE_MS - sentAtMs <= hint + HINT_ROUNDING_MS;
    if (inMinute > 0 && isConsistent) {
      learned.push({
        unit: "requests",
        window: "minute",
        limit: inMinute,
        evidence: `429${hint === undefined ? "" : ` asking to wait ${hint} ms`} after ${inMinute} accepted in the minute before`,
        isOwnEvidence: true,
      });
    }
  }
  return learned;
}

/** The limits a refusal names, in its headers (the provider's dialect) and its body. */
export function statedLimits(
  headers: HeaderMap,
  bodyText: string | undefined,
  dialect: RateLimitDialect | undefined,
  nowMs: number,
): LearnedRule[] {
  const stated: LearnedRule[] = [];
  const add = (rule: LearnedRule) => {
    if (rule.limit <= 0 || !Number.isFinite(rule.limit)) return;
    if (stated.some((known) => known.unit === rule.unit && known.window === rule.window)) return;
    stated.push(rule);
  };
  if (dialect !== undefined) {
    for (const window of parseRateLimitHeaders(headers, dialect, nowMs)) {
      if (window.limit === undefined) continue;
      add({
        unit: window.unit,
        window: window.window,
        limit: window.limit,
        evidence: `limit header (${window.unit} per ${window.window}: ${window.limit})`,
      });
    }
  }
  for (const rule of limitsFromBody(bodyText)) add(rule);
  return stated;
}

const MAX_SCANNED_BODY_CHARS = 8 * 1024;

/** "requests per minute (RPM): Limit 30", "RPD: Limit 1000" (Groq, OpenAI). */
const PER_WINDOW_LIMIT =
  /\b(requests|tokens) per (second|sec|minute|min|hour|day)\b[^.]{0,40}?\blimit:?\s*(\d+)|\b([RT])P([SMHD])\)?:?\s*limit:?\s*(\d+)/i;
/** GitHub Models: "Rate limit of 50 per 86400s exceeded for UserByModelByDay". */
const PER_SECONDS_LIMIT = /\brate limit of (\d+) per (\d+)s\b/i;
/** Google's QuotaFailure violations: "quotaId": "...PerMinute...", ..., "quotaValue": "15" (in one object). */
const GOOGLE_VIOLATION = /"quotaId"\s*:\s*"([^"]+)"[^{}]*?(?:\{[^{}]*\}[^{}]*?)?"quotaValue"\s*:\s*"?(\d+)/g;
/** Google's message: "Quota exceeded for metric: ..., limit: 15, model: ...". */
const GOOGLE_MESSAGE_LIMIT = /\blimit:\s*(\d+)/i;
/** OpenRouter relays its headers in error.metadata.headers. */
const RELAYED_LIMIT = /"x-ratelimit-limit"\s*:\s*"?(\d+)/i;

const WINDOW_OF_LETTER: Readonly<Record<string, RateLimitWindow>> = { S: "second", M: "minute", H: "hour", D: "day" };
const WINDOW_OF_WORD: Readonly<Record<string, RateLimitWindow>> = { sec: "second", min: "minute" };

/** Limits named in an error body, with the phrase they came from. */
export function limitsFromBody(bodyText: string | undefined): LearnedRule[] {
  if (bodyText === undefined || bodyText === "") return [];
  const text = bodyText.length > MAX_SCANNED_BODY_CHARS ? bodyText.slice(0, MAX_SCANNED_BODY_CHARS) : bodyText;
  // The phrases are read from the error's message (refusal-wording.ts): another provider's "tokens per day (TPD):
  // Limit 100000" quoted in OpenRouter's `metadata.previous_errors` taught the OpenRouter key that provider's limit.
  // Google's violations and OpenRouter's relayed headers are fields of the body itself, read in it.
  const words = refusalWords(bodyText);
  const rules: LearnedRule[] = [];
  const perWindow = PER_WINDOW_LIMIT.exec(words);
  if (perWindow !== null) {
    const unit: RateLimitUnit = (perWindow[1] ?? perWindow[4] ?? "").toLowerCase().startsWith("t")
      ? "tokens"
      : "requests";
    const word = perWindow[2]?.toLowerCase();
    const window: RateLimitWindow | undefined =
      word === undefined
        ? WINDOW_OF_LETTER[(perWindow[5] ?? "").toUpperCase()]
        : (WINDOW_OF_WORD[word] ?? (word as RateLimitWindow));
    const limit = Number(perWindow[3] ?? perWindow[6]);
    if (window !== undefined) rules.push({ unit, window, limit, evidence: `body: "${perWindow[0]}"` });
  }
  const perSeconds = PER_SECONDS_LIMIT.exec(words);
  if (perSeconds !== null) {
    const window = windowOfSeconds(Number(perSeconds[2]));
    if (window !== undefined) {
      const unit: RateLimitUnit = /tokens/i.test(words) ? "tokens" : "requests";
      rules.push({ unit, window, limit: Number(perSeconds[1]), evidence: `body: "${perSeconds[0]}"` });
    }
  }
  // Google: every QuotaFailure violation with its quota id and value; else the message's "limit: N" for the first id.
  let hasGoogle = false;
  for (const match of text.matchAll(GOOGLE_VIOLATION)) {
    const [, quotaId = "", value = ""] = match;
    hasGoogle = true;
    rules.push({ ...googleWindow(quotaId), limit: Number(value), evidence: `quota ${quotaId} = ${value}` });
  }
  const quotaId = readErrorBody(bodyText).quotaIds[0];
  const messageLimit = GOOGLE_MESSAGE_LIMIT.exec(words);
  if (!hasGoogle && quotaId !== undefined && messageLimit !== null) {
    rules.push({
      ...googleWindow(quotaId),
      limit: Number(messageLimit[1]),
      evidence: `quota ${quotaId}, "${messageLimit[0]}"`,
    });
  }
  const relayed = RELAYED_LIMIT.exec(text);
  if (relayed !== null) {
    const isDaily = words.toLowerCase().includes("free-models-per-day");
    rules.push({
      unit: "requests",
      window: isDaily ? "day" : "minute",
      limit: Number(relayed[1]),
      evidence: `relayed X-RateLimit-Limit ${relayed[1]}${isDaily ? " (free-models-per-day)" : ""}`,
    });
  }
  return rules;
}

/**
 * GitHub Models: "Rate limit of 2 per 0s exceeded for UserConcurrentRequests. Please wait 0 seconds before
 * retrying." The number is the requests that may be in flight at once (the docs' "Concurrent requests" row).
 */
const CONCURRENCY_LIMIT = /\brate limit of (\d+) per \d+s exceeded for \w*concurrent/i;

/** The number of requests in flight a concurrency refusal's body states, if it does. */
export function concurrencyFromBody(bodyText: string | undefined): number | undefined {
  const match = CONCURRENCY_LIMIT.exec(refusalWords(bodyText));
  return match === null ? undefined : Number(match[1]);
}

/** A Google quota id's unit and window: "GenerateContentInputTokensPerModelPerMinute-FreeTier". */
function googleWindow(quotaId: string): { unit: RateLimitUnit; window: RateLimitWindow } {
  const window: RateLimitWindow = quotaId.includes("PerDay")
    ? "day"
    : quotaId.includes("PerHour")
      ? "hour"
      : quotaId.includes("PerSecond")
        ? "second"
        : "minute";
  return { unit: /Token/i.test(quotaId) ? "tokens" : "requests", window };
}

function windowOfSeconds(seconds: number): RateLimitWindow | undefined {
  if (seconds === 1) return "second";
  if (seconds === 60) return "minute";
  if (seconds === 3_600) return "hour";
  if (seconds === 86_400) return "day";
  return undefined;
}
