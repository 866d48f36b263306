import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cerebras,
  cloudflare,
  gemini,
  groq,
  mistral,
  NEXT_UTC_MIDNIGHT_MS,
  NOW_MS,
  openAi,
  openRouter,
  type ResponseFixture,
  together,
} from "../../test/fixtures/provider-fixtures.ts";
import { parseRetryAfter, retryHintFromResponse } from "./retry-hint.ts";

function hintFor(fixture: ResponseFixture, nowMs = NOW_MS) {
  return retryHintFromResponse({ ...fixture, nowMs });
}

describe("parseRetryAfter", () => {
  it("reads integer and fractional seconds", () => {
    assert.equal(parseRetryAfter("2", NOW_MS), 2_000);
    assert.equal(parseRetryAfter("0", NOW_MS), 0);
    assert.equal(parseRetryAfter("1.5", NOW_MS), 1_500);
    assert.equal(parseRetryAfter(" 30 ", NOW_MS), 30_000);
  });

  it("reads an HTTP date relative to now", () => {
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 12:00:30 GMT", NOW_MS), 30_000);
    assert.equal(parseRetryAfter("Thursday, 01-Jan-26 12:01:00 GMT", NOW_MS), 60_000);
  });

  it("clamps a date in the past to 0; a negative number of seconds is unreadable", () => {
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 11:59:00 GMT", NOW_MS), 0);
    assert.equal(parseRetryAfter("-5", NOW_MS), undefined);
    assert.equal(parseRetryAfter("-1m", NOW_MS), undefined);
  });

  it("returns undefined for what it cannot read", () => {
    for (const value of [undefined, "", "soon", "1 2", "Thu, 99 Foo 2026 12:00:30 GMT", "0x10"]) {
      assert.equal(parseRetryAfter(value, NOW_MS), undefined, String(value));
    }
  });
});

describe("retryHintFromResponse: headers", () => {
  it("prefers OpenAI's retry-after-ms over the rounded retry-after", () => {
    assert.deepEqual(hintFor(openAi.tokensPerMinute429), { delayMs: 1_534, source: "retry-after-ms" });
  });

  it("takes retry-after next (Groq sets it on every 429)", () => {
    assert.deepEqual(hintFor(groq.tokensPerMinute429), { delayMs: 12_000, source: "retry-after" });
    assert.deepEqual(hintFor(groq.tokensPerDay429), { delayMs: 579_000, source: "retry-after" });
  });

  it("falls through an unreadable retry-after to the next source", () => {
    const fixture = { status: 429, headers: { "retry-after": "later", "x-ratelimit-reset-tokens": "3s" } };
    assert.deepEqual(hintFor(fixture), { delayMs: 3_000, source: "x-ratelimit-reset" });
  });

  it("uses the first non-empty value of a repeated header", () => {
    assert.deepEqual(hintFor({ status: 429, headers: { "retry-after": ["", "3"] } }), {
      delayMs: 3_000,
      source: "retry-after",
    });
  });

  it("reads an HTTP-date retry-after on a 503", () => {
    const fixture = { status: 503, headers: { "retry-after": "Thu, 01 Jan 2026 12:02:00 GMT" } };
    assert.deepEqual(hintFor(fixture), { delayMs: 120_000, source: "retry-after" });
  });

  it("a negative header value is no hint of 0 but unreadable: the next source decides", () => {
    assert.equal(hintFor({ status: 429, headers: { "retry-after-ms": "-10" } }), undefined);
    assert.equal(hintFor({ status: 429, headers: { "retry-after": "-3" } }), undefined);
    assert.deepEqual(hintFor({ status: 429, headers: { "retry-after-ms": "-10", "retry-after": "30" } }), {
      delayMs: 30_000,
      source: "retry-after",
    });
    assert.deepEqual(hintFor({ status: 429, headers: { "retry-after": "-3", "x-ratelimit-reset-tokens": "3s" } }), {
      delayMs: 3_000,
      source: "x-ratelimit-reset",
    });
  });

  it("gives no hint for a success, whatever its headers say", () => {
    assert.equal(hintFor(openAi.success), undefined);
    assert.equal(hintFor({ status: 200, headers: { "retry-after": "5" } }), undefined);
  });
});

