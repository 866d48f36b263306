// Learning from an upstream's answer, as data: what a response teaches about the candidate (cool it down, park
// it until its day ends, park the provider's key, count a failure for its circuit, remember the windows its
// headers report). Pure: the recorder (pipeline/recorder.ts) is the one place that applies these effects.

import type { ProviderSettings } from "../config/types.ts";
import type { Outcome } from "../errors/outcomes.ts";
import { cutText } from "../errors/shown-reason.ts";
import { isRecord } from "../is-record.ts";
import type { CooldownCause } from "../limits/availability.ts";
import type { Reservation } from "../limits/budget-types.ts";
import { isDayRolling, NOW_RESETS_TAKEN_AS_ROLLOVER, RESET_READS_NOW_WITHIN_MS } from "../limits/day-rollover.ts";
import { dayWindow } from "../limits/day-window.ts";
import { RATE_LIMIT_DIALECTS, type RateLimitDialectName } from "../limits/header-dialects.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import { concurrencyFromBody, statedLimits } from "../limits/limit-learning.ts";
import { parseRateLimitHeaders } from "../limits/rate-limit-headers.ts";
import { type RetryHint, retryHintFromResponse } from "../limits/retry-hint.ts";
import { learnedOrderFeature, PREFIX_REFUSED_FEATURE, REASONING_REFUSED_FEATURE } from "../providers/message-order.ts";
import { isMessageFieldRefusal, isPrefixRefusal, orderRefusedBy } from "../providers/order-refusals.ts";
import { isWholeMessageIn } from "../providers/request-echo.ts";
import { INPUTS_FEATURE, type RequestFeature } from "../router/request-features.ts";
import { isEchoedUnsupported, type Verdict } from "./classify-response.ts";
import type { Effect } from "./effects.ts";
import { describedMessage, type UpstreamErrorFields } from "./read-upstream-error.ts";
import { refusedFeature } from "./refused-feature.ts";
import { refusedFromEntries, requestParamOf, sizeRefusalOf } from "./size-refusal.ts";

/** The refused answer itself, for what its headers and body say about the limits. */
export interface RefusedAnswer {
  readonly headers: HeaderMap;
  readonly bodyText: string;
}

export interface Lesson {
  readonly outcome: Outcome;
  readonly reason: string;
  readonly effects: readonly Effect[];
}

/**
 * On a provider whose day is a wall-clock counter, a retry hint at least this long on a daily-quota 429 is taken as
 * the quota's reset (GitHub's "wait 57829 seconds"); a shorter one is not (Gemini's per-day RetryInfo says ~20 s
 * while the quota stays empty until midnight Pacific). A rolling day's hint is always taken (isDayRolling).
 */
const DAILY_HINT_TRUST_MS = 3_600_000;

/** A refused feature's reason is kept to this many characters of the upstream's message. */
const MAX_LESSON_REASON_CHARS = 300;

/** The chat door's upstream path (EndpointSpec `upstreamPath`). */
const CHAT_PATH = "/chat/completions";

const CIRCUIT_FAILURE: Effect = Object.freeze({ kind: "circuit_failure" });

export function failureLesson(outcome: Outcome, reason: string): Lesson {
  return { outcome, reason, effects: [CIRCUIT_FAILURE] };
}

/**
 * What a failed answer teaches (cooldowns, parked keys, circuit, a refused feature), and the attempt's outcome.
 * `features`: the request's (router/request-features.ts), which an `unsupported` refusal may name.
 */
