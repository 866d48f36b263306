// Each kind of "not now" end to end, with the providers' own 429/402 answers (src/limits/provider-fixtures.ts):
// short windows cool down and come back, daily quotas park until the day window ends, out-of-credits marks the
// whole provider failed, capacity refusals skip the candidate briefly. /stats shows the cause and whether the
// duration came from the provider or was guessed; a manual clock makes every duration exact.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import {
  cerebras,
  cloudflare,
  githubModels,
  groq,
  mistral,
  NEXT_UTC_MIDNIGHT_MS,
  NOW_MS,
  openAi,
  openRouter,
  type ResponseFixture,
  sambaNova,
} from "../fixtures/provider-fixtures.ts";
import { errorOf } from "../helpers/e2e.ts";
import { assertServedBy, type Scene, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

/** The fixture as the mock's answer: its status, headers and body bytes. */
function replay(fixture: ResponseFixture): MockStep {
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [name, value] of Object.entries(fixture.headers)) if (typeof value === "string") headers[name] = value;
  return { kind: "text", status: fixture.status, headers, body: fixture.bodyText ?? "" };
}

/** alpha answers the fixture, beta serves; returns alpha's /stats cooldown. */
async function refuseOnce(scene: Scene, fixture: ResponseFixture) {
  scene.alpha.enqueue(CHAT_ROUTE, replay(fixture));
  assertServedBy(await scene.chat(), "beta", 2);
  return (await scene.stats("alpha")).cooldown;
}

/** alpha gets no request until `untilMs`, and serves again from that instant. */
async function assertAwayUntil(scene: Scene, clock: ManualClock, untilMs: number): Promise<void> {
  const alphaBefore = scene.counts().alpha;
  clock.set(untilMs - 1);
  assertServedBy(await scene.chat(), "beta", 1);
  assert.equal(scene.counts().alpha, alphaBefore, "the cooling candidate got an upstream request");
  clock.set(untilMs);
  assertServedBy(await scene.chat(), "alpha");
}

describe("short: a per-minute window cools down, then the candidate is back", () => {
  test("OpenAI tokens-per-minute 429: retry-after-ms is used exactly", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    const cooldown = await refuseOnce(scene, openAi.tokensPerMinute429);
    assert.deepEqual(
      { ...cooldown, reason: "" },
      { remaining_ms: 1_534, cause: "rate_limited", source: "provider", reason: "" },
    );
    await assertAwayUntil(scene, clock, NOW_MS + 1_534);
  });

  test("Mistral 429 without any retry hint: the configured backoff, marked guessed", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, {
      clock,
      alpha: { rate_limit_dialect: "mistral" },
      config: { cooldowns: { rate_limit_base_ms: 2_000 } },
    });
    const cooldown = await refuseOnce(scene, mistral.rateLimited429);
    assert.deepEqual(
      { ...cooldown, reason: "" },
      { remaining_ms: 2_000, cause: "rate_limited", source: "guessed", reason: "" },
    );
    await assertAwayUntil(scene, clock, NOW_MS + 2_000);
  });
});

describe("daily: parked until the day window ends", () => {
  test("Cloudflare's daily allocation (no hint): until the provider's day_reset, guessed", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock, alpha: { day_reset: "00:00 America/Los_Angeles" } });
    const cooldown = await refuseOnce(scene, cloudflare.dailyAllocation429);
    // NOW_MS is 04:00 in Los Angeles; its next midnight is 08:00 UTC on the 2nd.
    const resetMs = Date.UTC(2026, 0, 2, 8);
    assert.equal(cooldown?.cause, "daily_quota");
    assert.equal(cooldown?.source, "guessed");
    assert.equal(cooldown?.remaining_ms, resetMs - NOW_MS);
    assert.match(cooldown?.reason ?? "", /daily free allocation/i);

    const health = await scene.health();
    assert.deepEqual(health.providers.up, ["beta"]);
    assert.equal(health.providers.cooling[0]?.name, "alpha");
    assert.equal(health.providers.cooling[0]?.until, new Date(resetMs).toISOString());
    assert.equal(health.status, "ok", "one provider up is enough");
    await assertAwayUntil(scene, clock, resetMs);
  });

  test("OpenRouter free-models-per-day: until the reset it relays (UTC midnight), from the provider", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: "openrouter" } });
    const cooldown = await refuseOnce(scene, openRouter.freeModelsPerDay429);
    assert.deepEqual(
      { ...cooldown, reason: "" },
      { remaining_ms: NEXT_UTC_MIDNIGHT_MS - NOW_MS, cause: "daily_quota", source: "provider", reason: "" },
    );
    await assertAwayUntil(scene, clock, NEXT_UTC_MIDNIGHT_MS);
  });
  test("SambaNova's 'Violated duration_s: 86400' (no hint): until the day_reset, not retried every minute", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    const cooldown = await refuseOnce(scene, sambaNova.tokensPerDay429);
    assert.deepEqual(
      { ...cooldown, reason: "" },
      { remaining_ms: NEXT_UTC_MIDNIGHT_MS - NOW_MS, cause: "daily_quota", source: "guessed", reason: "" },
    );
    await assertAwayUntil(scene, clock, NEXT_UTC_MIDNIGHT_MS);
  });
});

