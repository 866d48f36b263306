import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  cerebras,
  cloudflare,
  gemini,
  NEXT_UTC_MIDNIGHT_MS,
  openAi,
  openRouter,
} from "../../test/fixtures/provider-fixtures.ts";
import { type ErrorBodyFacts, proxiedErrorBody, readErrorBody } from "./error-body.ts";

describe("readErrorBody", () => {
  it("reads OpenAI's code and type", () => {
    assert.deepEqual(readErrorBody(openAi.insufficientQuota.bodyText), {
      codes: ["insufficient_quota", "insufficient_quota"],
      quotaIds: [],
      message:
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    });
  });

  it("reads the error's message: error.message, error.error.message, a string error, a flat message", () => {
    const messageOf = (body: unknown) => readErrorBody(JSON.stringify(body)).message;
    const metadata = { previous_errors: [{ message: "not this one" }], raw: "nor this" };
    assert.equal(messageOf({ error: { message: "outer", code: 402, metadata } }), "outer");
    assert.equal(messageOf({ error: { error: { message: "nested", code: 402 }, code: 402 } }), "nested");
    assert.equal(messageOf({ error: "as a string" }), "as a string");
    assert.equal(messageOf([{ message: "flat, in a list" }]), "flat, in a list");
    assert.equal(messageOf({ error: { code: 402, metadata } }), undefined, "none of the metadata's");
    assert.equal(readErrorBody("not JSON").message, undefined);
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
    const { message, ...facts } = readErrorBody(gemini.perDay429.bodyText);
    assert.match(message ?? "", /^You exceeded your current quota/);
    assert.deepEqual(facts, {
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

describe("readErrorBody's one kept body", () => {
  it("is never one longer than an error body's default read: an error inside a 64 MiB 2xx outlived its refusal", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const beforeBytes = process.memoryUsage().heapUsed;
    const readHuge = (): ErrorBodyFacts => {
      const huge = JSON.stringify({ error: { code: "insufficient_quota" }, pad: "y".repeat(20_000_000) });
      const facts = readErrorBody(huge);
      assert.deepEqual(readErrorBody(huge), facts, "read alike each time");
      return facts;
    };
    assert.deepEqual(readHuge().codes, ["insufficient_quota"]);
    gc();
    const retainedBytes = process.memoryUsage().heapUsed - beforeBytes;
    assert.ok(retainedBytes < 10_000_000, `${Math.round(retainedBytes / 1e6)} MB still held after the refusal`);
  });
});

describe("proxiedErrorBody: LiteLLM's `<Provider>Exception - {json}`", () => {
  const openRouter =
    '{"error":{"message":"Provider returned error","code":429,"metadata":{"provider_name":"Groq","retry_after_seconds":30}}}';
  it("opens the proxy's error JSON and its plain-text form, up to the wrapped object's end", () => {
    const proxied = JSON.stringify({
      error: {
        message: `litellm.RateLimitError: RateLimitError: OpenrouterException - ${openRouter}\nReceived Model Group=openrouter/m\nAvailable Model Group Fallbacks=None`,
        type: null,
        param: null,
        code: "429",
      },
    });
    assert.equal(proxiedErrorBody(proxied), openRouter);
    assert.equal(proxiedErrorBody(`OpenrouterException - ${openRouter}`), openRouter);
    assert.deepEqual(readErrorBody(proxied), {
      codes: ["429"],
      quotaIds: [],
      relayedRetryAfter: "30",
      relayedProvider: "Groq",
      message: "Provider returned error",
    });
  });

  it("leaves every other body alone", () => {
    for (const bodyText of [
      openRouter,
      "OpenrouterException - Insufficient credits",
      'OpenrouterException - {"error":',
      JSON.stringify({ error: { message: "The user wrote: OpenrouterException - not json {" } }),
      `${"x".repeat(2_000)} OpenrouterException - ${openRouter}`,
      // Quoted inside another message or text (a validator quoting a prompt): not the wrapper, which starts it.
      JSON.stringify({ error: { message: `Invalid content: 'see OpenrouterException - ${openRouter}'` } }),
      `Bad request: content 'OpenrouterException - ${openRouter}' rejected`,
    ]) {
      assert.equal(proxiedErrorBody(bodyText), undefined, bodyText.slice(0, 80));
    }
  });
});
