// Provider responses as the gateway receives them (headers lower-cased), for the limits tests. Shapes and wording
// follow the providers' docs and responses reported in public issue trackers; ids and numbers are made up.
import type { HeaderMap } from "./header-map.ts";

export interface ResponseFixture {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly bodyText?: string;
}

/** 2026-01-01T12:00:00Z; every fixture's times are relative to it. */
export const NOW_MS = Date.UTC(2026, 0, 1, 12, 0, 0);
/** The next UTC midnight after NOW_MS, when OpenRouter's free daily limit resets. */
export const NEXT_UTC_MIDNIGHT_MS = Date.UTC(2026, 0, 2);

export const openAi = {
  success: {
    status: 200,
    headers: {
      "content-type": "application/json",
      "x-ratelimit-limit-requests": "5000",
      "x-ratelimit-limit-tokens": "160000",
      "x-ratelimit-remaining-requests": "4999",
      "x-ratelimit-remaining-tokens": "159976",
      "x-ratelimit-reset-requests": "12ms",
      "x-ratelimit-reset-tokens": "9ms",
    },
  },
  tokensPerMinute429: {
    status: 429,
    headers: {
      "retry-after": "2",
      "retry-after-ms": "1534",
      "x-ratelimit-limit-requests": "500",
      "x-ratelimit-limit-tokens": "30000",
      "x-ratelimit-remaining-requests": "499",
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-requests": "120ms",
      "x-ratelimit-reset-tokens": "1.534s",
    },
    bodyText: JSON.stringify({
      error: {
        message:
          "Rate limit reached for gpt-4o in organization org-abc123 on tokens per min (TPM): Limit 30000, Used 29500, Requested 1200. Please try again in 1.534s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        type: "tokens",
        param: null,
        code: "rate_limit_exceeded",
      },
    }),
  },
  insufficientQuota: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      error: {
        message:
          "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type: "insufficient_quota",
        param: null,
        code: "insufficient_quota",
      },
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const groq = {
  success: {
    status: 200,
    headers: {
      "x-ratelimit-limit-requests": "14400",
      "x-ratelimit-limit-tokens": "18000",
      "x-ratelimit-remaining-requests": "14370",
      "x-ratelimit-remaining-tokens": "17997",
      "x-ratelimit-reset-requests": "2m59.56s",
      "x-ratelimit-reset-tokens": "7.66s",
    },
  },
  tokensPerMinute429: {
    status: 429,
    headers: {
      "retry-after": "12",
      "x-ratelimit-limit-requests": "1000",
      "x-ratelimit-limit-tokens": "12000",
      "x-ratelimit-remaining-requests": "988",
      "x-ratelimit-remaining-tokens": "2146",
      "x-ratelimit-reset-requests": "17m16.8s",
      "x-ratelimit-reset-tokens": "11.455s",
    },
    bodyText: JSON.stringify({
      error: {
        message:
          "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01kes94v04f9ramd2n1vj4gjnc` service tier `on_demand` on tokens per minute (TPM): Limit 12000, Used 4437, Requested 9854. Please try again in 11.455s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing",
        type: "tokens",
        code: "rate_limit_exceeded",
      },
    }),
  },
  tokensPerDay429: {
    status: 429,
    headers: { "retry-after": "579" },
    bodyText: JSON.stringify({
      error: {
        message:
          "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01kjh7p9n8f1qs6nz2bz77vy6b` service tier `on_demand` on tokens per day (TPD): Limit 100000, Used 97050, Requested 3619. Please try again in 9m38.016s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing",
        type: "tokens",
        code: "rate_limit_exceeded",
      },
    }),
  },
  requestsPerDay429: {
    status: 429,
    headers: {
      "retry-after": "87",
      "x-ratelimit-limit-requests": "1000",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1m26.4s",
    },
    bodyText: JSON.stringify({
      error: {
        message:
          "Rate limit reached for model `openai/gpt-oss-120b` in organization `org_01abc` service tier `on_demand` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in 1m26.4s. Need more requests? Upgrade to Dev Tier today at https://console.groq.com/settings/billing",
        type: "requests",
        code: "rate_limit_exceeded",
      },
    }),
  },
  overCapacity503: {
    status: 503,
    headers: {},
    bodyText: JSON.stringify({
      error: {
        message:
          "llama-3.3-70b-versatile is currently over capacity. Please try again and back off exponentially. Visit https://groqstatus.com to see if there is an ongoing incident.",
        type: "internal_server_error",
        code: "service_unavailable",
      },
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const cerebras = {
  success: {
    status: 200,
    headers: {
      "x-ratelimit-limit-requests-day": "14400",
      "x-ratelimit-limit-tokens-minute": "60000",
      "x-ratelimit-remaining-requests-day": "14396",
      "x-ratelimit-remaining-tokens-minute": "59412",
      "x-ratelimit-reset-requests-day": "33011.382867097855",
      "x-ratelimit-reset-tokens-minute": "11.382867097854614",
    },
  },
  requestsPerMinute429: {
    status: 429,
    headers: {
      "x-ratelimit-limit-requests-minute": "5",
      "x-ratelimit-remaining-requests-minute": "0",
      "x-ratelimit-reset-requests-minute": "41.2",
      "x-ratelimit-limit-requests-day": "2400",
      "x-ratelimit-remaining-requests-day": "2311",
      "x-ratelimit-reset-requests-day": "33011.38",
    },
    bodyText: JSON.stringify({
      message: "Requests per minute limit exceeded - too many requests sent.",
      type: "too_many_requests_error",
      param: "quota",
      code: "request_quota_exceeded",
    }),
  },
  tokensPerDay429: {
    status: 429,
    headers: {
      "x-ratelimit-limit-tokens-day": "1000000",
      "x-ratelimit-remaining-tokens-day": "0",
      "x-ratelimit-reset-tokens-day": "20000.5",
      "x-ratelimit-limit-tokens-minute": "60000",
      "x-ratelimit-remaining-tokens-minute": "60000",
      "x-ratelimit-reset-tokens-minute": "0.5",
    },
    bodyText: JSON.stringify({
      message: "Tokens per day limit exceeded - too many tokens processed.",
      type: "too_many_requests_error",
      param: "quota",
      code: "token_quota_exceeded",
    }),
  },
  queueExceeded429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify({
      message: "We're experiencing high traffic right now! Please try again soon.",
      type: "too_many_requests_error",
      param: "queue",
      code: "queue_exceeded",
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const openRouter = {
  success: {
    status: 200,
    headers: {
      "x-ratelimit-limit": "20",
      "x-ratelimit-remaining": "17",
      "x-ratelimit-reset": String(NOW_MS + 42_000),
    },
  },
  freeModelsPerDay429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      error: {
        message: "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        code: 429,
        metadata: {
          headers: {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": String(NEXT_UTC_MIDNIGHT_MS),
          },
          provider_name: null,
        },
      },
      user_id: "user_2abc",
    }),
  },
  freeModelsPerMinute429: {
    status: 429,
    headers: {
      "x-ratelimit-limit": "20",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(NOW_MS + 30_000),
    },
    bodyText: JSON.stringify({
      error: { message: "Rate limit exceeded: free-models-per-min. ", code: 429 },
      user_id: "user_2abc",
    }),
  },
  upstreamRateLimited429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 429,
        metadata: {
          raw: "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",
          provider_name: "Google AI Studio",
        },
      },
      user_id: "user_2abc",
    }),
  },
  needsCredits402: {
    status: 402,
    headers: {},
    bodyText: JSON.stringify({
      error: {
        message:
          "This request requires more credits, or fewer max_tokens. You requested up to 64000 tokens, but can only afford 2666. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account",
        code: 402,
        metadata: { provider_name: null },
      },
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const mistral = {
  success: {
    status: 200,
    headers: {
      "x-ratelimit-limit-req-minute": "60",
      "x-ratelimit-remaining-req-minute": "59",
      "x-ratelimit-limit-tokens-minute": "500000",
      "x-ratelimit-remaining-tokens-minute": "499000",
      "x-ratelimit-limit-tokens-month": "1000000000",
      "x-ratelimit-remaining-tokens-month": "870000000",
      "x-ratelimit-tokens-query-cost": "1000",
    },
  },
  rateLimited429: {
    status: 429,
    headers: {
      "x-ratelimit-limit-req-minute": "2",
      "x-ratelimit-remaining-req-minute": "0",
      "x-ratelimit-limit-tokens-minute": "500000",
      "x-ratelimit-remaining-tokens-minute": "499000",
    },
    bodyText: JSON.stringify({
      object: "error",
      message: "Rate limit exceeded",
      type: "rate_limited",
      param: null,
      code: "1300",
    }),
  },
  modelNotOnPlan429: {
    status: 429,
    headers: { "x-ratelimit-limit-req-minute": "0", "x-ratelimit-remaining-req-minute": "0" },
    bodyText: JSON.stringify({ message: "Requests rate limit exceeded" }),
  },
  monthlyTokensUsedUp429: {
    status: 429,
    headers: {
      "x-ratelimit-limit-tokens-month": "4000000",
      "x-ratelimit-remaining-tokens-month": "0",
      "x-ratelimit-limit-req-minute": "60",
      "x-ratelimit-remaining-req-minute": "58",
    },
    bodyText: JSON.stringify({ message: "Requests rate limit exceeded" }),
  },
  capacityExceeded429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify({
      object: "error",
      message: "Service tier capacity exceeded for this model.",
      type: "service_tier_capacity_exceeded",
      param: null,
      code: "3505",
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const together = {
  success: {
    status: 200,
    headers: {
      "x-ratelimit-limit": "10",
      "x-ratelimit-remaining": "9",
      "x-ratelimit-reset": "1",
      "x-tokenlimit-limit": "3000",
      "x-tokenlimit-remaining": "2950",
    },
  },
  rateLimited429: {
    status: 429,
    headers: {
      "x-ratelimit-limit": "1",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": "2",
      "x-tokenlimit-limit": "1000",
      "x-tokenlimit-remaining": "1000",
    },
    bodyText: JSON.stringify({
      id: "8f1a2b3c4d5e6f70-SJC",
      error: {
        message: "You are being rate limited. Please slow down your request rate.",
        type: "model_rate_limit",
        param: null,
        code: null,
      },
    }),
  },
} satisfies Record<string, ResponseFixture>;

function geminiError(message: string, quotaIds: readonly string[], retryDelay: string | undefined): object {
  const details: object[] = [
    {
      "@type": "type.googleapis.com/google.rpc.Help",
      links: [
        { description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" },
      ],
    },
  ];
  if (quotaIds.length > 0) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.QuotaFailure",
      violations: quotaIds.map((quotaId) => ({
        quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        quotaId,
        quotaDimensions: { location: "global", model: "gemini-2.5-flash" },
        quotaValue: "10",
      })),
    });
  }
  if (retryDelay !== undefined) details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay });
  return { error: { code: 429, message, status: "RESOURCE_EXHAUSTED", details } };
}

const GEMINI_QUOTA_MESSAGE =
  "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";

export const gemini = {
  // The OpenAI-compatible endpoint wraps the error in a one-element list.
  perMinute429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify(
      [geminiError(GEMINI_QUOTA_MESSAGE, ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"], "38s")],
      null,
      2,
    ),
  },
  perDay429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify([
      geminiError(
        GEMINI_QUOTA_MESSAGE,
        [
          "GenerateContentInputTokensPerModelPerMinute-FreeTier",
          "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
          "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        ],
        "21s",
      ),
    ]),
  },
  zeroLimit429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify(
      geminiError(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-3-pro\nPlease retry in 45.578569677s.",
        ["GenerateRequestsPerDayPerProjectPerModel-FreeTier"],
        undefined,
      ),
      null,
      2,
    ),
  },
  bareResourceExhausted429: {
    status: 429,
    headers: {},
    bodyText:
      '[{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted (e.g. check quota).",\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n]',
  },
  overloaded503: {
    status: 503,
    headers: {},
    bodyText: JSON.stringify({
      error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" },
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const cloudflare = {
  dailyAllocation429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify({
      errors: [
        {
          message:
            "You have used up your daily free allocation of 10,000 neurons. Please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage.",
          code: 3036,
        },
      ],
      success: false,
      result: null,
      messages: [],
    }),
  },
  outOfCapacity429: {
    status: 429,
    headers: {},
    bodyText: JSON.stringify({
      errors: [{ message: "No more data centers to forward the request to", code: 3040 }],
      success: false,
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const anthropic = {
  overloaded529: {
    status: 529,
    headers: {},
    bodyText: JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }),
  },
} satisfies Record<string, ResponseFixture>;

// Added with the provider presets (src/providers/presets/). Bodies use the wording and shape quoted verbatim in
// public issue trackers and test suites; ids are made up.

export const githubModels = {
  // GitHub Models states the window in the message; the wait is "Please wait N seconds before retrying".
  perDay429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      error: {
        code: "RateLimitReached",
        message:
          "Rate limit of 50 per 86400s exceeded for UserByModelByDay. Please wait 57829 seconds before retrying.",
        details:
          "Rate limit of 50 per 86400s exceeded for UserByModelByDay. Please wait 57829 seconds before retrying.",
      },
    }),
  },
  perMinute429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      error: {
        code: "RateLimitReached",
        message: "Rate limit of 15 per 60s exceeded for UserByModelByMinute. Please wait 25 seconds before retrying.",
        details: "Rate limit of 15 per 60s exceeded for UserByModelByMinute. Please wait 25 seconds before retrying.",
      },
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const cohere = {
  // Trial keys: `{id, message}`, no OpenAI error object.
  trialPerMinute429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      id: "5b0f6a2e-0c1d-4b8e-9f3a-7d2c1e0a9b11",
      message:
        "You are using a Trial key, which is limited to 20 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with any questions",
    }),
  },
  trialMonthly429: {
    status: 429,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      id: "24e32f6d-b372-4853-85f2-11e65134f032",
      message: "You are using a Trial key, which is limited to 1000 API calls / month.",
    }),
  },
} satisfies Record<string, ResponseFixture>;

export const nvidia = {
  // A bare problem+json body, no retry hint.
  tooManyRequests429: {
    status: 429,
    headers: { "content-type": "application/problem+json" },
    bodyText: JSON.stringify({ status: 429, title: "Too Many Requests" }),
  },
} satisfies Record<string, ResponseFixture>;

export const huggingFace = {
  monthlyCredits402: {
    status: 402,
    headers: { "content-type": "application/json" },
    bodyText: JSON.stringify({
      error:
        "You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more monthly included credits.",
    }),
  },
} satisfies Record<string, ResponseFixture>;
