// Which response headers carry which rate-limit window, per provider. Data, not code: a provider that renames a
// header is a one-line change here, and `parseRateLimitHeaders` stays one loop.
import type { RateLimitDialectName as ConfigDialectName } from "../config/provider-schema.ts";
import type { ResetFormat } from "./reset-time.ts";

export type RateLimitUnit = "requests" | "tokens";
export type RateLimitWindow = "second" | "minute" | "hour" | "day" | "month";

/** One window's headers. Any of them may be missing from a response; a provider may send only some. */
export interface RateLimitHeaderGroup {
  readonly unit: RateLimitUnit;
  readonly window: RateLimitWindow;
  readonly limitHeader?: string;
  readonly remainingHeader?: string;
  readonly reset?: { readonly header: string; readonly format: ResetFormat };
}

export interface RateLimitDialect {
  readonly groups: readonly RateLimitHeaderGroup[];
  /**
   * The provider's day quota is a rolling one that refills continuously, not a counter reset at a wall-clock time:
   * a daily 429's retry hint then says when a request fits again, however short (lessons.ts).
   */
  readonly isDayRolling?: boolean;
}

/** OpenAI's names: one requests and one tokens window, resets as Go durations ("1s", "6m0s"). */
function openAiStyle(requestsWindow: RateLimitWindow, tokensWindow: RateLimitWindow): RateLimitDialect {
  return {
    groups: [
      {
        unit: "requests",
        window: requestsWindow,
        limitHeader: "x-ratelimit-limit-requests",
        remainingHeader: "x-ratelimit-remaining-requests",
        reset: { header: "x-ratelimit-reset-requests", format: "delay" },
      },
      {
        unit: "tokens",
        window: tokensWindow,
        limitHeader: "x-ratelimit-limit-tokens",
        remainingHeader: "x-ratelimit-remaining-tokens",
        reset: { header: "x-ratelimit-reset-tokens", format: "delay" },
      },
    ],
  };
}

/**
 * Cerebras puts the period in the name (x-ratelimit-limit-requests-day) and the reset in fractional seconds
 * ("33011.382867097855"). Its docs list requests-day and tokens-minute; keys on other tiers also send
 * requests-minute and tokens-day, and the docs measure RPH/TPH too, so every period is listed.
 */
function cerebrasGroup(unit: RateLimitUnit, window: "minute" | "hour" | "day"): RateLimitHeaderGroup {
  return {
    unit,
    window,
    limitHeader: `x-ratelimit-limit-${unit}-${window}`,
    remainingHeader: `x-ratelimit-remaining-${unit}-${window}`,
    reset: { header: `x-ratelimit-reset-${unit}-${window}`, format: "delay" },
  };
}

/** Mistral sends limit and remaining per window ("req" for requests) and no reset time. */
function mistralGroup(unit: RateLimitUnit, window: "minute" | "month"): RateLimitHeaderGroup {
  const name = unit === "requests" ? "req" : "tokens";
  return {
    unit,
    window,
    limitHeader: `x-ratelimit-limit-${name}-${window}`,
    remainingHeader: `x-ratelimit-remaining-${name}-${window}`,
  };
}

const DIALECTS = {
  openai: openAiStyle("minute", "minute"),
  // Groq uses OpenAI's names, but its docs say the -requests headers "always refer to Requests Per Day (RPD)"
  // while the -tokens headers are per minute. Its day rolls: the documented x-ratelimit-reset-requests "2m59.56s"
  // after 30 of 14,400 requests a day is when those 30 are back (30 × 6 s), not the day's end, and its RPD 429 says
  // "Please try again in 1m26.4s" (retry-after 87).
  groq: { ...openAiStyle("day", "minute"), isDayRolling: true },
  cerebras: {
    groups: [
      cerebrasGroup("requests", "minute"),
      cerebrasGroup("requests", "hour"),
      cerebrasGroup("requests", "day"),
      cerebrasGroup("tokens", "minute"),
      cerebrasGroup("tokens", "hour"),
      cerebrasGroup("tokens", "day"),
    ],
  },
  // OpenRouter's X-RateLimit-Reset is an epoch instant in milliseconds. The headers describe the free-model
  // per-minute limit, except on a free-models-per-day 429, where the same three names carry the daily limit
  // (reset at UTC midnight) and usually arrive inside the error body; classifyRateLimit tells the two apart.
  openrouter: {
    groups: [
      {
        unit: "requests",
        window: "minute",
        limitHeader: "x-ratelimit-limit",
        remainingHeader: "x-ratelimit-remaining",
        reset: { header: "x-ratelimit-reset", format: "timestamp" },
      },
    ],
  },
  mistral: {
    groups: [
      mistralGroup("requests", "minute"),
      mistralGroup("requests", "month"),
      mistralGroup("tokens", "minute"),
      mistralGroup("tokens", "month"),
    ],
  },
  // Together measures limits per second (its docs show them per minute "as the industry standard"); the reset is
  // seconds until the requests bucket refills, and tokens have no reset header.
  together: {
    groups: [
      {
        unit: "requests",
        window: "second",
        limitHeader: "x-ratelimit-limit",
        remainingHeader: "x-ratelimit-remaining",
        reset: { header: "x-ratelimit-reset", format: "delay" },
      },
      {
        unit: "tokens",
        window: "second",
        limitHeader: "x-tokenlimit-limit",
        remainingHeader: "x-tokenlimit-remaining",
      },
    ],
  },
  // For an OpenAI-compatible server we know nothing about: OpenAI's names, windows assumed to be a minute.
  generic: openAiStyle("minute", "minute"),
} satisfies Record<ConfigDialectName, RateLimitDialect>; // exactly the names the config accepts

export type RateLimitDialectName = keyof typeof DIALECTS;

export const RATE_LIMIT_DIALECTS: Readonly<Record<RateLimitDialectName, RateLimitDialect>> = DIALECTS;
