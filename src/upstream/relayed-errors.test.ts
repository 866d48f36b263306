// An aggregator's wrapper of the provider it routed to (OpenRouter's "Provider returned error" with the provider's body
// in `error.metadata.raw`): read as that provider's own error, with its name.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { providerSettingsSchema } from "../config/schema.ts";
import { classifyResponse, type Verdict } from "./classify-response.ts";
import { rejectedError } from "./final-error.ts";
import { lessonFromVerdict } from "./lessons.ts";
import { describedMessage } from "./read-upstream-error.ts";

const NOW_MS = Date.UTC(2026, 0, 1, 12);

/** OpenRouter's wrapper of `raw` (a string, or whatever the provider's body parsed to), as its docs show it. */
function wrapped(status: number, raw: unknown, providerName: unknown = "Groq"): string {
  return JSON.stringify({
    error: { message: "Provider returned error", code: status, metadata: { raw, provider_name: providerName } },
    user_id: "user_2abc",
  });
}

function classify(status: number, body: string, request?: unknown): Verdict {
  return classifyResponse(status, {}, body, NOW_MS, request);
}

function rejected(verdict: Verdict): Verdict & { kind: "rejected" } {
  assert.equal(verdict.kind, "rejected", JSON.stringify(verdict));
  return verdict as Verdict & { kind: "rejected" };
}

const GROQ_CONTEXT = JSON.stringify({
  error: {
    message:
      "Please reduce the length of the messages or completion. This model's maximum context length is 8192 tokens.",
    type: "invalid_request_error",
    param: "messages",
    code: "context_length_exceeded",
  },
});

