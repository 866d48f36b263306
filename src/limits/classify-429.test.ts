import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  anthropic,
  cerebras,
  cloudflare,
  gemini,
  githubModels,
  groq,
  mistral,
  openAi,
  openRouter,
  type ResponseFixture,
  sambaNova,
  together,
} from "../../test/fixtures/provider-fixtures.ts";
import { classifyRateLimit, type RateLimitKind } from "./classify-429.ts";

function assertKind(fixture: ResponseFixture, kind: RateLimitKind, reasonIncludes: string): void {
  const result = classifyRateLimit(fixture);
  assert.equal(result.kind, kind, `${result.kind}: ${result.reason}`);
  assert.ok(result.reason.includes(reasonIncludes), `reason "${result.reason}" lacks "${reasonIncludes}"`);
}

describe("classifyRateLimit: short", () => {
  it("per-minute limits", () => {
    assertKind(openAi.tokensPerMinute429, "short", "429");
    assertKind(groq.tokensPerMinute429, "short", "429");
    assertKind(cerebras.requestsPerMinute429, "short", "429");
    assertKind(openRouter.freeModelsPerMinute429, "short", "free-models-per-min");
    assertKind(mistral.rateLimited429, "short", "429");
    assertKind(together.rateLimited429, "short", "429");
  });

  it("OpenRouter's free-models-per-min and -per-day are the account's pool; other 429s are not marked", () => {
    assert.equal(classifyRateLimit(openRouter.freeModelsPerMinute429).isAccountWide, true);
    assert.equal(classifyRateLimit(openRouter.freeModelsPerDay429).isAccountWide, true);
    assert.equal(classifyRateLimit(openRouter.upstreamRateLimited429).isAccountWide, undefined);
    assert.equal(classifyRateLimit(groq.tokensPerMinute429).isAccountWide, undefined);
  });

  it("Gemini per-minute quota, despite its 'check your plan and billing' message", () => {
    assertKind(gemini.perMinute429, "short", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");
  });

  it("Gemini RESOURCE_EXHAUSTED without details", () => {
    assertKind(gemini.bareResourceExhausted429, "short", "RESOURCE_EXHAUSTED");
  });

  it("an unknown 429, with or without a body", () => {
    assertKind({ status: 429, headers: {} }, "short", "429");
    assertKind({ status: 429, headers: {}, bodyText: "Too Many Requests" }, "short", "429");
    assertKind({ status: 429, headers: {}, bodyText: "<html>nginx</html>" }, "short", "429");
  });
});

describe("classifyRateLimit: daily", () => {
  it("Gemini QuotaFailure with a PerDay quota id", () => {
    assertKind(gemini.perDay429, "daily", "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
  });

  it("OpenRouter free-models-per-day, though its message mentions credits", () => {
    assertKind(openRouter.freeModelsPerDay429, "daily", "free-models-per-day");
  });

  it("Groq requests per day (RPD) and tokens per day (TPD), though the message links to billing", () => {
    assertKind(groq.requestsPerDay429, "daily", "RPD");
    assertKind(groq.tokensPerDay429, "daily", "TPD");
  });

  it("Cerebras tokens per day", () => {
    assertKind(cerebras.tokensPerDay429, "daily", "per-day");
    assertKind({ ...cerebras.tokensPerDay429, bodyText: "{}" }, "daily", "x-ratelimit-remaining-tokens-day");
  });

  it("Mistral monthly tokens used up", () => {
    assertKind(mistral.monthlyTokensUsedUp429, "daily", "x-ratelimit-remaining-tokens-month");
  });

  it("Cloudflare error 3036 and its Workers-binding twin 4006", () => {
    assertKind(cloudflare.dailyAllocation429, "daily", "3036");
    const binding = { status: 429, headers: {}, bodyText: '{"errors":[{"code":4006,"message":"..."}]}' };
    assertKind(binding, "daily", "4006");
    assertKind({ status: 429, headers: {}, bodyText: "You have used up your daily free allocation" }, "daily", "daily");
  });
});

describe("classifyRateLimit: a window stated in seconds (SambaNova's 'Violated duration_s: N')", () => {
  it("86400 s is a daily limit, whatever code comes with it", () => {
    assertKind(sambaNova.tokensPerDay429, "daily", "86400");
    // SambaNova's error-code table, as transcribed by api-evangelist/sambanova-systems, lists `insufficient_quota` for
    // its 429 "Rate limit exceeded": a body that names its window is still that window, not a billing problem.
    const withQuotaCode = sambaNova.tokensPerDay429.bodyText.replace('"code":null', '"code":"insufficient_quota"');
    assertKind({ status: 429, headers: {}, bodyText: withQuotaCode }, "daily", "86400");
  });

  it("a shorter window is a short one", () => {
    const perMinute = sambaNova.tokensPerDay429.bodyText.replace("duration_s: 86400", "duration_s: 60");
    assertKind({ status: 429, headers: {}, bodyText: perMinute }, "short", "60");
  });
});

describe("classifyRateLimit: GitHub Models names the limit in x-ratelimit-type", () => {
  it("UserByModelByDay with only its retry-after is the daily quota (was an unrecognised, short 429)", () => {
    assertKind(githubModels.perDayHeaders429, "daily", "UserByModelByDay");
  });

  it("UserConcurrentRequests is too many requests in flight, neither a window nor capacity", () => {
    assertKind(githubModels.concurrent429, "concurrency", "UserConcurrentRequests");
    // The body alone says so too.
    assertKind({ status: 429, headers: {}, bodyText: githubModels.concurrent429.bodyText }, "concurrency", "GitHub");
  });

  it("per-minute names stay short; a name not seen falls through to the body", () => {
    const perMinute = { status: 429, headers: { "x-ratelimit-type": "UserByModelByMinute" }, bodyText: "" };
    assertKind(perMinute, "short", "UserByModelByMinute");
    const unknown = { status: 429, headers: { "x-ratelimit-type": "SomethingElse" }, bodyText: "" };
    assertKind(unknown, "short", "no known cause");
  });
});

describe("classifyRateLimit: credits", () => {
  it("402 Payment Required", () => {
    assertKind(openRouter.needsCredits402, "credits", "402");
    assertKind({ status: 402, headers: {} }, "credits", "402");
  });

  it("OpenRouter's 402 for an output the credits do not cover: this request's size, not the key's credits", () => {
    const classified = classifyRateLimit(openRouter.needsCredits402);
    assert.equal(classified.isRequestTooLarge, true);
    assert.equal(classified.affordableOutputTokens, 2666);
    const outOfCredits = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: JSON.stringify({ error: { message: "Insufficient credits", code: 402 } }),
    });
    assert.equal(outOfCredits.isRequestTooLarge, undefined);
    const separated = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: "You requested up to 16,384 tokens, but can only afford ~15,500.",
    });
    assert.equal(separated.affordableOutputTokens, 15_500);
    assert.equal(outOfCredits.affordableOutputTokens, undefined);
    const affordsNothing = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText:
        "You requested up to 32000 tokens, but can only afford 0. To increase, visit ... a higher monthly limit",
    });
    assert.equal(affordsNothing.isRequestTooLarge, undefined, "no output covered: the key's credits");
  });

  it("OpenRouter's 402 'Prompt tokens limit exceeded: N > M': this request's prompt, not the key's credits", () => {
    // As OpenRouter words it (continuedev/continue#11227, anomalyco/opencode#12219).
    const body = (message: string) => JSON.stringify({ error: { message, code: 402 } });
    const prompt = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: body(
        "Prompt tokens limit exceeded: 64128 > 6964. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account",
      ),
    });
    assert.equal(prompt.kind, "credits");
    assert.equal(prompt.isRequestTooLarge, true);
    assert.equal(prompt.affordableOutputTokens, undefined, "no output limit makes a prompt fit");
    assert.equal(prompt.affordablePromptTokens, 6964);
    assert.match(prompt.reason, /prompt of 6964 tokens, not this request's 64128/);
    const separated = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: body("Prompt tokens limit exceeded: 230,799 > 91,442. To increase, visit ..."),
    });
    assert.equal(separated.isRequestTooLarge, true);
    // No prompt covered at all: the key's credits, parked as "can only afford 0" is.
    const none = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: body("Prompt tokens limit exceeded: 12 > 0."),
    });
    assert.equal(none.isRequestTooLarge, undefined);
    assert.equal(none.affordablePromptTokens, undefined);
    // A prompt allowance too small for any request (seen for embeddings): the key's credits too.
    const tiny = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: body("Prompt tokens limit exceeded: 7 > 2. To increase, visit https://openrouter.ai/settings/credits"),
    });
    assert.equal(tiny.isRequestTooLarge, undefined);
    assert.equal(tiny.kind, "credits");
    // The older wording of the output's refusal (cline/cline#940) is read as "can only afford M".
    const output = classifyRateLimit({
      status: 402,
      headers: {},
      bodyText: body("max_tokens limit exceeded: 100000 > 9577. To increase, visit https://openrouter.ai/keys"),
    });
    assert.equal(output.isRequestTooLarge, true);
    assert.equal(output.affordableOutputTokens, 9577);
  });

  it("OpenAI insufficient_quota on a 429", () => {
    assertKind(openAi.insufficientQuota, "credits", "insufficient_quota");
  });

  it("credit wording on other statuses", () => {
    const anthropicBilling = JSON.stringify({
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "Your credit balance is too low to access the Anthropic API.",
      },
    });
    assertKind({ status: 400, headers: {}, bodyText: anthropicBilling }, "credits", "credit balance");
    const deepSeek = '{"error":{"message":"Insufficient Balance","type":"unknown_error"}}';
    assertKind({ status: 429, headers: {}, bodyText: deepSeek }, "credits", "insufficient balance");
  });

  it("a quota of 0: the plan does not include the model", () => {
    assertKind(mistral.modelNotOnPlan429, "credits", "x-ratelimit-limit-req-minute is 0");
    assertKind(gemini.zeroLimit429, "credits", "limit is 0");
  });
});