describe("GitHub Models: the limit named in x-ratelimit-type", () => {
  test("UserByModelByDay with only its retry-after: parked as a daily quota for that wait (was rate_limited)", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    const cooldown = await refuseOnce(scene, githubModels.perDayHeaders429);
    assert.deepEqual(
      { ...cooldown, reason: "" },
      { remaining_ms: 24_367_000, cause: "daily_quota", source: "provider", reason: "" },
    );
    assert.match(cooldown?.reason ?? "", /UserByModelByDay/);
    await assertAwayUntil(scene, clock, NOW_MS + 24_367_000);
  });

  test("UserConcurrentRequests: skipped while the stated 2 are in flight, however long, never paced per second", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    const slow: MockStep = { kind: "json", body: chatCompletion("slow", "alpha-model"), delayMs: 700 };
    scene.alpha.enqueue(CHAT_ROUTE, slow, slow, replay(githubModels.concurrent429));
    const untilAlphaHas = async (count: number): Promise<void> => {
      while (scene.counts().alpha < count) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    // Two requests in flight at alpha, then a third refused for concurrency and served by beta.
    const first = scene.chat();
    await untilAlphaHas(1);
    const second = scene.chat();
    await untilAlphaHas(2);
    assertServedBy(await scene.chat(), "beta", 2);

    const row = (await scene.stats("alpha")) as Awaited<ReturnType<Scene["stats"]>> & {
      concurrency: { in_flight: number; limit: number | null; learned_from?: string } | null;
    };
    assert.deepEqual(row.concurrency, { in_flight: 2, limit: 2, learned_from: "429 stating 2 in flight" });
    const learnedWindows = row.budgets.flatMap((budget) => budget.windows).filter((w) => w.source === "learned");
    assert.deepEqual(learnedWindows, [], "a concurrency refusal taught a rate");
    // The wait it asked for ("0 seconds") is over and a second has passed: with both still in flight, the next
    // request skips alpha without an upstream request (a learned per-second limit let it through and met a 429).
    clock.advance(1_500);
    assertServedBy(await scene.chat(), "beta", 1);
    assert.equal(scene.counts().alpha, 3);
    // Once they end, alpha serves again.
    assertServedBy(await first, "alpha");
    assertServedBy(await second, "alpha");
    assertServedBy(await scene.chat(), "alpha");
  });
});

describe("credits: the whole provider is failed until invalid_key_ms", () => {
  for (const [name, fixture] of [
    // Not its 402 "requires more credits, or fewer max_tokens ... can only afford N": that request's size alone
    // (openrouter-credits.test.ts).
    ["OpenRouter 402 'Insufficient credits'", openRouter.insufficientCredits402],
    ["OpenAI insufficient_quota 429", openAi.insufficientQuota],
  ] as const) {
    test(name, async (t) => {
      const clock = new ManualClock(NOW_MS);
      const scene = await startScene(t, { clock, config: { cooldowns: { invalid_key_ms: 600_000 } } });
      const cooldown = await refuseOnce(scene, fixture);
      assert.equal(cooldown?.cause, "credits_exhausted");
      assert.equal(cooldown?.remaining_ms, 600_000);

      const health = await scene.health();
      assert.deepEqual(
        health.providers.failed.map((failed) => failed.name),
        ["alpha"],
      );
      assert.ok((health.providers.failed[0]?.reason ?? "").length > 0);
      assert.deepEqual(health.providers.up, ["beta"]);
      await assertAwayUntil(scene, clock, NOW_MS + 600_000);
      assert.deepEqual((await scene.health()).providers.failed, []);
    });
  }
});