describe("OpenRouter's relayed error: the provider's own, read from metadata.raw", () => {
  test("raw JSON (a context-length refusal): a context_length verdict with the inner fields and the provider named", () => {
    const verdict = classify(400, wrapped(400, GROQ_CONTEXT));
    assert.equal(verdict.kind, "context_length", JSON.stringify(verdict));
    if (verdict.kind !== "context_length") return;
    assert.equal(verdict.error.code, "context_length_exceeded");
    assert.equal(verdict.error.param, "messages");
    assert.equal(verdict.error.type, "invalid_request_error");
    assert.equal(verdict.error.relayedFrom, "Groq");
    assert.match(verdict.error.message, /^Please reduce the length/);
    assert.match(verdict.reason, /^HTTP 400: Groq: Please reduce the length/);
  });

  test("a 413 with it too (OpenRouter's status for a prompt too long for every endpoint)", () => {
    assert.equal(classify(413, wrapped(413, GROQ_CONTEXT)).kind, "context_length");
  });

  test("raw JSON refusing a parameter: unsupported (failed over), as the provider's direct refusal is", () => {
    const raw = JSON.stringify({
      error: {
        message: "'logprobs' is not supported with this model.",
        type: "invalid_request_error",
        param: "logprobs",
      },
    });
    const verdict = rejected(classify(400, wrapped(400, raw, "DeepInfra"), { model: "m", logprobs: true }));
    assert.equal(verdict.refusal, "unsupported");
    assert.equal(verdict.error.param, "logprobs");
    assert.equal(verdict.status, 400, "the outer status stays");
  });

  test("raw JSON saying the model does not exist: model_unavailable", () => {
    const raw = JSON.stringify({ error: { message: "The model `x` does not exist", code: "model_not_found" } });
    assert.equal(rejected(classify(400, wrapped(400, raw))).refusal, "model_unavailable");
  });

  test("raw nested pydantic detail (vLLM, a Python host): the field as param, refused as unsupported", () => {
    const raw = JSON.stringify({
      detail: [
        { type: "extra_forbidden", loc: ["body", "parallel_tool_calls"], msg: "Extra inputs are not permitted" },
      ],
    });
    const verdict = rejected(classify(400, wrapped(400, raw, "Chutes")));
    assert.equal(verdict.error.message, "parallel_tool_calls: Extra inputs are not permitted");
    assert.equal(verdict.error.param, "parallel_tool_calls");
    assert.equal(verdict.refusal, "unsupported");
  });

  test("raw text: its words, flattened and cut as a text body's are", () => {
    const verdict = rejected(classify(400, wrapped(400, "Bad request:\n  temperature must be <= 1\n")));
    assert.equal(verdict.error.message, "Bad request: temperature must be <= 1");
    assert.equal(verdict.error.relayedFrom, "Groq");
    assert.equal(verdict.error.code, "400", "the outer code when the inner error has none");
    assert.equal(verdict.refusal, "request");
  });

  test("raw as an object (not a string): read the same", () => {
    const raw = { error: { message: "This model does not support tools", code: "tools_unsupported" } };
    const verdict = rejected(classify(400, wrapped(400, raw)));
    assert.equal(verdict.error.message, "This model does not support tools");
    assert.equal(verdict.error.code, "tools_unsupported");
  });

  test("raw huge: bounded (a 2 MB raw yields at most 300 characters, fast)", () => {
    const started = performance.now();
    const text = `Prompt echo: ${"a b ".repeat(500_000)}`;
    const asText = rejected(classify(400, wrapped(400, text)));
    assert.ok(asText.error.message.length <= 300, `${asText.error.message.length}`);
    assert.match(asText.error.message, /^Prompt echo: a b/);
    // JSON over the parse bound is read as text, not parsed.
    const hugeJson = JSON.stringify({ error: { message: `x ${"y".repeat(2_000_000)}` } });
    const asJson = rejected(classify(400, wrapped(400, hugeJson)));
    assert.ok(asJson.error.message.length <= 300, `${asJson.error.message.length}`);
    assert.ok(asJson.raw.length <= 4_000, "the raw passed on stays capped");
    assert.ok(performance.now() - started < 2_000);
  });

  test("a wrapper inside raw is not opened again (recursion once)", () => {
    const inner = wrapped(400, GROQ_CONTEXT, "Inner");
    const verdict = rejected(classify(400, wrapped(400, inner, "Outer")));
    assert.equal(verdict.error.message, "Provider returned error");
    assert.equal(verdict.error.relayedFrom, "Outer");
  });

  test("a specific message with metadata stays as it is; raw empty or a web page leaves the wrapper's message, named", () => {
    const specific = JSON.stringify({
      error: { message: "temperature is out of range", code: 400, metadata: { raw: "x", provider_name: "Groq" } },
    });
    const verdict = rejected(classify(400, specific));
    assert.equal(verdict.error.message, "temperature is out of range");
    assert.equal(verdict.error.relayedFrom, undefined);
    for (const raw of ["", "  ", "<html><body>502</body></html>", null, 42]) {
      const plain = rejected(classify(400, wrapped(400, raw)));
      assert.equal(plain.error.message, "Provider returned error", String(raw));
      assert.equal(plain.error.relayedFrom, "Groq");
      assert.equal(plain.error.isRelayed, true);
    }
  });

  test("no provider_name: the inner error is read, no name is made up", () => {
    const verdict = classify(400, wrapped(400, GROQ_CONTEXT, null));
    assert.equal(verdict.kind, "context_length");
    if (verdict.kind === "context_length") assert.equal(verdict.error.relayedFrom, undefined);
  });

  test("the client's message names the provider and the aggregator; keys echoed in raw are redacted", () => {
    const raw = JSON.stringify({ error: { message: "Invalid value for 'n' (key sk-abcdefghijklmnopqrstuvwx)" } });
    const verdict = rejected(classify(400, wrapped(400, raw)));
    const error = rejectedError(
      verdict,
      { provider: "openrouter", model: "m" } as Parameters<typeof rejectedError>[1],
      (text) => text.replaceAll(/sk-[a-z]+/g, "[redacted]"),
    );
    assert.equal(error.message, "Groq (via openrouter): Invalid value for 'n' (key [redacted])");
    assert.equal(error.status, 400);
    assert.doesNotMatch(error.metadata?.raw ?? "", /sk-abc/);
    assert.equal(describedMessage(verdict.error), "Groq: Invalid value for 'n' (key sk-abcdefghijklmnopqrstuvwx)");
  });
});