describe("classifyRateLimit: capacity", () => {
  it("Cerebras queue_exceeded, though it is a 429", () => {
    assertKind(cerebras.queueExceeded429, "capacity", "queue_exceeded");
  });

  it("Mistral service tier capacity (3505)", () => {
    assertKind(mistral.capacityExceeded429, "capacity", "3505");
  });

  it("Cloudflare out of capacity (3040)", () => {
    assertKind(cloudflare.outOfCapacity429, "capacity", "3040");
  });

  it("OpenRouter relaying an upstream's rate limit on a free model", () => {
    assertKind(openRouter.upstreamRateLimited429, "capacity", "upstream");
  });

  it("503 and 529, with the provider's wording as the reason when it has one", () => {
    assertKind(groq.overCapacity503, "capacity", "over capacity");
    assertKind(gemini.overloaded503, "capacity", "overloaded");
    assertKind(anthropic.overloaded529, "capacity", "overloaded");
    assertKind({ status: 503, headers: {} }, "capacity", "503 Service Unavailable");
    assertKind({ status: 529, headers: {} }, "capacity", "529 Overloaded");
  });

  it("capacity wording on a 429", () => {
    const highDemand = '{"error":{"message":"The model is experiencing high demand. Please try again later."}}';
    assertKind({ status: 429, headers: {}, bodyText: highDemand }, "capacity", "high demand");
  });

  it("an unknown 5xx", () => {
    assertKind({ status: 502, headers: {} }, "capacity", "502");
  });
});

