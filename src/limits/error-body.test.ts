import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cerebras,
  cloudflare,
  gemini,
  NEXT_UTC_MIDNIGHT_MS,
  openAi,
  openRouter,
} from "../../test/fixtures/provider-fixtures.ts";
import { readErrorBody } from "./error-body.ts";

describe("readErrorBody", () => {
  it("reads OpenAI's code and type", () => {
    assert.deepEqual(readErrorBody(openAi.insufficientQuota.bodyText), {
      codes: ["insufficient_quota", "insufficient_quota"],
      quotaIds: [],
    });
  });

  it("reads Cerebras' flat error", () => {
    assert.deepEqual(readErrorBody(cerebras.queueExceeded429.bodyText).codes, [
      "queue_exceeded",
      "too_many_requests_error",
    ]);
  });

  it("reads Cloudflare's numeric codes from errors[]", () => {
    assert.deepEqual(readErrorBody(cloudflare.dailyAllocation429.bodyText).codes, ["3036"]);
  });

  it("unwraps Gemini's list and reads QuotaFailure and RetryInfo", () => {
    assert.deepEqual(readErrorBody(gemini.perDay429.bodyText), {
      codes: ["429", "resource_exhausted"],
      quotaIds: [
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
      ],
      retryDelay: "21s",
    });
  });

  it("reads the X-RateLimit-Reset OpenRouter relays in error.metadata.headers, whatever its case", () => {
    assert.equal(
      readErrorBody(openRouter.freeModelsPerDay429.bodyText).relayedRateLimitReset,
      String(NEXT_UTC_MIDNIGHT_MS),
    );
    const numeric = '{"error":{"metadata":{"headers":{"x-ratelimit-reset":1767312000000}}}}';
    assert.equal(readErrorBody(numeric).relayedRateLimitReset, "1767312000000");
  });

  it("returns empty facts for non-JSON, odd JSON and oversized bodies", () => {
    const empty = { codes: [], quotaIds: [] };
    for (const bodyText of [undefined, "", "   ", "Too Many Requests", "{", "[", "null", "[]", "[[]]", '"x"', "42"]) {
      assert.deepEqual(readErrorBody(bodyText), empty, String(bodyText));
    }
    // Any size read (the read's bound, max_error_body_bytes, is the one bound, as for upstream/read-upstream-error.ts).
    const big = `{"error":{"code":"insufficient_quota","metadata":{"retry_after_seconds":30}},"pad":"${"y".repeat(70_000)}"}`;
    assert.deepEqual(readErrorBody(big), { codes: ["insufficient_quota"], quotaIds: [], relayedRetryAfter: "30" });
    assert.equal(readErrorBody(big), readErrorBody(big), "read once");
    assert.deepEqual(readErrorBody('{"error":{"details":[null,1,{"@type":5},{"@type":"x.QuotaFailure"}]}}'), empty);
  });
});