describe("retryHintFromResponse: x-ratelimit-reset-* windows on a 429", () => {
  const base = {
    "x-ratelimit-remaining-requests": "10",
    "x-ratelimit-reset-requests": "1m30s",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "6m0s",
  };

  it("waits for the exhausted window even when another resets later", () => {
    const headers = { ...base, "x-ratelimit-reset-tokens": "20s" };
    assert.deepEqual(hintFor({ status: 429, headers }), { delayMs: 20_000, source: "x-ratelimit-reset" });
  });

  it("takes the longer of two exhausted windows", () => {
    const headers = { ...base, "x-ratelimit-remaining-requests": "0" };
    assert.deepEqual(hintFor({ status: 429, headers }), { delayMs: 360_000, source: "x-ratelimit-reset" });
  });

  it("takes the longest window when none says it is empty", () => {
    const headers = { ...base, "x-ratelimit-remaining-tokens": "5" };
    assert.deepEqual(hintFor({ status: 429, headers }), { delayMs: 360_000, source: "x-ratelimit-reset" });
    const resetsOnly = { "x-ratelimit-reset-requests": "120ms", "x-ratelimit-reset-tokens": "2.5s" };
    assert.deepEqual(hintFor({ status: 429, headers: resetsOnly }), { delayMs: 2_500, source: "x-ratelimit-reset" });
  });

  it("reads Cerebras' per-period windows in seconds", () => {
    assert.deepEqual(hintFor(cerebras.requestsPerMinute429), { delayMs: 41_200, source: "x-ratelimit-reset" });
    assert.deepEqual(hintFor(cerebras.tokensPerDay429), { delayMs: 20_000_500, source: "x-ratelimit-reset" });
  });

  it("ignores reset headers on statuses other than 429", () => {
    assert.equal(hintFor({ status: 503, headers: base }), undefined);
    assert.equal(hintFor({ status: 500, headers: { "x-ratelimit-reset": String(NOW_MS + 5_000) } }), undefined);
  });
});

describe("retryHintFromResponse: epoch x-ratelimit-reset", () => {
  it("reads OpenRouter's epoch milliseconds", () => {
    assert.deepEqual(hintFor(openRouter.freeModelsPerMinute429), { delayMs: 30_000, source: "x-ratelimit-reset" });
  });

  it("reads epoch seconds", () => {
    const headers = { "x-ratelimit-reset": String((NOW_MS + 90_000) / 1_000) };
    assert.deepEqual(hintFor({ status: 429, headers }), { delayMs: 90_000, source: "x-ratelimit-reset" });
  });

  it("reads a small value as seconds from now (Together)", () => {
    assert.deepEqual(hintFor(together.rateLimited429), { delayMs: 2_000, source: "x-ratelimit-reset" });
  });

  it("a reset in the past is no hint: the body's hint or the gateway's backoff decides, not a wait of 0", () => {
    const headers = { "x-ratelimit-reset": String(NOW_MS - 5_000) };
    assert.equal(hintFor({ status: 429, headers }), undefined);
    const bodyText = JSON.stringify({ error: { message: "Rate limit reached. Please try again in 20s." } });
    assert.deepEqual(hintFor({ status: 429, headers, bodyText }), { delayMs: 20_000, source: "body" });
  });

  it("reads the reset OpenRouter relays inside the error body", () => {
    assert.deepEqual(hintFor(openRouter.freeModelsPerDay429), {
      delayMs: NEXT_UTC_MIDNIGHT_MS - NOW_MS,
      source: "x-ratelimit-reset",
    });
  });
});