describe("OpenRouter's 403s and 401s", () => {
  const moderation = JSON.stringify({
    error: {
      code: 403,
      message: "Your chosen model requires moderation and your input was flagged",
      metadata: { reasons: ["harassment", "violence"], flagged_input: "some flagged words", provider_name: "OpenAI" },
    },
  });

  test("a moderation 403 fails over (another model may not be moderated), named with its reasons; teaches nothing", () => {
    const verdict = rejected(classify(403, moderation));
    assert.equal(verdict.refusal, "unsupported");
    assert.equal(verdict.status, 403);
    assert.deepEqual(verdict.error.flaggedFor, ["harassment", "violence"]);
    assert.equal(
      verdict.error.message,
      "Your chosen model requires moderation and your input was flagged. Flagged for: harassment, violence.",
    );
    const lesson = lessonFromVerdict(verdict, settings(), NOW_MS);
    assert.equal(lesson.outcome, "unsupported");
    assert.equal(lesson.effects.length, 0, "no key parked, no model or feature learned");
    // The flagged words are the client's prompt: not in the message (a reason, a log line, a record), only in the
    // body the client gets back as `metadata.raw`.
    assert.doesNotMatch(lesson.reason, /some flagged words/);
    const error = rejectedError(
      verdict,
      { provider: "openrouter", model: "m" } as Parameters<typeof rejectedError>[1],
      (text) => text,
    );
    assert.doesNotMatch(error.message, /some flagged words/);
    assert.match(error.metadata?.raw ?? "", /some flagged words/);
  });

  test("a moderation 403 naming no reason (an empty `reasons`, or only `flagged_input`) is still no key's refusal", () => {
    for (const metadata of [{ reasons: [] }, { flagged_input: "words", provider_name: "Meta" }]) {
      const body = JSON.stringify({ error: { code: 403, message: "Your input was flagged", metadata } });
      const verdict = rejected(classify(403, body));
      assert.equal(verdict.refusal, "unsupported", JSON.stringify(metadata));
      assert.deepEqual(verdict.error.flaggedFor, []);
      assert.equal(verdict.error.message, "Your input was flagged");
      assert.equal(lessonFromVerdict(verdict, settings(), NOW_MS).effects.length, 0, "no key parked");
    }
  });

  test("a moderation message that already names its reasons is kept as it is", () => {
    const message =
      'm requires moderation on OpenAI. Your input was flagged for "harassment". No credits were charged.';
    const body = JSON.stringify({ error: { code: 403, message, metadata: { reasons: ["harassment"] } } });
    assert.equal(rejected(classify(403, body)).error.message, message);
  });

  test("a relayed 403 (the provider refused OpenRouter: a region) is this model's, not the key's", () => {
    const raw = JSON.stringify({
      error: { code: "unsupported_country_region_territory", message: "Country, region, or territory not supported" },
    });
    const verdict = rejected(classify(403, wrapped(403, raw, "OpenAI")));
    assert.equal(verdict.refusal, "model_unavailable");
    const lesson = lessonFromVerdict(verdict, settings(), NOW_MS);
    assert.deepEqual(
      lesson.effects.map((effect) => effect.kind),
      ["model_unavailable"],
    );
    assert.match(lesson.reason, /OpenAI: Country, region/);
  });

  test("OpenRouter's own 401 (its key) still parks the key", () => {
    const body = JSON.stringify({ error: { message: "No auth credentials found", code: 401 } });
    assert.equal(classify(401, body).kind, "invalid_key");
  });
});

function settings(extra: Record<string, unknown> = {}) {
  return providerSettingsSchema.parse({
    name: "openrouter",
    base_url: "https://openrouter.ai/api/v1",
    api_key: "sk",
    ...extra,
  });
}

describe("a relayed 429: the routed provider's limit, not the key's pool", () => {
  const account = settings({ rate_limit_scope: "account", rate_limit_dialect: "openrouter" });
  const groqDaily = JSON.stringify({
    error: {
      message:
        "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_1` on tokens per day (TPD): Limit 100000, Used 99000, Requested 2000. Please try again in 14m24s.",
      type: "tokens",
      code: "rate_limit_exceeded",
    },
  });

  test("classified as capacity, marked relayed, the provider named", () => {
    const verdict = classify(429, wrapped(429, groqDaily));
    assert.equal(verdict.kind, "rate_limited");
    if (verdict.kind !== "rate_limited") return;
    assert.equal(verdict.limitKind, "capacity");
    assert.equal(verdict.isRelayed, true);
    assert.equal(verdict.isAccountWide, undefined);
    assert.match(verdict.reason, /^Groq \(the provider this model was routed to\) is rate-limited: tokens per day/);
  });

  test("on an account-scoped provider only the deployment cools: no pool, no limits learned", () => {
    const verdict = classify(429, wrapped(429, groqDaily));
    const effects = lessonFromVerdict(verdict, account, NOW_MS, { headers: {}, bodyText: wrapped(429, groqDaily) });
    assert.deepEqual(
      effects.effects.map((effect) => effect.kind),
      ["cool_down"],
    );
  });

  test("OpenRouter's own free-models-per-min 429 (no raw) is still the account's pool", () => {
    const body = JSON.stringify({ error: { message: "Rate limit exceeded: free-models-per-min. ", code: 429 } });
    const verdict = classify(429, body);
    const effects = lessonFromVerdict(verdict, account, NOW_MS, { headers: {}, bodyText: body });
    assert.deepEqual(effects.effects.map((effect) => effect.kind).slice(0, 2), ["cool_down", "cool_pool"]);
  });

  test("a relayed request-too-large 429 teaches no limit of this key", () => {
    const raw = JSON.stringify({
      error: {
        message:
          "Request too large for model `m` in organization `o` on tokens per minute (TPM): Limit 6000, Requested 14810",
      },
    });
    const verdict = classify(429, wrapped(429, raw));
    assert.equal(verdict.kind === "rate_limited" && verdict.isRequestTooLarge, true);
    const lesson = lessonFromVerdict(verdict, account, NOW_MS, { headers: {}, bodyText: wrapped(429, raw) });
    assert.deepEqual(lesson.effects, []);
  });
});