export function lessonFromVerdict(
  verdict: Verdict,
  settings: ProviderSettings,
  nowMs: number,
  answer?: RefusedAnswer,
  features: readonly RequestFeature[] = [],
  /** The endpoint's path below the base URL (EndpointSpec `upstreamPath`), which a route refusal is about. */
  endpointPath?: string,
  /**
   * What was sent: `body`, the request (a role-order phrase that is also in it may be an echo of it, and teaches
   * nothing); `hasPrefix`, whether a message carried Mistral's `prefix` (only then may a refusal naming it teach);
   * `hasReasoning`, the same for `reasoning_content`.
   */
  sent?: { readonly body: unknown; readonly hasPrefix: boolean; readonly hasReasoning?: boolean },
): Lesson {
  switch (verdict.kind) {
    case "success":
      return failureLesson("bad_response", "unexpected success verdict");
    case "rate_limited": {
      const cause: CooldownCause =
        verdict.limitKind === "daily"
          ? "daily_quota"
          : verdict.limitKind === "credits"
            ? "credits_exhausted"
            : verdict.limitKind === "capacity"
              ? "capacity"
              : // A short window's, and a concurrency refusal's: a limit of the key, over when room is back.
                "rate_limited";
      // A request larger than a whole window fits after no wait: its retry-after is not passed on as advice.
      const hintText =
        verdict.hint === undefined || verdict.isRequestTooLarge === true
          ? ""
          : ` (retry in ${Math.ceil(verdict.hint.delayMs)} ms, from ${verdict.hint.source})`;
      // A request larger than a whole window says nothing about the key's state: no cooldown (the retry-after on
      // Groq's 413 would only keep smaller requests away), only the limit it states, so that the next request of
      // that size skips this candidate without an upstream request.
      const own = verdict.isRequestTooLarge === true ? [] : [rateLimitEffect(verdict, cause, settings, nowMs)];
      return {
        outcome: "rate_limited",
        reason: `${verdict.reason}${hintText}`,
        effects: [
          ...own,
          // The pool cools as long as the deployment (recorder.ts): its reason says where that wait came from too.
          ...(isAccountWide(verdict, settings)
            ? [
                {
                  kind: "cool_pool" as const,
                  reason: own[0] !== undefined && "reason" in own[0] ? own[0].reason : verdict.reason,
                },
              ]
            : []),
          // A relayed provider's limits are not this key's (classify-429.ts isRelayed): nothing to learn of them.
          ...(answer === undefined || verdict.isRelayed === true
            ? []
            : learnLimitsEffect(verdict, settings, nowMs, answer, isAccountWide(verdict, settings))),
        ],
      };
    }
    case "invalid_key":
      return {
        outcome: "invalid_key",
        reason: verdict.reason,
        effects: [{ kind: "park_key", reason: `key rejected: ${verdict.reason}`, cause: "invalid_key" }],
      };
    case "context_length":
      return { outcome: "context_length", reason: verdict.reason, effects: [] };
    case "transient":
      return failureLesson("server_error", verdict.reason);
    case "rejected":
      if (
        verdict.refusal === "model_unavailable" ||
        (verdict.refusal === "unserved_endpoint" && verdict.status === 404 && endpointPath === CHAT_PATH)
      ) {
        // A router's 404 on the chat route is the model's, not "no chat route": a reverse proxy answers it while the
        // server behind is down (traefik/traefik#9242); learned, it would leave the whole provider out of every chat
        // request for `unserved_endpoint_ms` (a day), across restarts. A 405 or `served_paths` still says so.
        const reason = `HTTP ${verdict.status}: this provider does not serve the model: ${describedMessage(verdict.error)}`;
        return { outcome: "model_unavailable", reason, effects: [{ kind: "model_unavailable", reason }] };
      }
      if (verdict.refusal === "unserved_endpoint") {
        const reason = `HTTP ${verdict.status}: this provider has no ${endpointPath ?? "such"} route: ${gistOf(describedMessage(verdict.error))}`;
        return {
          outcome: "unserved_endpoint",
          reason,
          effects: endpointPath === undefined ? [] : [{ kind: "unserved_endpoint", endpointPath, reason }],
        };
      }
      if (verdict.refusal === "unsupported" && verdict.error.flaggedFor !== undefined) {
        // A moderation refusal (classify-response.ts): this input on this model only; nothing learned or parked.
        return { outcome: "unsupported", reason: describedMessage(verdict.error), effects: [] };
      }
      if (verdict.refusal === "unsupported") {
        const sized =
          endpointPath === "/embeddings"
            ? inputsLesson(verdict.error, sent?.body)
            : sizedLesson(verdict.error, features, sent?.body);
        if (sized !== undefined) {
          const reason = describedMessage(verdict.error);
          return {
            outcome: "unsupported",
            reason,
            effects: [{ kind: "refused_feature", reason: `HTTP ${verdict.status}: ${gistOf(reason)}`, ...sized }],
          };
        }
        const order = orderRefusedBy(verdict.error, sent?.body);
        const feature =
          order !== undefined
            ? learnedOrderFeature(order)
            : sent?.hasPrefix === true && isPrefixRefusal(verdict.error, sent.body)
              ? PREFIX_REFUSED_FEATURE
              : sent?.hasReasoning === true && isMessageFieldRefusal("reasoning_content", verdict.error, sent.body)
                ? REASONING_REFUSED_FEATURE
                : // Its "not supported" only quotes the prompt, or the request holds the whole answer (a refusal passed
                  // on before, pasted back): failed over (classify-response.ts refusalOf), not learned.
                  isEchoedUnsupported(verdict.error.message, sent?.body) ||
                    isWholeMessageIn(verdict.error.message, sent?.body)
                  ? undefined
                  : refusedFeature(verdict.error, features);
        const reason = describedMessage(verdict.error);
        const gist = gistOf(reason);
        return {
          outcome: "unsupported",
          reason,
          effects:
            feature === undefined
              ? []
              : [{ kind: "refused_feature", feature, reason: `HTTP ${verdict.status}: ${gist}` }],
        };
      }
      return { outcome: "rejected", reason: describedMessage(verdict.error), effects: [] };
  }
}