describe("retryHintFromResponse: body", () => {
  it("reads Google's RetryInfo from a list-wrapped Gemini error", () => {
    assert.deepEqual(hintFor(gemini.perMinute429), { delayMs: 38_000, source: "body" });
    assert.deepEqual(hintFor(gemini.perDay429), { delayMs: 21_000, source: "body" });
  });

  it("reads Gemini's 'Please retry in' when RetryInfo is missing", () => {
    assert.deepEqual(hintFor(gemini.zeroLimit429), { delayMs: 45_579, source: "body" });
  });

  it("reads Groq's Go duration when no header came through", () => {
    assert.deepEqual(hintFor({ ...groq.tokensPerDay429, headers: {} }), { delayMs: 578_016, source: "body" });
    assert.deepEqual(hintFor({ ...groq.requestsPerDay429, headers: {} }), { delayMs: 86_400, source: "body" });
  });

  it("reads wordy phrasings", () => {
    const cases: Array<[string, number]> = [
      ["Rate limit exceeded, try again in 20s.", 20_000],
      ["Please try again in 20 seconds.", 20_000],
      ["Too many requests; retry after 5 seconds", 5_000],
      ["Please Try Again In 1.5 Seconds", 1_500],
      ["try again in 2 minutes", 120_000],
      ["try again in 250 ms", 250],
      ["try again in 20sec", 20_000],
      ["try again in 7", 7_000],
      ["Please try again in 6ms.", 6],
      ['{"error":{"message":"Please try again in 1m0s."}}', 60_000],
    ];
    for (const [bodyText, delayMs] of cases) {
      assert.deepEqual(hintFor({ status: 429, headers: {}, bodyText }), { delayMs, source: "body" }, bodyText);
    }
  });

  it("uses body hints on any error status", () => {
    assert.deepEqual(hintFor({ status: 503, headers: {}, bodyText: "Overloaded, try again in 30s" }), {
      delayMs: 30_000,
      source: "body",
    });
  });

  it("finds no hint where there is none", () => {
    const bodies = [
      "Please try again later.",
      "retry in a few seconds",
      "try again in 1.2.3x",
      "",
      "not json {",
      "[",
      "null",
      "[]",
      "[1]",
      '{"error":null}',
      '{"error":{"details":"nope"}}',
      '[{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"soon"}]}}]',
    ];
    for (const bodyText of bodies) assert.equal(hintFor({ status: 429, headers: {}, bodyText }), undefined, bodyText);
    for (const fixture of [
      cerebras.queueExceeded429,
      mistral.capacityExceeded429,
      cloudflare.dailyAllocation429,
      openAi.insufficientQuota,
    ]) {
      assert.equal(hintFor(fixture), undefined);
    }
  });

  it("reads an exhausted window's reset past 1e9 as an epoch instant, not 31 years", () => {
    const headers = {
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": String(Math.round((NOW_MS + 7_200_000) / 1000)),
    };
    assert.deepEqual(hintFor({ status: 429, headers, bodyText: "" }), {
      delayMs: Math.round((NOW_MS + 7_200_000) / 1000) * 1000 - NOW_MS,
      source: "x-ratelimit-reset",
    });
  });

  it("an exhausted window whose reset is already past is no hint, as an x-ratelimit-reset past is not", () => {
    // Epoch seconds a few seconds behind our clock (the provider's clock, or its rounding down to the second).
    const headers = {
      "x-ratelimit-remaining-requests-day": "0",
      "x-ratelimit-reset-requests-day": String(Math.round((NOW_MS - 3_000) / 1000)),
    };
    assert.equal(hintFor({ status: 429, headers, bodyText: "" }), undefined);
    const bodyText = JSON.stringify({ error: { message: "Rate limit reached. Please try again in 20s." } });
    assert.deepEqual(hintFor({ status: 429, headers, bodyText }), { delayMs: 20_000, source: "body" });
    // The empty window is the problem: a later reset of a window with room left is not its wait.
    const withRoomLeft = { ...headers, "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "6m0s" };
    assert.equal(hintFor({ status: 429, headers: withRoomLeft, bodyText: "" }), undefined);
    // A later empty window still decides.
    const laterEmpty = { ...withRoomLeft, "x-ratelimit-remaining-tokens": "0" };
    assert.deepEqual(hintFor({ status: 429, headers: laterEmpty, bodyText: "" }), {
      delayMs: 360_000,
      source: "x-ratelimit-reset",
    });
  });

  it("ignores a hint beyond the scanned prefix of a huge body", () => {
    const bodyText = `${"x".repeat(20_000)} try again in 5s`;
    assert.equal(hintFor({ status: 429, headers: {}, bodyText }), undefined);
  });
});

describe("the words of a body's wait are its error message's", () => {
  it("a wait quoted in OpenRouter's metadata (previous errors) is not this 429's", () => {
    const bodyText = JSON.stringify({
      error: {
        message: "Rate limit exceeded: free-models-per-min. ",
        code: 429,
        metadata: { previous_errors: [{ provider: "Groq", message: "Please try again in 9m38.016s" }] },
      },
    });
    assert.equal(retryHintFromResponse({ status: 429, headers: {}, bodyText, nowMs: NOW_MS }), undefined);
  });

  it("the message's own wait, and a relayed provider's in metadata.raw, are read", () => {
    assert.equal(hintFor({ ...groq.tokensPerDay429, headers: {} })?.delayMs, 578_016);
    const relayed = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 429,
        metadata: { raw: "Rate limit reached. Please try again in 20s.", provider_name: "Groq" },
      },
    });
    assert.equal(
      retryHintFromResponse({ status: 429, headers: {}, bodyText: relayed, nowMs: NOW_MS })?.delayMs,
      20_000,
    );
  });
});
