import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cerebras,
  gemini,
  groq,
  mistral,
  openRouter,
  type ResponseFixture,
} from "../../test/fixtures/provider-fixtures.ts";
import { classifyRateLimit, requestLargerThanWindow } from "./classify-429.ts";
import { refusalText } from "./refusal-wording.ts";
import { retryHintFromResponse } from "./retry-hint.ts";

/** A real body with `extra` merged into its error object (or into the flat body, or the list's first error). */
function withDecoy(fixture: ResponseFixture, extra: Record<string, unknown>): ResponseFixture {
  const parsed: unknown = JSON.parse(fixture.bodyText ?? "");
  const root = (Array.isArray(parsed) ? parsed[0] : parsed) as Record<string, unknown>;
  const error = root.error;
  if (typeof error === "object" && error !== null) Object.assign(error, extra);
  else Object.assign(root, extra);
  return { ...fixture, bodyText: JSON.stringify(parsed) };
}

const GROQ_413_MESSAGE =
  "Request too large for model `llama-3.3-70b-versatile` in organization `org_01jp8byqwpfx9sp1m0dbhb6a1e` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 14810, please reduce your message size and try again.";

// Each refusal's kind is its message's; other words in the body (a provider's raw echo under OpenRouter's own
// message, previous attempts' errors, a failed generation, an echo of the input, a help link) are not this refusal's.
describe("refusal wordings are read from the error's message, not from the whole body", () => {
  const cases: readonly {
    readonly name: string;
    readonly fixture: ResponseFixture;
    readonly decoy: Record<string, unknown>;
    readonly kind: string;
  }[] = [
    {
      name: "OpenRouter's free-models-per-min with a raw echo quoting insufficient credits",
      fixture: openRouter.freeModelsPerMinute429,
      decoy: {
        metadata: { raw: "upstream said: insufficient credits on the provider's account", provider_name: null },
      },
      kind: "short",
    },
    {
      name: "OpenRouter's free-models-per-min with previous errors of an overloaded provider",
      fixture: openRouter.freeModelsPerMinute429,
      decoy: { metadata: { previous_errors: [{ provider: "Chutes", message: "model overloaded" }] } },
      kind: "short",
    },
    {
      name: "Groq's tokens per minute with a failed generation quoting 'out of credits'",
      fixture: groq.tokensPerMinute429,
      decoy: { failed_generation: "Sorry, I am out of credits for today" },
      kind: "short",
    },
    {
      name: "Groq's tokens per day with an input echo saying 'overloaded'",
      fixture: groq.tokensPerDay429,
      decoy: { failed_generation: "the server is overloaded" },
      kind: "daily",
    },
    {
      name: "Google AI Studio's bare RESOURCE_EXHAUSTED with a help link about per-day quotas",
      fixture: gemini.bareResourceExhausted429,
      decoy: {
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.Help",
            links: [{ description: "Requests per day and per minute", url: "https://ai.google.dev/gemini-api/docs" }],
          },
        ],
      },
      kind: "short",
    },
    {
      name: "Mistral's per-minute limit with an input echo naming a monthly plan",
      fixture: mistral.rateLimited429,
      decoy: { detail: [{ input: "what does the monthly plan cost?" }] },
      kind: "short",
    },
    {
      name: "Cerebras' requests per minute with a field naming a daily quota",
      fixture: cerebras.requestsPerMinute429,
      decoy: { detail: "see your daily usage at cloud.cerebras.ai" },
      kind: "short",
    },
  ];
  for (const { name, fixture, decoy, kind } of cases) {
    it(name, () => {
      const plain = classifyRateLimit(fixture);
      assert.equal(plain.kind, kind, `the real body: ${plain.reason}`);
      const decoyed = classifyRateLimit(withDecoy(fixture, decoy));
      assert.equal(decoyed.kind, kind, decoyed.reason);
      assert.equal(decoyed.reason, plain.reason);
    });
  }

  it("OpenRouter's relay of a provider's refusal still reads that provider's words in metadata.raw", () => {
    const relayed = classifyRateLimit(openRouter.upstreamRateLimited429);
    assert.equal(relayed.kind, "capacity");
    assert.match(relayed.reason, /temporarily rate-limited/);
    const groq413 = JSON.stringify({
      error: {
        message: "Provider returned error",
        code: 413,
        metadata: { raw: JSON.stringify({ error: { message: GROQ_413_MESSAGE } }), provider_name: "Groq" },
      },
    });
    assert.deepEqual(requestLargerThanWindow(groq413), { limit: 6000, requested: 14810 });
  });

  it("a request-too-large quoted in another error's metadata is not this request's size", () => {
    const body = JSON.stringify({
      error: {
        message: "Rate limit exceeded: free-models-per-min. ",
        code: 429,
        metadata: { previous_errors: [{ provider: "Groq", message: GROQ_413_MESSAGE }] },
      },
    });
    assert.equal(requestLargerThanWindow(body), undefined);
    const classified = classifyRateLimit({ status: 429, headers: {}, bodyText: body });
    assert.equal(classified.isRequestTooLarge, undefined, classified.reason);
    assert.equal(classified.kind, "short");
  });

  it("a body without a message (not JSON, Cloudflare's errors[]) is read whole, lower-cased", () => {
    assert.equal(refusalText("Tokens Per Day exceeded"), "tokens per day exceeded");
    assert.match(refusalText(JSON.stringify({ errors: [{ message: "Daily free allocation", code: 3036 }] })), /daily/);
    assert.equal(refusalText(JSON.stringify({ error: { message: "Overloaded", note: "per day" } })), "overloaded");
  });
});

// The shape of web frameworks' own errors (Fastify's @fastify/rate-limit by default, Spring, many Go limiters) in front
// of an OpenAI-compatible host: `error` is the status's reason phrase, `message` the refusal's words.
describe("a string error beside a message: the message's words are the refusal's", () => {
  const fastify429 = (message: string): string =>
    JSON.stringify({ statusCode: 429, error: "Too Many Requests", message });

  it("a daily limit in the message is daily, not a short window", () => {
    const bodyText = fastify429("You have exceeded the daily request limit of this key");
    assert.equal(classifyRateLimit({ status: 429, headers: {}, bodyText }).kind, "daily");
  });

  it("its wait ('retry in 1 minute', @fastify/rate-limit's default wording) is read", () => {
    const bodyText = fastify429("Rate limit exceeded, retry in 1 minute");
    const hint = retryHintFromResponse({ status: 429, headers: {}, bodyText, nowMs: 0 });
    assert.deepEqual(hint, { delayMs: 60_000, source: "body" });
  });
});
