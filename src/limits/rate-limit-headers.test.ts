import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cerebras,
  groq,
  mistral,
  NOW_MS,
  openAi,
  openRouter,
  together,
} from "../../test/fixtures/provider-fixtures.ts";
import { RATE_LIMIT_DIALECT_NAMES } from "../config/provider-schema.ts";
import { RATE_LIMIT_DIALECTS, type RateLimitDialect, type RateLimitDialectName } from "./header-dialects.ts";
import { parseRateLimitHeaders } from "./rate-limit-headers.ts";

describe("parseRateLimitHeaders", () => {
  it("openai: requests and tokens per minute, resets as Go durations", () => {
    assert.deepEqual(parseRateLimitHeaders(openAi.success.headers, "openai", NOW_MS), [
      { unit: "requests", window: "minute", limit: 5_000, remaining: 4_999, resetAtMs: NOW_MS + 12 },
      { unit: "tokens", window: "minute", limit: 160_000, remaining: 159_976, resetAtMs: NOW_MS + 9 },
    ]);
    assert.deepEqual(parseRateLimitHeaders(openAi.tokensPerMinute429.headers, "openai", NOW_MS), [
      { unit: "requests", window: "minute", limit: 500, remaining: 499, resetAtMs: NOW_MS + 120 },
      { unit: "tokens", window: "minute", limit: 30_000, remaining: 0, resetAtMs: NOW_MS + 1_534 },
    ]);
  });

  it("groq: the same names, but -requests counts per day", () => {
    assert.deepEqual(parseRateLimitHeaders(groq.success.headers, "groq", NOW_MS), [
      { unit: "requests", window: "day", limit: 14_400, remaining: 14_370, resetAtMs: NOW_MS + 179_560 },
      { unit: "tokens", window: "minute", limit: 18_000, remaining: 17_997, resetAtMs: NOW_MS + 7_660 },
    ]);
  });

  it("cerebras: periods in the names, resets in fractional seconds", () => {
    assert.deepEqual(parseRateLimitHeaders(cerebras.success.headers, "cerebras", NOW_MS), [
      { unit: "requests", window: "day", limit: 14_400, remaining: 14_396, resetAtMs: NOW_MS + 33_011_383 },
      { unit: "tokens", window: "minute", limit: 60_000, remaining: 59_412, resetAtMs: NOW_MS + 11_383 },
    ]);
    assert.deepEqual(parseRateLimitHeaders(cerebras.requestsPerMinute429.headers, "cerebras", NOW_MS), [
      { unit: "requests", window: "minute", limit: 5, remaining: 0, resetAtMs: NOW_MS + 41_200 },
      { unit: "requests", window: "day", limit: 2_400, remaining: 2_311, resetAtMs: NOW_MS + 33_011_380 },
    ]);
  });

  it("openrouter: requests per minute, reset as epoch milliseconds", () => {
    assert.deepEqual(parseRateLimitHeaders(openRouter.success.headers, "openrouter", NOW_MS), [
      { unit: "requests", window: "minute", limit: 20, remaining: 17, resetAtMs: NOW_MS + 42_000 },
    ]);
  });

  it("mistral: per-minute and per-month windows, no reset", () => {
    assert.deepEqual(parseRateLimitHeaders(mistral.success.headers, "mistral", NOW_MS), [
      { unit: "requests", window: "minute", limit: 60, remaining: 59 },
      { unit: "tokens", window: "minute", limit: 500_000, remaining: 499_000 },
      { unit: "tokens", window: "month", limit: 1_000_000_000, remaining: 870_000_000 },
    ]);
  });

  it("together: requests and tokens per second", () => {
    assert.deepEqual(parseRateLimitHeaders(together.success.headers, "together", NOW_MS), [
      { unit: "requests", window: "second", limit: 10, remaining: 9, resetAtMs: NOW_MS + 1_000 },
      { unit: "tokens", window: "second", limit: 3_000, remaining: 2_950 },
    ]);
  });

  it("generic: OpenAI's names, assumed per minute", () => {
    assert.deepEqual(parseRateLimitHeaders(groq.success.headers, "generic", NOW_MS), [
      { unit: "requests", window: "minute", limit: 14_400, remaining: 14_370, resetAtMs: NOW_MS + 179_560 },
      { unit: "tokens", window: "minute", limit: 18_000, remaining: 17_997, resetAtMs: NOW_MS + 7_660 },
    ]);
  });

  it("accepts a dialect given as data", () => {
    const custom: RateLimitDialect = {
      groups: [
        {
          unit: "requests",
          window: "hour",
          limitHeader: "x-custom-limit",
          reset: { header: "x-custom-reset", format: "timestamp" },
        },
      ],
    };
    const headers = { "x-custom-limit": "100", "x-custom-reset": String((NOW_MS + 3_600_000) / 1_000) };
    assert.deepEqual(parseRateLimitHeaders(headers, custom, NOW_MS), [
      { unit: "requests", window: "hour", limit: 100, resetAtMs: NOW_MS + 3_600_000 },
    ]);
  });

  it("leaves out windows it learned nothing about, and unreadable values", () => {
    assert.deepEqual(parseRateLimitHeaders({}, "openai", NOW_MS), []);
    assert.deepEqual(parseRateLimitHeaders(openAi.success.headers, "mistral", NOW_MS), []);
    const partial = {
      "x-ratelimit-limit-requests": "abc",
      "x-ratelimit-remaining-requests": "",
      "x-ratelimit-reset-requests": "soon",
      "x-ratelimit-remaining-tokens": "42",
    };
    assert.deepEqual(parseRateLimitHeaders(partial, "openai", NOW_MS), [
      { unit: "tokens", window: "minute", remaining: 42 },
    ]);
  });

  it("ignores Azure's -1 for windows that are not enforced", () => {
    const azure = {
      "x-ratelimit-limit-tokens": "-1",
      "x-ratelimit-remaining-tokens": "-1",
      "x-ratelimit-reset-tokens": "0",
    };
    assert.deepEqual(parseRateLimitHeaders(azure, "openai", NOW_MS), [
      { unit: "tokens", window: "minute", resetAtMs: NOW_MS },
    ]);
  });

  it("omits absent optional fields rather than setting them to undefined", () => {
    const [window] = parseRateLimitHeaders({ "x-ratelimit-remaining-req-minute": "3" }, "mistral", NOW_MS);
    assert.ok(window !== undefined);
    assert.deepEqual(Object.keys(window), ["unit", "window", "remaining"]);
  });

  it("has a dialect for every name, each header group naming at least one header", () => {
    // The config's closed list (what `rate_limit_dialect` accepts) and the dialects read are the same names.
    const names: readonly RateLimitDialectName[] = RATE_LIMIT_DIALECT_NAMES;
    assert.deepEqual(Object.keys(RATE_LIMIT_DIALECTS).sort(), [...names].sort());
    for (const name of names) {
      for (const group of RATE_LIMIT_DIALECTS[name].groups) {
        const headerNames = [group.limitHeader, group.remainingHeader, group.reset?.header].filter(
          (header) => header !== undefined,
        );
        assert.ok(headerNames.length > 0, name);
        for (const header of headerNames) assert.equal(header, header.toLowerCase(), `${name}: ${header}`);
      }
    }
  });
});