describe("a relayed 404 or 405", () => {
  test("is this model's at the aggregator, never the aggregator's missing route", () => {
    const wrappedNotFound = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 404,
        metadata: { raw: '{"detail":"Not Found"}', provider_name: "vLLM host" },
      },
    });
    assert.equal(rejected(classify(404, wrappedNotFound)).refusal, "model_unavailable");
    assert.equal(rejected(classify(405, wrapped(405, "Method Not Allowed"))).refusal, "model_unavailable");
    // The same 404 unwrapped is a router's "no such path", as before.
    assert.equal(rejected(classify(404, '{"detail":"Not Found"}')).refusal, "unserved_endpoint");
  });
});

// OpenRouter's relay often carries no `raw` at all (`metadata: {provider_name, is_byok, retry_after_seconds}`), or a
// `raw` without `provider_name`: "Provider returned error" still says whose error it is. Shapes as OpenRouter sends
// them, quoted in clients' tests and logs (a 429 from Together, GMICloud, CoreWeave, Poolside; a 403 region refusal).
describe("a relayed error without raw or without provider_name is still the routed provider's", () => {
  const account = settings({ rate_limit_scope: "account", rate_limit_dialect: "openrouter" });
  const bareRelayed429 = JSON.stringify({
    error: {
      message: "Provider returned error",
      code: 429,
      metadata: { provider_name: "Together", is_byok: false, retry_after_seconds: 1 },
    },
    user_id: "user_2abc",
  });

  test("a 429 with provider_name and no raw: capacity of that model; no pool cooled, no limit learned", () => {
    const verdict = classify(429, bareRelayed429);
    assert.equal(verdict.kind, "rate_limited");
    if (verdict.kind !== "rate_limited") return;
    assert.equal(verdict.limitKind, "capacity");
    assert.equal(verdict.isRelayed, true);
    assert.match(verdict.reason, /^Together \(the provider this model was routed to\) is rate-limited/);
    const lesson = lessonFromVerdict(verdict, account, NOW_MS, { headers: {}, bodyText: bareRelayed429 });
    assert.deepEqual(
      lesson.effects.map((effect) => effect.kind),
      ["cool_down"],
    );
  });

  test("a 429 saying only 'Provider returned error' (no metadata): the provider's, not the account's pool", () => {
    const body = JSON.stringify({ error: { message: "Provider returned error", code: 429 } });
    const verdict = classify(429, body);
    const lesson = lessonFromVerdict(verdict, account, NOW_MS, { headers: {}, bodyText: body });
    assert.deepEqual(
      lesson.effects.map((effect) => effect.kind),
      ["cool_down"],
    );
  });

  test("a relayed 403 with raw and no provider_name (a region refusal): this model's, not the key's", () => {
    const body = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 403,
        metadata: { raw: JSON.stringify({ error: { code: "unsupported_country_region_territory" } }) },
      },
    });
    const verdict = rejected(classify(403, body));
    assert.equal(verdict.refusal, "model_unavailable");
    assert.deepEqual(
      lessonFromVerdict(verdict, account, NOW_MS).effects.map((effect) => effect.kind),
      ["model_unavailable"],
    );
  });

  test("a relayed 401 without raw (the user's own key at the provider, BYOK): this model's, not the key's", () => {
    const body = JSON.stringify({
      error: { message: "Provider returned error", code: 401, metadata: { provider_name: "OpenAI", is_byok: true } },
    });
    assert.equal(rejected(classify(401, body)).refusal, "model_unavailable");
  });

  test("a relayed 404 of a router's words without provider_name: the model's, not the aggregator's route", () => {
    const body = JSON.stringify({
      error: { message: "Provider returned error", code: 404, metadata: { raw: '{"detail":"Not Found"}' } },
    });
    assert.equal(rejected(classify(404, body)).refusal, "model_unavailable");
  });

  test("OpenRouter's own errors stay its own: the key's 401, the account's free-models-per-day 429", () => {
    const ownKey = JSON.stringify({ error: { message: "User not found.", code: 401 } });
    assert.equal(classify(401, ownKey).kind, "invalid_key");
    const perDay = JSON.stringify({
      error: {
        message: "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        code: 429,
        metadata: { headers: { "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0" }, provider_name: null },
      },
    });
    const verdict = classify(429, perDay);
    assert.equal(verdict.kind === "rate_limited" && verdict.isAccountWide, true);
  });
});

