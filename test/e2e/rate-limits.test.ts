// Rate limits end to end: every way an upstream says "not now" becomes an exact cooldown (a manual clock makes
// them exact), the cooled candidate gets no traffic until it ends, a much better candidate is waited for when
// its wait is short, and a client whose every candidate is cooling gets a 429 with the soonest retry-after.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { CHAT_ROUTE, chatRequests, errorOf, postChat, rowOf, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { gate } from "../helpers/gates.ts";
import { chatCompletion, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1);

/** alpha (priority 10) is preferred over beta (priority 1) for `chat-model`. */
async function twoProviders(
  t: TestContext,
  options: { clock?: ManualClock; routing?: string; cooldowns?: string } = {},
) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-secret-alpha-123
    retries: 0
    models:
      chat-model: { id: alpha-chat-v1, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-secret-beta-456
    retries: 0
    models:
      chat-model: { id: beta-chat-v1, priority: 1 }
routing:
${options.routing ?? "  max_wait_for_better_ms: 0"}
${options.cooldowns ?? ""}`,
    options.clock === undefined ? {} : { clock: options.clock },
  );
  return { alpha, beta, gateway };
}

interface HintCase {
  readonly name: string;
  readonly step: MockStep;
  readonly cooldownMs: number;
}

const HINT_CASES: readonly HintCase[] = [
  { name: "retry-after in whole seconds", step: rateLimited({ retryAfter: "30" }), cooldownMs: 30_000 },
  { name: "fractional retry-after", step: rateLimited({ retryAfter: "1.5" }), cooldownMs: 1_500 },
  {
    name: "retry-after as an HTTP date",
    step: rateLimited({ retryAfter: new Date(START_MS + 120_000).toUTCString() }),
    cooldownMs: 120_000,
  },
  {
    name: "retry-after-ms (more precise than the retry-after next to it)",
    step: rateLimited({ retryAfter: "3", headers: { "retry-after-ms": "2500" } }),
    cooldownMs: 2_500,
  },
  {
    name: "x-ratelimit-reset-requests: 1m30s on the exhausted window",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit-requests": "30",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5800",
        "x-ratelimit-reset-tokens": "2s",
      },
    }),
    cooldownMs: 90_000,
  },
  {
    name: 'the body\'s "Please try again in 9m38.016s"',
    step: rateLimited({
      body: {
        error: {
          message:
            "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_1` service tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, Requested 1. Please try again in 9m38.016s.",
          type: "requests",
          code: "rate_limit_exceeded",
        },
      },
    }),
    cooldownMs: 578_016,
  },
  {
    name: "Gemini's RetryInfo in a list-wrapped error",
    step: {
      kind: "json",
      status: 429,
      body: [
        {
          error: {
            code: 429,
            message: "Resource has been exhausted.",
            status: "RESOURCE_EXHAUSTED",
            details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "38s" }],
          },
        },
      ],
    },
    cooldownMs: 38_000,
  },
];