describe("capacity: the provider is busy, not our key; skipped briefly", () => {
  for (const [name, fixture] of [
    ["Cerebras queue_exceeded", cerebras.queueExceeded429],
    ["Mistral service tier capacity (3505)", mistral.capacityExceeded429],
  ] as const) {
    test(name, async (t) => {
      const clock = new ManualClock(NOW_MS);
      const scene = await startScene(t, { clock });
      const cooldown = await refuseOnce(scene, fixture);
      assert.deepEqual(
        { ...cooldown, reason: "" },
        { remaining_ms: 1_000, cause: "capacity", source: "guessed", reason: "" },
      );
      assert.deepEqual((await scene.health()).providers.failed, [], "a busy provider is not failed");
      await assertAwayUntil(scene, clock, NOW_MS + 1_000);
    });
  }
});

describe("overlapping refusals", () => {
  test("a short 429 arriving after a daily park (both requests were in flight) does not end the park", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    const daily = JSON.parse(cloudflare.dailyAllocation429.bodyText) as unknown;
    scene.alpha.enqueue(
      CHAT_ROUTE,
      { kind: "json", status: 429, body: daily, delayMs: 50 },
      {
        kind: "json",
        status: 429,
        body: { error: { message: "slow down" } },
        headers: { "retry-after": "2" },
        delayMs: 300,
      },
    );
    const [first, second] = await Promise.all([scene.chat(), scene.chat()]);
    assertServedBy(first, "beta", 2);
    assertServedBy(second, "beta", 2);
    const cooldown = (await scene.stats("alpha")).cooldown;
    assert.equal(cooldown?.cause, "daily_quota");
    assert.equal(cooldown?.remaining_ms, NEXT_UTC_MIDNIGHT_MS - NOW_MS);
    clock.advance(2_000);
    assertServedBy(await scene.chat(), "beta", 1);
    assert.equal(scene.counts().alpha, 2);
  });
});

describe("too large for the window: the request, not the key, is refused", () => {
  // Groq answers a request larger than the model's whole tokens-per-minute window with 413 and its rate-limit code
  // (console.groq.com/docs/errors lists 413; the body is as recorded in public issues). Before, the gateway took the
  // 413 for a malformed request and handed it to the client without trying the other candidates.
  test("Groq's 413 'Request too large ... (TPM): Limit 6000, Requested 14810' fails over and learns the TPM limit", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: "groq" } });
    scene.alpha.enqueue(CHAT_ROUTE, replay(groq.requestTooLarge413));
    assertServedBy(await scene.chat({ max_tokens: 8_000 }), "beta", 2);

    const row = await scene.stats("alpha");
    // Waiting fixes nothing and smaller requests still fit: no cooldown, in spite of the 413's retry-after.
    assert.equal(row.cooldown, null);
    assert.equal(windowOf(row, "deployment:alpha/m", "tokens", "minute", "learned").limit, 6_000);

    // The next request that could never fit that window skips alpha without an upstream request...
    const alphaBefore = scene.counts().alpha;
    assertServedBy(await scene.chat({ max_tokens: 8_000 }), "beta", 1);
    assert.equal(scene.counts().alpha, alphaBefore, "a request larger than the learned window was sent again");
    // ...and a small one is served by alpha at once.
    assertServedBy(await scene.chat({ max_tokens: 100 }), "alpha");
  });

  test("every candidate refuses it so: 413 request_too_large at once, no retry-after (a 429 invited a retry)", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: "groq" }, beta: false });
    scene.alpha.enqueue(CHAT_ROUTE, replay(groq.requestTooLarge413));
    const refused = await scene.chat({ max_tokens: 8_000 });
    assert.equal(refused.status, 413, refused.text);
    assert.equal(refused.headers["retry-after"], undefined);
    const error = errorOf(refused);
    assert.equal(error.code, "request_too_large");
    assert.match(error.message, /\(alpha\/m: request larger than the whole window \(limit 6000, requested 14810\)\)\./);
    // The retry gets the same answer without an upstream request (the learned window).
    const alphaBefore = scene.counts().alpha;
    assert.equal((await scene.chat({ max_tokens: 8_000 })).status, 413);
    assert.equal(scene.counts().alpha, alphaBefore);
  });
});