describe("a relayed 429's wait, given inside the body", () => {
  test("metadata.retry_after_seconds, else a Retry-After in metadata.headers, is the model's cooldown", () => {
    const withSeconds = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 429,
        metadata: {
          raw: "vendor/m:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",
          provider_name: "Venice",
          is_byok: false,
          retry_after_seconds: 17,
          retry_after_seconds_raw: 16.007,
          headers: { "Retry-After": "20" },
        },
      },
    });
    const verdict = classify(429, withSeconds);
    assert.equal(verdict.kind, "rate_limited");
    if (verdict.kind !== "rate_limited") return;
    assert.deepEqual(verdict.hint, { delayMs: 17_000, source: "body" });
    const lesson = lessonFromVerdict(verdict, settings({ rate_limit_scope: "account" }), NOW_MS);
    assert.match(lesson.reason, /retry in 17000 ms, from body/);
    const headerOnly = JSON.stringify({
      error: { message: "Provider returned error", code: 429, metadata: { headers: { "retry-after": "9" } } },
    });
    const fromHeader = classify(429, headerOnly);
    assert.equal(fromHeader.kind === "rate_limited" && fromHeader.hint?.delayMs, 9_000);
  });

  test("the answer's own headers are the aggregator's (the account's window): never the relayed model's wait", () => {
    const body = JSON.stringify({
      error: { message: "Provider returned error", code: 429, metadata: { retry_after_seconds: 17 } },
    });
    const accountHeaders = { "retry-after": "3", "x-ratelimit-reset": String(NOW_MS + 3_600_000) };
    const verdict = classifyResponse(429, accountHeaders, body, NOW_MS);
    assert.deepEqual(verdict.kind === "rate_limited" && verdict.hint, { delayMs: 17_000, source: "body" });
    // The routed provider's reset, relayed in metadata.headers, is its own.
    const relayedReset = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 429,
        metadata: { provider_name: "Groq", headers: { "X-RateLimit-Reset": String(NOW_MS + 5_000) } },
      },
    });
    const fromRelayedReset = classifyResponse(429, accountHeaders, relayedReset, NOW_MS);
    assert.deepEqual(fromRelayedReset.kind === "rate_limited" && fromRelayedReset.hint, {
      delayMs: 5_000,
      source: "x-ratelimit-reset",
    });
    // Nothing of the relay's or the provider's: no hint (the gateway's backoff), not the account's hour.
    const bare = JSON.stringify({
      error: { message: "Provider returned error", code: 429, metadata: { provider_name: "Together" } },
    });
    const withoutHint = classifyResponse(429, accountHeaders, bare, NOW_MS);
    assert.equal(withoutHint.kind === "rate_limited" && withoutHint.hint, undefined);
    // OpenRouter's own 429 (not relayed) keeps its headers.
    const own = JSON.stringify({ error: { message: "Rate limit exceeded: free-models-per-min.", code: 429 } });
    const ownVerdict = classifyResponse(429, accountHeaders, own, NOW_MS);
    assert.deepEqual(ownVerdict.kind === "rate_limited" && ownVerdict.hint, { delayMs: 3_000, source: "retry-after" });
  });
});