describe("a 429's retry hint becomes the candidate's cooldown", () => {
  for (const hintCase of HINT_CASES) {
    test(hintCase.name, async (t) => {
      const clock = new ManualClock(START_MS);
      const { alpha, beta, gateway } = await twoProviders(t, { clock });
      alpha.enqueue(CHAT_ROUTE, hintCase.step);

      const first = await postChat(gateway, { model: "chat-model" });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers["x-gateway-provider"], "beta");
      assert.equal(first.headers["x-gateway-attempts"], "2");

      const cooldown = rowOf(await statsOf(gateway), "alpha/chat-model").cooldown;
      assert.equal(cooldown?.remaining_ms, hintCase.cooldownMs);
      assert.equal(cooldown?.source, "provider");

      // During the cooldown alpha gets no traffic at all, up to the last millisecond of it.
      clock.advance(hintCase.cooldownMs - 1);
      const during = await postChat(gateway, { model: "chat-model" });
      assert.equal(during.headers["x-gateway-provider"], "beta");
      assert.equal(during.headers["x-gateway-attempts"], "1");
      assert.equal(chatRequests(alpha).length, 1);

      clock.advance(1);
      const after = await postChat(gateway, { model: "chat-model" });
      assert.equal(after.status, 200, after.text);
      assert.equal(after.headers["x-gateway-provider"], "alpha");
      assert.equal(chatRequests(alpha).length, 2);
      assert.equal(chatRequests(beta).length, 2);
    });
  }

  test("without any hint the cooldown is the configured base, doubling on consecutive 429s", async (t) => {
    const clock = new ManualClock(START_MS);
    const { alpha, gateway } = await twoProviders(t, { clock, cooldowns: "cooldowns:\n  rate_limit_base_ms: 4000" });
    alpha.enqueue(CHAT_ROUTE, rateLimited(), rateLimited());

    await postChat(gateway, { model: "chat-model" });
    let cooldown = rowOf(await statsOf(gateway), "alpha/chat-model").cooldown;
    assert.deepEqual([cooldown?.remaining_ms, cooldown?.source], [4_000, "guessed"]);

    clock.advance(4_000);
    const second = await postChat(gateway, { model: "chat-model" });
    assert.equal(second.headers["x-gateway-provider"], "beta");
    cooldown = rowOf(await statsOf(gateway), "alpha/chat-model").cooldown;
    assert.equal(cooldown?.remaining_ms, 8_000);
    assert.equal(chatRequests(alpha).length, 2);
  });

  test("a slow success sent before the 429s began does not reset their backoff (two overlapping requests)", async (t) => {
    const clock = new ManualClock(START_MS);
    const { alpha, gateway } = await twoProviders(t, { clock, cooldowns: "cooldowns:\n  rate_limit_base_ms: 4000" });
    const slowAnswer = gate();
    alpha.enqueue(
      CHAT_ROUTE,
      {
        kind: "handler",
        handle: async (_request, response) => {
          await slowAnswer.promise;
          response.writeHead(200, { "content-type": "application/json" });
          response.end(JSON.stringify(chatCompletion("slow but fine", "alpha-chat-v1")));
        },
      },
      rateLimited(),
      rateLimited(),
      rateLimited(),
    );
    // Request A is sent at START and held by alpha; requests sent each time alpha's cooldown ends get 429s.
    const slow = postChat(gateway, { model: "chat-model" });
    await alpha.waitForRequests(1);
    clock.advance(100);
    await postChat(gateway, { model: "chat-model" });
    assert.equal(rowOf(await statsOf(gateway), "alpha/chat-model").cooldown?.remaining_ms, 4_000);
    clock.advance(4_000);
    await postChat(gateway, { model: "chat-model" });
    assert.equal(rowOf(await statsOf(gateway), "alpha/chat-model").cooldown?.remaining_ms, 8_000);
    // A's answer comes back in the middle of the streak: it says how alpha was before the 429s.
    slowAnswer.open();
    assert.equal((await slow).headers["x-gateway-provider"], "alpha");
    // Past the minute whose requests the 429s taught alpha's limits from (learned windows, not cooldowns): the next
    // request is sent to alpha again, and its 429 is the third in a row.
    clock.set(START_MS + 65_000);
    assert.equal((await postChat(gateway, { model: "chat-model" })).headers["x-gateway-provider"], "beta");
    const cooldown = rowOf(await statsOf(gateway), "alpha/chat-model").cooldown;
    assert.equal(cooldown?.remaining_ms, 16_000, "the third 429 in a row doubles again, not back to 4 s");
    assert.equal(chatRequests(alpha).length, 4);
  });
});

describe("successes that say the window is used up", () => {
  test("x-ratelimit-remaining-requests: 0 with a reset parks the candidate until the reset", async (t) => {
    const clock = new ManualClock(START_MS);
    const { alpha, beta, gateway } = await twoProviders(t, { clock });
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: {
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: "alpha-chat-v1",
        choices: [{ index: 0, message: { role: "assistant", content: "last one" }, finish_reason: "stop" }],
      },
      headers: {
        "x-ratelimit-limit-requests": "30",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
      },
    });
    const first = await postChat(gateway, { model: "chat-model" });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "alpha", "the answer itself is a success and is returned");

    const parked = await postChat(gateway, { model: "chat-model" });
    assert.equal(parked.headers["x-gateway-provider"], "beta");
    assert.equal(parked.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(alpha).length, 1);

    clock.advance(20_000);
    const back = await postChat(gateway, { model: "chat-model" });
    assert.equal(back.headers["x-gateway-provider"], "alpha");
    assert.equal(chatRequests(beta).length, 1);
  });
});

