// Every built-in provider preset against a local mock that speaks that provider's dialect: the preset's base URL
// (and model list URL) pointed at the mock, its key taken from the preset's variable, its /models quirks, its
// rate-limit headers and its recorded 429s (src/limits/provider-fixtures.ts). Each row asserts the gateway's
// reaction: which models are listed, which budgets it knows up front, which windows it learns from the headers,
// and how it cools down after each refusal. A manual clock makes every cooldown exact.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import {
  cerebras,
  cloudflare,
  cohere,
  gemini,
  githubModels,
  groq,
  huggingFace,
  mistral,
  NEXT_UTC_MIDNIGHT_MS,
  NOW_MS,
  nvidia,
  openAi,
  openRouter,
  type ResponseFixture,
  together,
} from "../fixtures/provider-fixtures.ts";
import { CHAT_ROUTE, MODELS_ROUTE, modelOf, postChat, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

const HOUR_MS = 3_600_000;

interface Window {
  readonly unit: string;
  readonly window: string;
  readonly limit: number;
}

interface RefusalCase {
  readonly name: string;
  readonly step: MockStep;
  /** The cooldown cause /stats must show afterwards. */
  readonly cause: string;
  /** Exact cooldown, when it is determined (a provider hint, or a park until the day resets). */
  readonly remainingMs?: number;
  /** Set when the gateway does not react as it should yet: the row documents the gap without failing the run. */
  readonly todo?: string;
}

interface PresetCase {
  readonly preset: string;
  /** The preset's key variable(s) and anything else it needs. */
  readonly env: Readonly<Record<string, string>>;
  /** The key value discovery and chat requests must carry. */
  readonly key: string;
  /** More YAML lines for the entry (indented by 4), e.g. a model_url pointing at the mock. */
  readonly entry?: (mock: MockUpstream) => string;
  /** Scripts the model list where the provider serves it. Omitted: the provider lists no models (configured). */
  readonly listModels?: (mock: MockUpstream) => { route: string; query?: string };
  /** Public names GET /v1/models must list, and names it must not. */
  readonly listed: readonly string[];
  readonly unlisted?: readonly string[];
  /** The public name to request and the upstream id the provider must receive. */
  readonly model: string;
  readonly upstreamId: string;
  /** Budgets known before any traffic (preset pool or known_models), source "config". */
  readonly configured: readonly Window[];
  /** A success's rate-limit headers, and the windows the gateway must learn from them (source "provider"). */
  readonly successHeaders?: Readonly<Record<string, string>>;
  readonly learned?: readonly Window[];
  readonly refusals: readonly RefusalCase[];
}

/** A recorded response as the mock's raw-text step (JSON bodies keep a JSON content type). */
function replay(fixture: ResponseFixture): MockStep {
  return {
    kind: "text",
    status: fixture.status,
    body: fixture.bodyText ?? "",
    headers: { "content-type": "application/json", ...fixture.headers },
  };
}

function models(mock: MockUpstream, list: { id: string; [key: string]: unknown }[]) {
  mock.models = list;
  return { route: MODELS_ROUTE };
}

const OPENAI_STYLE_SUCCESS = openAi.success.headers;

const CASES: readonly PresetCase[] = [
  {
    preset: "openrouter",
    env: { OPENROUTER_API_KEY: "sk-or-test" },
    key: "sk-or-test",
    listModels: (mock) =>
      models(mock, [
        { id: "meta-llama/llama-3.3-70b-instruct:free", context_length: 131072 },
        { id: "meta-llama/llama-3.3-70b-instruct", context_length: 131072 },
        { id: "openai/gpt-4o" },
      ]),
    listed: ["llama-3.3-70b"],
    unlisted: ["gpt-4o"],
    model: "llama-3.3-70b",
    upstreamId: "meta-llama/llama-3.3-70b-instruct:free",
    configured: [
      { unit: "requests", window: "minute", limit: 20 },
      { unit: "requests", window: "day", limit: 50 },
    ],
    successHeaders: openRouter.success.headers,
    learned: [{ unit: "requests", window: "minute", limit: 20 }],
    refusals: [
      {
        name: "free-models-per-day (reset inside the body)",
        step: replay(openRouter.freeModelsPerDay429),
        cause: "daily_quota",
        remainingMs: NEXT_UTC_MIDNIGHT_MS - NOW_MS,
      },
      {
        name: "free model rate-limited upstream",
        step: replay(openRouter.upstreamRateLimited429),
        cause: "capacity",
      },
    ],
  },
  {
    preset: "gemini",
    env: { GOOGLE_API_KEY: "gemini-alias-key" },
    key: "gemini-alias-key",
    // A one-request daily budget shows that the window follows Google's Pacific-midnight reset.
    entry: () => "known_models:\n      gemini-2.5-flash: { limits: { rpd: 1 } }",
    listModels: (mock) =>
      models(mock, [
        { id: "models/gemini-2.5-flash" },
        { id: "models/aqa" },
        { id: "models/gemini-2.0-flash-live-001" },
        { id: "models/text-embedding-004" },
      ]),
    listed: ["gemini-2.5-flash", "text-embedding-004"],
    unlisted: ["aqa", "gemini-2.0-flash-live-001"],
    model: "gemini-2.5-flash",
    upstreamId: "gemini-2.5-flash",
    configured: [{ unit: "requests", window: "day", limit: 1 }],
    refusals: [
      {
        name: "per-minute quota (list-wrapped body, RetryInfo 38s)",
        step: replay(gemini.perMinute429),
        cause: "rate_limited",
        remainingMs: 38_000,
      },
      { name: "per-day quota id", step: replay(gemini.perDay429), cause: "daily_quota" },
    ],
  },
  {
    preset: "groq",
    env: { GROQ_API_KEY: "gsk-test" },
    key: "gsk-test",
    listModels: (mock) => models(mock, [{ id: "llama-3.3-70b-versatile", context_window: 131072 }]),
    listed: ["llama-3.3-70b"],
    model: "llama-3.3-70b",
    upstreamId: "llama-3.3-70b-versatile",
    configured: [
      { unit: "requests", window: "minute", limit: 30 },
      { unit: "requests", window: "day", limit: 1000 },
      { unit: "tokens", window: "minute", limit: 12000 },
      { unit: "tokens", window: "day", limit: 100000 },
    ],
    successHeaders: groq.success.headers,
    // Groq's -requests headers count the day, its -tokens headers the minute.
    learned: [
      { unit: "requests", window: "day", limit: 14400 },
      { unit: "tokens", window: "minute", limit: 18000 },
    ],
    refusals: [
      { name: "requests per day (RPD)", step: replay(groq.requestsPerDay429), cause: "daily_quota" },
      { name: "tokens per minute (TPM)", step: replay(groq.tokensPerMinute429), cause: "rate_limited" },
    ],
  },
  {
    preset: "cerebras",
    env: { CEREBRAS_API_KEY: "csk-test" },
    key: "csk-test",
    listModels: (mock) => models(mock, [{ id: "gpt-oss-120b", context_length: 131072 }]),
    listed: ["gpt-oss-120b"],
    model: "gpt-oss-120b",
    upstreamId: "gpt-oss-120b",
    configured: [{ unit: "tokens", window: "day", limit: 1000000 }],
    successHeaders: cerebras.success.headers,
    learned: [
      { unit: "requests", window: "day", limit: 14400 },
      { unit: "tokens", window: "minute", limit: 60000 },
    ],
    refusals: [
      { name: "tokens per day", step: replay(cerebras.tokensPerDay429), cause: "daily_quota" },
      { name: "queue_exceeded", step: replay(cerebras.queueExceeded429), cause: "capacity" },
    ],
  },
  {
    preset: "mistral",
    env: { MISTRAL_API_KEY: "mistral-test" },
    key: "mistral-test",
    listModels: (mock) => models(mock, [{ id: "mistral-small-2506" }]),
    listed: ["mistral-small-2506"],
    model: "mistral-small-2506",
    upstreamId: "mistral-small-2506",
    configured: [
      { unit: "requests", window: "second", limit: 1 },
      { unit: "tokens", window: "minute", limit: 500000 },
      { unit: "tokens", window: "month", limit: 1000000000 },
    ],
    successHeaders: mistral.success.headers,
    learned: [
      { unit: "requests", window: "minute", limit: 60 },
      { unit: "tokens", window: "minute", limit: 500000 },
      { unit: "tokens", window: "month", limit: 1000000000 },
    ],
    refusals: [
      { name: "rate limited (1300)", step: replay(mistral.rateLimited429), cause: "rate_limited" },
      { name: "service tier capacity (3505)", step: replay(mistral.capacityExceeded429), cause: "capacity" },
      { name: "monthly tokens used up", step: replay(mistral.monthlyTokensUsedUp429), cause: "daily_quota" },
    ],
  },
  {
    preset: "codestral",
    env: { CODESTRAL_API_KEY: "codestral-test" },
    key: "codestral-test",
    listed: ["codestral-latest"],
    model: "codestral-latest",
    upstreamId: "codestral-latest",
    configured: [
      { unit: "requests", window: "minute", limit: 30 },
      { unit: "requests", window: "day", limit: 2000 },
    ],
    successHeaders: mistral.success.headers,
    learned: [
      { unit: "requests", window: "minute", limit: 60 },
      { unit: "tokens", window: "minute", limit: 500000 },
      { unit: "tokens", window: "month", limit: 1000000000 },
    ],
    refusals: [{ name: "rate limited", step: replay(mistral.rateLimited429), cause: "rate_limited" }],
  },
  {
    preset: "nvidia",
    env: { NVIDIA_API_KEY: "nvapi-test" },
    key: "nvapi-test",
    listModels: (mock) => models(mock, [{ id: "meta/llama-3.3-70b-instruct" }]),
    listed: ["llama-3.3-70b"],
    model: "llama-3.3-70b",
    upstreamId: "meta/llama-3.3-70b-instruct",
    configured: [{ unit: "requests", window: "minute", limit: 40 }],
    refusals: [
      // No hint at all: the first exponential backoff step (cooldowns.rate_limit_base_ms).
      {
        name: "bare problem+json 429",
        step: replay(nvidia.tooManyRequests429),
        cause: "rate_limited",
        remainingMs: 1_000,
      },
    ],
  },
  {
    preset: "github",
    env: { GITHUB_TOKEN: "github_pat_test" },
    key: "github_pat_test",
    entry: (mock) => `model_url: http://127.0.0.1:${mock.port}/catalog`,
    listModels: (mock) => {
      mock.setDefault("GET /catalog/models", {
        kind: "json",
        body: [
          { id: "openai/gpt-4o", name: "OpenAI GPT-4o", rate_limit_tier: "high" },
          { id: "openai/gpt-4o-mini", name: "OpenAI GPT-4o mini", rate_limit_tier: "low" },
        ],
      });
      return { route: "GET /catalog/models" };
    },
    listed: ["gpt-4o", "gpt-4o-mini"],
    model: "gpt-4o",
    upstreamId: "openai/gpt-4o",
    configured: [{ unit: "requests", window: "day", limit: 50 }],
    refusals: [
      {
        name: "UserByModelByDay",
        step: replay(githubModels.perDay429),
        cause: "daily_quota",
        remainingMs: 57_829_000,
      },
      {
        name: "UserByModelByMinute",
        step: replay(githubModels.perMinute429),
        cause: "rate_limited",
        remainingMs: 25_000,
      },
    ],
  },
  {
    preset: "cohere",
    env: { COHERE_API_KEY: "co-test" },
    key: "co-test",
    entry: (mock) => `model_url: "http://127.0.0.1:${mock.port}/cohere/v1/models?endpoint=chat&page_size=1000"`,
    listModels: (mock) => {
      mock.setDefault("GET /cohere/v1/models", {
        kind: "json",
        body: { models: [{ name: "command-a-03-2025", endpoints: ["chat"], context_length: 256000 }] },
      });
      return { route: "GET /cohere/v1/models", query: "endpoint=chat&page_size=1000" };
    },
    listed: ["command-a-03-2025"],
    model: "command-a-03-2025",
    upstreamId: "command-a-03-2025",
    configured: [{ unit: "requests", window: "minute", limit: 20 }],
    refusals: [
      { name: "trial key per minute", step: replay(cohere.trialPerMinute429), cause: "rate_limited" },
      {
        name: "trial key monthly calls used up",
        step: replay(cohere.trialMonthly429),
        cause: "daily_quota",
      },
    ],
  },
  {
    preset: "cloudflare",
    env: { CLOUDFLARE_API_TOKEN: "cf-test", CLOUDFLARE_ACCOUNT_ID: "acc123" },
    key: "cf-test",
    entry: (mock) =>
      `model_url: "http://127.0.0.1:${mock.port}/client/v4/accounts/acc123/ai/models/search?task=Text%20Generation"`,
    listModels: (mock) => {
      mock.setDefault("GET /client/v4/accounts/acc123/ai/models/search", {
        kind: "json",
        body: {
          success: true,
          result: [{ id: "9b2a6c1e-0f4d-4a8b-8c3e-5d7f1a2b3c4d", name: "@cf/meta/llama-3.1-8b-instruct" }],
        },
      });
      return { route: "GET /client/v4/accounts/acc123/ai/models/search", query: "task=Text%20Generation" };
    },
    listed: ["llama-3.1-8b"],
    model: "llama-3.1-8b",
    upstreamId: "@cf/meta/llama-3.1-8b-instruct",
    configured: [],
    refusals: [
      // No hint: parked until the next 00:00 UTC, when the neuron allocation resets.
      {
        name: "daily free allocation (3036)",
        step: replay(cloudflare.dailyAllocation429),
        cause: "daily_quota",
        remainingMs: 12 * HOUR_MS,
      },
      { name: "out of capacity (3040)", step: replay(cloudflare.outOfCapacity429), cause: "capacity" },
    ],
  },
  {
    preset: "together",
    env: { TOGETHER_API_KEY: "tg-test" },
    key: "tg-test",
    listModels: (mock) => {
      // Together answers GET /models with a bare JSON list.
      mock.setDefault(MODELS_ROUTE, { kind: "json", body: [{ id: "meta-llama/Llama-3.3-70B-Instruct-Turbo" }] });
      return { route: MODELS_ROUTE };
    },
    listed: ["llama-3.3-70b"],
    model: "llama-3.3-70b",
    upstreamId: "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    configured: [],
    successHeaders: together.success.headers,
    learned: [
      { unit: "requests", window: "second", limit: 10 },
      { unit: "tokens", window: "second", limit: 3000 },
    ],
    refusals: [
      { name: "model_rate_limit", step: replay(together.rateLimited429), cause: "rate_limited", remainingMs: 2_000 },
    ],
  },
  {
    preset: "huggingface",
    env: { HF_TOKEN: "hf_test" },
    key: "hf_test",
    listModels: (mock) => models(mock, [{ id: "openai/gpt-oss-120b" }]),
    listed: ["gpt-oss-120b"],
    model: "gpt-oss-120b",
    upstreamId: "openai/gpt-oss-120b",
    configured: [],
    successHeaders: OPENAI_STYLE_SUCCESS,
    learned: [
      { unit: "requests", window: "minute", limit: 5000 },
      { unit: "tokens", window: "minute", limit: 160000 },
    ],
    refusals: [
      {
        name: "monthly credits used up (402)",
        step: replay(huggingFace.monthlyCredits402),
        cause: "credits_exhausted",
      },
    ],
  },
  // No recorded 429 for these yet: an OpenAI-shaped 429 with retry-after, and OpenAI-named headers, which is what
  // their `generic` dialect reads.
  ...(
    [
      ["sambanova", "SAMBANOVA_API_KEY", "Meta-Llama-3.3-70B-Instruct", "llama-3.3-70b", []],
      ["fireworks", "FIREWORKS_API_KEY", "accounts/fireworks/models/llama-v3p3-70b-instruct", "llama-3.3-70b", []],
      [
        "hyperbolic",
        "HYPERBOLIC_API_KEY",
        "meta-llama/Llama-3.3-70B-Instruct",
        "llama-3.3-70b",
        [{ unit: "requests", window: "minute", limit: 60 }],
      ],
      ["scaleway", "SCW_SECRET_KEY", "llama-3.3-70b-instruct", "llama-3.3-70b", []],
      ["chutes", "CHUTES_API_KEY", "deepseek-ai/DeepSeek-V3-0324", "deepseek-v3-0324", []],
    ] as const
  ).map(
    ([preset, variable, upstreamId, model, configured]): PresetCase => ({
      preset,
      env: { [variable]: `${preset}-test` },
      key: `${preset}-test`,
      listModels: (mock) => models(mock, [{ id: upstreamId }]),
      listed: [model],
      model,
      upstreamId,
      configured,
      successHeaders: OPENAI_STYLE_SUCCESS,
      learned: [
        { unit: "requests", window: "minute", limit: 5000 },
        { unit: "tokens", window: "minute", limit: 160000 },
      ],
      refusals: [
        {
          name: "429 with retry-after",
          step: rateLimited({ retryAfter: "7" }),
          cause: "rate_limited",
          remainingMs: 7_000,
        },
      ],
    }),
  ),
];

interface BudgetRow {
  readonly scope: string;
  readonly windows: readonly (Window & { source: string; resets_at: string | null })[];
}

async function budgetsOf(gateway: Awaited<ReturnType<typeof useGateway>>, key: string): Promise<BudgetRow[]> {
  const row = (await statsOf(gateway)).get(key) as unknown as { budgets: BudgetRow[] } | undefined;
  assert.ok(row !== undefined, `no /stats row for ${key}`);
  return row.budgets;
}

function windowsBySource(budgets: readonly BudgetRow[], source: string): Window[] {
  return budgets
    .flatMap((budget) => budget.windows)
    .filter((window) => window.source === source)
    .map(({ unit, window, limit }) => ({ unit, window, limit }));
}

async function startPreset(t: TestContext, presetCase: PresetCase) {
  const mock = await useMock(t);
  const listing = presetCase.listModels?.(mock);
  const extra = presetCase.entry === undefined ? "" : `\n    ${presetCase.entry(mock)}`;
  const clock = new ManualClock(NOW_MS);
  const gateway = await useGateway(
    t,
    `providers:
  - preset: ${presetCase.preset}
    base_url: ${mock.baseUrl}
    retries: 0${extra}
routing:
  max_wait_for_better_ms: 0
`,
    { env: presetCase.env, clock },
  );
  return { mock, gateway, listing, clock };
}

describe("provider presets against a mock of each provider", () => {
  for (const presetCase of CASES) {
    describe(presetCase.preset, () => {
      test("discovery quirks, key variable, known budgets and learned rate-limit headers", async (t) => {
        const { mock, gateway, listing } = await startPreset(t, presetCase);
        const listRequests = mock.requests.filter((recorded) => recorded.method === "GET");
        if (listing === undefined) {
          assert.equal(listRequests.length, 0, "a preset with configured models does not call GET /models");
        } else {
          assert.equal(listRequests.length, 1);
          const [list] = listRequests;
          assert.equal(`${list?.method} ${list?.path}`, listing.route);
          if (listing.query !== undefined) assert.equal(list?.url.split("?")[1], listing.query);
          assert.equal(list?.headers.authorization, `Bearer ${presetCase.key}`);
        }

        const listed = ((await send(gateway, "GET", "/v1/models")).json as { data: { id: string }[] }).data.map(
          (entry) => entry.id,
        );
        for (const name of presetCase.listed) assert.ok(listed.includes(name), `${name} not in ${listed.join(", ")}`);
        for (const name of presetCase.unlisted ?? []) assert.ok(!listed.includes(name), `${name} must not be listed`);

        const deploymentKey = `${presetCase.preset}/${presetCase.model}`;
        assert.deepEqual(windowsBySource(await budgetsOf(gateway, deploymentKey), "config"), presetCase.configured);

        mock.enqueue(CHAT_ROUTE, {
          kind: "json",
          body: chatCompletion("hello", presetCase.upstreamId),
          headers: { ...presetCase.successHeaders },
        });
        const answer = await postChat(gateway, { model: presetCase.model });
        assert.equal(answer.status, 200, answer.text);
        const chat = mock.requests.find((recorded) => recorded.method === "POST");
        assert.equal(modelOf(chat), presetCase.upstreamId);
        assert.equal(chat?.headers.authorization, `Bearer ${presetCase.key}`);
        assert.deepEqual(
          windowsBySource(await budgetsOf(gateway, deploymentKey), "provider"),
          presetCase.learned ?? [],
        );
      });

      for (const refusal of presetCase.refusals) {
        const options = refusal.todo === undefined ? {} : { todo: refusal.todo };
        test(`${refusal.name} -> ${refusal.cause}`, options, async (t) => {
          const { mock, gateway } = await startPreset(t, presetCase);
          mock.enqueue(CHAT_ROUTE, refusal.step);
          const answer = await postChat(gateway, { model: presetCase.model });
          assert.notEqual(answer.status, 200, "the only candidate refused");
          const row = (await statsOf(gateway)).get(`${presetCase.preset}/${presetCase.model}`);
          assert.equal(row?.cooldown?.cause, refusal.cause, JSON.stringify(row?.cooldown));
          if (refusal.remainingMs !== undefined) assert.equal(row?.cooldown?.remaining_ms, refusal.remainingMs);
        });
      }
    });
  }

  test("Gemini's daily budget resets at midnight Pacific time, not UTC", async (t) => {
    const geminiCase = CASES.find((presetCase) => presetCase.preset === "gemini");
    assert.ok(geminiCase !== undefined);
    const { gateway } = await startPreset(t, geminiCase);
    const [daily] = (await budgetsOf(gateway, "gemini/gemini-2.5-flash")).flatMap((budget) => budget.windows);
    // NOW_MS is 2026-01-01T12:00Z = 04:00 PST; the next Pacific midnight is 08:00Z the next day.
    assert.equal(daily?.resets_at, "2026-01-02T08:00:00.000Z");
  });
});