describe("a relayed 402: the routed provider's credits, not the key's", () => {
  const account = settings({ rate_limit_scope: "account", rate_limit_dialect: "openrouter" });
  test("Venice's spend limit through OpenRouter leaves out that model; OpenRouter's own 402 still parks the key", () => {
    const relayed402 = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 402,
        metadata: {
          raw: JSON.stringify({
            error:
              "API key USD spend limit exceeded. Your account may still have USD balance, but this API key has reached its configured USD spending limit.",
          }),
          provider_name: "Venice",
          is_byok: false,
        },
      },
      user_id: "user_2abc",
    });
    const verdict = rejected(classify(402, relayed402));
    assert.equal(verdict.refusal, "model_unavailable");
    const lesson = lessonFromVerdict(verdict, account, NOW_MS);
    assert.deepEqual(
      lesson.effects.map((effect) => effect.kind),
      ["model_unavailable"],
    );
    assert.match(lesson.reason, /Venice: API key USD spend limit exceeded/);
    // Without raw (a BYOK key's balance at DeepSeek), the same.
    const bare = JSON.stringify({
      error: { message: "Provider returned error", code: 402, metadata: { provider_name: "DeepSeek", is_byok: true } },
    });
    assert.equal(rejected(classify(402, bare)).refusal, "model_unavailable");
    const own = JSON.stringify({
      error: { message: "Insufficient credits. Add more using https://openrouter.ai/credits", code: 402 },
    });
    const ownVerdict = classify(402, own);
    assert.equal(ownVerdict.kind === "rate_limited" && ownVerdict.limitKind, "credits");
    assert.deepEqual(
      lessonFromVerdict(ownVerdict, account, NOW_MS).effects.map((effect) => effect.kind),
      ["park_key"],
    );
  });
});

// OpenRouter's own 404 when no provider of the model takes what the request asks for: a refusal of a feature, not
// the model gone. As model_unavailable it left the deployment out of every request for model_unavailable_ms,
// requests without tools too.
describe("OpenRouter's 404 'No endpoints found that support ...'", () => {
  const tools = [{ type: "function", function: { name: "f", parameters: {} } }];
  const request = { model: "m", messages: [{ role: "user", content: "Hi" }], tools };
  const notFound = (message: string) => JSON.stringify({ error: { message, code: 404 } });

  test("tool use: unsupported, and tools learned as refused (not the model left out)", () => {
    const verdict = rejected(
      classify(
        404,
        notFound(
          "No endpoints found that support tool use. To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing",
        ),
        request,
      ),
    );
    assert.equal(verdict.refusal, "unsupported");
    const lesson = lessonFromVerdict(verdict, settings(), NOW_MS, undefined, ["tools"]);
    assert.deepEqual(
      lesson.effects.map((effect) =>
        effect.kind === "refused_feature" ? `${effect.kind}:${effect.feature}` : effect.kind,
      ),
      ["refused_feature:tools"],
    );
  });

  test("the requested parameters: unsupported, failed over, nothing learned without one named", () => {
    const verdict = rejected(
      classify(404, notFound("No endpoints found that can handle the requested parameters."), request),
    );
    assert.equal(verdict.refusal, "unsupported");
  });

  test("the model itself gone is still model_unavailable", () => {
    assert.equal(rejected(classify(404, notFound("No endpoints found for x-ai/grok-2."))).refusal, "model_unavailable");
  });
});

describe("a relayed body's type, code and param are bounded like its message", () => {
  test("a 20 KB code or param from raw (or the outer body) reaches neither the client nor the record whole", () => {
    const long = "x".repeat(20_000);
    const raw = JSON.stringify({ error: { message: "bad value", type: long, code: long, param: long } });
    const verdict = rejected(classify(400, wrapped(400, raw)));
    for (const value of [verdict.error.type, verdict.error.code, verdict.error.param]) {
      assert.ok(value !== undefined && value.length <= 200, `${value?.length}`);
    }
    const outer = JSON.stringify({
      error: { message: "Provider returned error", code: long, metadata: { raw: "bad", provider_name: "Groq" } },
    });
    assert.ok((rejected(classify(400, outer)).error.code ?? "").length <= 200);
    // Short ones, as clients match them, are untouched.
    const plain = rejected(
      classify(400, JSON.stringify({ error: { message: "m", code: "invalid_value", param: "temperature" } })),
    );
    assert.equal(plain.error.code, "invalid_value");
    assert.equal(plain.error.param, "temperature");
  });
});