describe("classifyRateLimit: a request larger than a whole window", () => {
  it("Groq's 413 and OpenAI's 429 'Request too large ... Limit N, Requested M' refuse the request, not the key", () => {
    const groq413 = classifyRateLimit(groq.requestTooLarge413);
    assert.equal(groq413.kind, "short");
    assert.equal(groq413.isRequestTooLarge, true);
    assert.match(groq413.reason, /limit 6000, requested 14810/);
    // OpenAI's wording, as recorded in vanna-ai/vanna-flask#11 (HTTP 429).
    const openAi429 = {
      status: 429,
      headers: {},
      bodyText: JSON.stringify({
        error: {
          message:
            "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 342389. The input or output tokens must be reduced in order to run successfully.",
          type: "tokens",
          code: "rate_limit_exceeded",
        },
      }),
    };
    assert.equal(classifyRateLimit(openAi429).isRequestTooLarge, true);
  });

  it("a window merely used up is not a request too large", () => {
    for (const fixture of [groq.tokensPerMinute429, groq.tokensPerDay429, openAi.tokensPerMinute429]) {
      assert.equal(classifyRateLimit(fixture).isRequestTooLarge, undefined);
    }
  });
});

describe("classifyRateLimit: robustness", () => {
  it("never throws on odd bodies", () => {
    for (const bodyText of ["", "[", "null", "[]", "[null]", '{"error":"x"}', '{"errors":"x"}', "\u0000"]) {
      assert.equal(classifyRateLimit({ status: 429, headers: {}, bodyText }).kind, "short", bodyText);
    }
  });

  it("treats only an exact limit of 0 as a plan without the model", () => {
    assertKind({ status: 429, headers: { "x-ratelimit-limit-requests": "10" } }, "short", "429");
    assertKind({ status: 429, headers: { "x-ratelimit-limit-requests": ["", "0"] } }, "credits", "is 0");
  });
});