/**
 * A refusal of a parameter for its size (size-refusal.ts) tied to one of the request's features: the lesson holds for
 * requests carrying at least `minEntries` of it (above the limit the refusal states, else as many as were sent), so a
 * smaller one is still sent there first. Undefined when it is not one, or names no feature of the request.
 */
function sizedLesson(
  error: UpstreamErrorFields,
  features: readonly RequestFeature[],
  body: unknown,
): { readonly feature: RequestFeature; readonly minEntries?: number } | undefined {
  const refusal = sizeRefusalOf(error, body);
  if (refusal?.param === undefined) return undefined;
  const feature = refusedFeature({ message: "", param: requestParamOf(refusal.param) }, features);
  if (feature === undefined) return undefined;
  const sent = isRecord(body) ? body[feature] : undefined;
  const minEntries = refusedFromEntries(refusal, Array.isArray(sent) ? sent.length : undefined);
  return minEntries === undefined ? { feature } : { feature, minEntries };
}

/**
 * An embeddings batch refused for its number of inputs, with the most the provider takes stated: learned as a sized
 * lesson of INPUTS_FEATURE, which pipeline/embeddings-chunks.ts reads to split the next larger batch. Without a stated
 * limit nothing is learned: "fewer than the N sent" would make chunks of N-1.
 */
function inputsLesson(
  error: UpstreamErrorFields,
  body: unknown,
): { readonly feature: RequestFeature; readonly minEntries: number } | undefined {
  const refusal = sizeRefusalOf(error, body);
  if (refusal?.maxEntries === undefined || refusal.param === undefined) return undefined;
  if (requestParamOf(refusal.param) !== INPUTS_FEATURE) return undefined;
  const sent = isRecord(body) ? body.input : undefined;
  const minEntries = refusedFromEntries(refusal, Array.isArray(sent) ? sent.length : undefined);
  return minEntries === undefined || minEntries < 2 ? undefined : { feature: INPUTS_FEATURE, minEntries };
}

/** Kept for hours and shown in /stats and route explanations: a refusal's gist, not a whole 8 KB message. */
function gistOf(message: string): string {
  return cutText(message, MAX_LESSON_REASON_CHARS);
}

/**
 * Whether a 429 empties the key's whole pool: the answer says so (OpenRouter's free-models-per-min/day), or the
 * provider counts one pool per key (`rate_limit_scope: account`). A provider's capacity is not the key's limit,
 * and credits already park the whole key.
 */