describe("waiting for a better candidate", () => {
  test("a short cooldown on a much better candidate is waited out instead of falling back", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t, { routing: "  max_wait_for_better_ms: 1500" });
    alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "400" } }));
    const first = await postChat(gateway, { model: "chat-model" });
    assert.equal(first.headers["x-gateway-provider"], "beta");

    const second = await postChat(gateway, { model: "chat-model" });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.headers["x-gateway-provider"], "alpha");
    assert.equal(second.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(beta).length, 1, "the worse candidate must not be used while waiting pays off");
    const [rateLimitedAt, servedAt] = chatRequests(alpha).map((recorded) => recorded.receivedAtMs);
    // Only a lower bound: the gateway may be late on a busy machine, never early.
    assert.ok((servedAt ?? 0) - (rateLimitedAt ?? 0) >= 350, "alpha was called again before its cooldown ended");
  });

  test("a cooldown longer than max_wait_for_better_ms is not waited for", async (t) => {
    const { alpha, gateway } = await twoProviders(t, { routing: "  max_wait_for_better_ms: 100" });
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "5" }));
    await postChat(gateway, { model: "chat-model" });
    const second = await postChat(gateway, { model: "chat-model" });
    assert.equal(second.headers["x-gateway-provider"], "beta");
    assert.equal(chatRequests(alpha).length, 1);
  });

  test("a fallback scoring close to the cooling candidate is used at once", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-a
    models:
      chat-model: { priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-b
    models:
      chat-model: { priority: 9.5 }
routing:
  max_wait_for_better_ms: 30000
  wait_score_ratio: 0.8
`,
    );
    // Alpha is back within the wait allowed: a gateway that waited for it takes 20 s, far above the bound below
    // (which leaves a loaded machine room).
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "20" }));
    await postChat(gateway, { model: "chat-model" });
    const startedAtMs = Date.now();
    const second = await postChat(gateway, { model: "chat-model" });
    assert.equal(second.headers["x-gateway-provider"], "beta");
    assert.ok(Date.now() - startedAtMs < 10_000, "the gateway waited although the fallback is nearly as good");
    assert.equal(chatRequests(alpha).length, 1);
  });
});

describe("every candidate rate-limited", () => {
  test("429 with retry-after of the soonest candidate, attempts listed, and no upstream call while all cool", async (t) => {
    const clock = new ManualClock(START_MS);
    const { alpha, beta, gateway } = await twoProviders(t, { clock });
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    beta.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "7" }));

    const first = await postChat(gateway, { model: "chat-model" });
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers["retry-after"], "7");
    const error = errorOf(first);
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
    assert.deepEqual(
      error.attempts?.map((attempt) => [attempt.provider, attempt.model, attempt.status]),
      [
        ["alpha", "alpha-chat-v1", 429],
        ["beta", "beta-chat-v1", 429],
      ],
    );

    clock.advance(2_000);
    const cooling = await postChat(gateway, { model: "chat-model" });
    assert.equal(cooling.status, 429, cooling.text);
    assert.equal(cooling.headers["retry-after"], "5");
    assert.equal(chatRequests(alpha).length + chatRequests(beta).length, 2, "cooling candidates got traffic");

    clock.advance(5_000);
    const recovered = await postChat(gateway, { model: "chat-model" });
    assert.equal(recovered.status, 200, recovered.text);
    assert.equal(recovered.headers["x-gateway-provider"], "beta");
  });

  test("/stats shows the cooldown's cause and reason", async (t) => {
    const clock = new ManualClock(START_MS);
    const { alpha, gateway } = await twoProviders(t, { clock });
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "12" }));
    await postChat(gateway, { model: "chat-model" });
    const stats = await statsOf(gateway);
    const alphaRow = rowOf(stats, "alpha/chat-model");
    assert.equal(alphaRow.cooldown?.cause, "rate_limited");
    assert.equal(alphaRow.cooldown?.remaining_ms, 12_000);
    assert.ok((alphaRow.cooldown?.reason ?? "").length > 0);
    assert.equal(alphaRow.failures, 1);
    assert.equal(rowOf(stats, "beta/chat-model").cooldown, null);
  });
});