function isAccountWide(verdict: Verdict & { kind: "rate_limited" }, settings: ProviderSettings): boolean {
  if (verdict.limitKind !== "short" && verdict.limitKind !== "daily") return false;
  if (verdict.isRequestTooLarge === true) return false;
  return verdict.isAccountWide === true || settings.rateLimitScope === "account";
}

function rateLimitEffect(
  verdict: Verdict & { kind: "rate_limited" },
  cause: CooldownCause,
  settings: ProviderSettings,
  nowMs: number,
): Effect {
  // A daily quota is parked until the provider's day ends. A short hint on a daily 429 (Gemini's PerDay
  // RetryInfo says ~20 s) only means "not now"; an hour or more (GitHub's "wait 57829 seconds") is the reset. A
  // rolling day (Groq's, or any provider counting in buckets) gives capacity back continuously: its hint, however
  // short, is when a request fits again, and parking until midnight would waste the rest of the day.
  const isHintTrusted =
    verdict.hint !== undefined && (verdict.hint.delayMs >= DAILY_HINT_TRUST_MS || isDayRolling(settings));
  // A day whose reset the provider dates a moment ago has just rolled over: the backoff, not a whole new day.
  if (verdict.limitKind === "daily" && !isHintTrusted && verdict.isWindowRolledOver !== true) {
    return {
      kind: "park",
      untilMs: dayWindow(settings.dayReset, nowMs).endMs,
      cause,
      reason: `${verdict.reason}; parked until the provider's day ends (day_reset)`,
      source: "guessed",
    };
  }
  if (verdict.limitKind === "credits" && verdict.hint === undefined) {
    return { kind: "park_key", reason: verdict.reason, cause: "credits_exhausted" };
  }
  const reason = learnedCooldownReason(verdict);
  // A day's reset that reads "now" (delay 0, or our clock's instant) with every 429: after a streak of them, the day
  // is out until day_reset, as without a reset (limits/day-rollover.ts NOW_RESETS_TAKEN_AS_ROLLOVER).
  const isResetNow =
    verdict.isResetNow === true || (isHintTrusted && (verdict.hint?.delayMs ?? 0) <= RESET_READS_NOW_WITHIN_MS);
  if (verdict.limitKind !== "daily" || !isResetNow) return { kind: "cool_down", hint: verdict.hint, cause, reason };
  const dayEnd = {
    untilMs: dayWindow(settings.dayReset, nowMs).endMs,
    reason: `${verdict.reason}; ${NOW_RESETS_TAKEN_AS_ROLLOVER + 1} daily 429s in a row whose reset reads now: parked until the provider's day ends (day_reset)`,
  };
  // Its own wait, when it reads now too, is none: the backoff (the time a roll-over, or a refill, is given), not 0 ms,
  // which let three requests in the same moment park a day that refills continuously.
  const hint = (verdict.hint?.delayMs ?? 0) <= RESET_READS_NOW_WITHIN_MS ? undefined : verdict.hint;
  return { kind: "cool_down", hint, cause, reason: learnedCooldownReason({ ...verdict, hint }), dayEnd };
}

/** A hint's source as a user reads it: which part of the provider's answer set the wait. */
const HINT_SOURCE_WORDS: Readonly<Record<RetryHint["source"], string>> = {
  "retry-after": "retry-after header",
  "retry-after-ms": "retry-after-ms header",
  "x-ratelimit-reset": "x-ratelimit-reset headers",
  body: "error body",
};

/**
 * A learned cooldown's reason says where its wait came from (the provider's headers or body, or the gateway's own
 * backoff when the 429 gave none): a route explanation and a refused client's 429 (final-error.ts) name it, so a
 * user of a free tier can tell a provider's stated wait from a guess.
 */
function learnedCooldownReason(verdict: Verdict & { kind: "rate_limited" }): string {
  return verdict.hint === undefined
    ? `${verdict.reason}; cooling down for the gateway's backoff (no retry hint)`
    : `${verdict.reason}; cooling down for the wait in the provider's ${HINT_SOURCE_WORDS[verdict.hint.source]}`;
}

/** A success's rate-limit headers: the windows to learn, and a park for every window that says "0 left". */
export function lessonsFromHeaders(headers: HeaderMap, settings: ProviderSettings, nowMs: number): readonly Effect[] {
  const dialectName = settings.rateLimitDialect;
  if (!(dialectName in RATE_LIMIT_DIALECTS)) return [];
  const windows = parseRateLimitHeaders(headers, dialectName as RateLimitDialectName, nowMs);
  if (windows.length === 0) return [];
  // An account-wide provider's headers (OpenRouter's x-ratelimit-remaining) count the key's pool.
  const effects: Effect[] = [{ kind: "learn_windows", windows, isAccountWide: settings.rateLimitScope === "account" }];
  for (const window of windows) {
    if (window.remaining === 0 && window.resetAtMs !== undefined && window.resetAtMs > nowMs) {
      effects.push({
        kind: "park",
        untilMs: window.resetAtMs,
        cause: "budget_exhausted",
        reason: `provider reports 0 ${window.unit} left this ${window.window}`,
        source: "provider",
      });
    }
  }
  return effects;
}

/**
 * The effects with the rate-limit windows they report anchored to the request that carried them (its budget
 * reservation): the provider counted up to that request, and the ones sent after it, possibly still in flight, are
 * still to be subtracted from what it says is left (budgets.ts `learn`).
 */
export function reportedAsOf(effects: readonly Effect[], reservation: Reservation): readonly Effect[] {
  if (!effects.some((effect) => effect.kind === "learn_windows")) return effects;
  return effects.map((effect) =>
    effect.kind === "learn_windows"
      ? { ...effect, windows: effect.windows.map((window) => ({ ...window, asOf: reservation })) }
      : effect,
  );
}

/** What a 429 on the key's own limits says about them (capacity and credits refusals say nothing). */
function learnLimitsEffect(
  verdict: Verdict & { kind: "rate_limited" },
  settings: ProviderSettings,
  nowMs: number,
  answer: RefusedAnswer,
  isAccountWide: boolean,
): Effect[] {
  if (verdict.limitKind === "capacity" || verdict.limitKind === "credits") return [];
  const dialectName = settings.rateLimitDialect;
  const dialect =
    dialectName in RATE_LIMIT_DIALECTS ? RATE_LIMIT_DIALECTS[dialectName as RateLimitDialectName] : undefined;
  // Groq's retry-after is whole seconds ("12") next to the body's exact "try again in 11.455s": the exact one
  // places a bucket's refill to the millisecond.
  const bodyHint = retryHintFromResponse({ status: 429, headers: {}, bodyText: answer.bodyText, nowMs });
  const hintDelayMs =
    bodyHint !== undefined && (verdict.hint === undefined || bodyHint.delayMs <= verdict.hint.delayMs)
      ? bodyHint.delayMs
      : verdict.hint?.delayMs;
  const algorithm = settings.limits?.window;
  const offsetMs = settings.limits?.windowOffsetMs;
  if (verdict.limitKind === "concurrency") {
    // How many may run at once, not how often: no windows, no spacing, only the number if the body states one.
    const statedConcurrency = concurrencyFromBody(answer.bodyText);
    return [
      {
        kind: "learn_limits",
        refusal: {
          kind: "concurrency",
          hintDelayMs,
          stated: [],
          ...(statedConcurrency === undefined ? {} : { statedConcurrency }),
        },
        isAccountWide,
      },
    ];
  }
  const stated = statedLimits(answer.headers, answer.bodyText, dialect, nowMs);
  // Only what the provider states: the spacing of our requests says nothing about a refusal of the request's size.
  if (verdict.isRequestTooLarge === true && stated.length === 0) return [];
  return [
    {
      kind: "learn_limits",
      refusal: {
        kind: verdict.limitKind,
        hintDelayMs,
        stated,
        ...(algorithm === undefined ? {} : { algorithm }),
        ...(offsetMs === undefined ? {} : { offsetMs }),
      },
      isAccountWide,
    },
  ];
}
