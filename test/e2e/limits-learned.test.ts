// Learned limits end to end, one test per header dialect: the mock answers a success with the provider's own
// rate-limit headers (src/limits/provider-fixtures.ts) and the provider's `rate_limit_dialect` set. A success
// that says "0 left" parks the candidate until the reset it names, with no upstream request in between; a
// success with room left changes nothing. A manual clock at the fixtures' NOW_MS makes every reset exact.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import type { HeaderMap } from "../../src/limits/header-map.ts";
import { cerebras, groq, mistral, NOW_MS, openAi, openRouter, together } from "../fixtures/provider-fixtures.ts";
import { assertServedBy, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

interface DialectCase {
  readonly dialect: string;
  /** The fixture's success headers. */
  readonly headers: HeaderMap;
  /** The header set to "0" to say the window is used up. */
  readonly exhaust: string;
  /** The window that header describes in this dialect. */
  readonly unit: "requests" | "tokens";
  readonly window: "second" | "minute" | "day";
  /** How long the provider says the window stays empty, in ms. */
  readonly resetInMs: number;
  /** Whether the dialect names a reset time (Mistral sends none: the gateway assumes the whole window). */
  readonly hasReset: boolean;
}

const CASES: readonly DialectCase[] = [
  {
    dialect: "openai",
    headers: openAi.success.headers,
    exhaust: "x-ratelimit-remaining-tokens",
    unit: "tokens",
    window: "minute",
    resetInMs: 9, // "9ms"
    hasReset: true,
  },
  {
    dialect: "groq",
    headers: groq.success.headers,
    exhaust: "x-ratelimit-remaining-requests",
    unit: "requests",
    window: "day", // Groq's -requests headers are per day
    resetInMs: 179_560, // "2m59.56s"
    hasReset: true,
  },
  {
    dialect: "cerebras",
    headers: cerebras.success.headers,
    exhaust: "x-ratelimit-remaining-requests-day",
    unit: "requests",
    window: "day",
    resetInMs: 33_011_383, // "33011.382867097855" seconds
    hasReset: true,
  },
  {
    dialect: "openrouter",
    headers: openRouter.success.headers,
    exhaust: "x-ratelimit-remaining",
    unit: "requests",
    window: "minute",
    resetInMs: 42_000, // an epoch-ms instant 42 s after NOW_MS
    hasReset: true,
  },
  {
    dialect: "mistral",
    headers: mistral.success.headers,
    exhaust: "x-ratelimit-remaining-req-minute",
    unit: "requests",
    window: "minute",
    resetInMs: 60_000,
    hasReset: false,
  },
  {
    dialect: "together",
    headers: together.success.headers,
    exhaust: "x-ratelimit-remaining",
    unit: "requests",
    window: "second",
    resetInMs: 1_000, // "1" second
    hasReset: true,
  },
];

function successWith(headers: HeaderMap) {
  return {
    kind: "json" as const,
    body: chatCompletion("hello", "alpha-model"),
    headers: Object.fromEntries(
      Object.entries(headers).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
    ),
  };
}

describe("a success reporting 0 left parks the candidate until the provider's reset", () => {
  for (const dialectCase of CASES) {
    test(dialectCase.dialect, async (t) => {
      const clock = new ManualClock(NOW_MS);
      const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: dialectCase.dialect } });
      scene.alpha.enqueue(CHAT_ROUTE, successWith({ ...dialectCase.headers, [dialectCase.exhaust]: "0" }));

      const last = await scene.chat();
      assertServedBy(last, "alpha");
      assert.match(last.text, /hello/, "the success itself is returned");

      const row = await scene.stats("alpha");
      const learned = windowOf(row, "deployment:alpha/m", dialectCase.unit, dialectCase.window, "provider");
      assert.equal(learned.remaining, 0);
      assert.equal(learned.resets_at, new Date(NOW_MS + dialectCase.resetInMs).toISOString());
      if (dialectCase.hasReset) {
        assert.deepEqual(
          { ...row.cooldown, reason: undefined },
          { remaining_ms: dialectCase.resetInMs, cause: "budget_exhausted", source: "provider", reason: undefined },
        );
        assert.match(row.cooldown?.reason ?? "", new RegExp(`0 ${dialectCase.unit} left this ${dialectCase.window}`));
      } else {
        // No reset time to park until: the learned budget alone keeps alpha away for the whole window.
        assert.equal(row.cooldown, null);
      }

      assertServedBy(await scene.chat(), "beta", 1);
      clock.advance(dialectCase.resetInMs - 1);
      assertServedBy(await scene.chat(), "beta", 1);
      assert.equal(scene.counts().alpha, 1, "a parked candidate got an upstream request");

      clock.advance(1);
      assertServedBy(await scene.chat(), "alpha");
      assert.deepEqual(scene.counts(), { alpha: 2, beta: 2 });
    });
  }
});

describe("a success with room left changes nothing but is remembered", () => {
  for (const dialectCase of CASES) {
    test(dialectCase.dialect, async (t) => {
      const clock = new ManualClock(NOW_MS);
      const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: dialectCase.dialect } });
      scene.alpha.enqueue(CHAT_ROUTE, successWith(dialectCase.headers));
      assertServedBy(await scene.chat(), "alpha");
      const row = await scene.stats("alpha");
      assert.equal(row.cooldown, null);
      const learned = windowOf(row, "deployment:alpha/m", dialectCase.unit, dialectCase.window, "provider");
      assert.ok(learned.remaining > 0);
      assertServedBy(await scene.chat(), "alpha");
      assert.deepEqual(scene.counts(), { alpha: 2, beta: 0 });
    });
  }

  test("without rate_limit_dialect the generic (OpenAI) names are read", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock });
    scene.alpha.enqueue(
      CHAT_ROUTE,
      successWith({
        "x-ratelimit-limit-requests": "30",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
      }),
    );
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "beta");
    assert.equal((await scene.stats("alpha")).cooldown?.remaining_ms, 20_000);
  });

  test("the provider's count is decremented by what the gateway sends after it", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scene = await startScene(t, { clock, alpha: { rate_limit_dialect: "openrouter" } });
    scene.alpha.enqueue(CHAT_ROUTE, successWith({ ...openRouter.success.headers, "x-ratelimit-remaining": "2" }));
    // The default answers carry no rate-limit headers: only our own count moves the learned window.
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "beta");
    assert.equal(scene.counts().alpha, 3);
    assert.equal(
      windowOf(await scene.stats("alpha"), "deployment:alpha/m", "requests", "minute", "provider").remaining,
      0,
    );
  });

  test("a report arriving after later requests were sent still counts them (no over-send, no upstream 429)", async (t) => {
    // Real time: the requests overlap. Alpha accepts 4 in its window and says how many are left as of each one it
    // processed; each answer takes 300 ms, and a new request comes every 60 ms.
    const scene = await startScene(t, { alpha: { rate_limit_dialect: "openai" } });
    let remaining = 4;
    let refusals = 0;
    scene.alpha.setDefault(CHAT_ROUTE, () => {
      const headers = { "x-ratelimit-limit-requests": "4", "x-ratelimit-reset-requests": "50s" };
      if (remaining <= 0) {
        refusals++;
        return { kind: "json", status: 429, headers: { ...headers, "x-ratelimit-remaining-requests": "0" }, body: {} };
      }
      remaining--;
      return {
        kind: "json",
        delayMs: 300,
        headers: { ...headers, "x-ratelimit-remaining-requests": String(remaining) },
        body: chatCompletion("ok", "alpha-model"),
      };
    });
    // The first answer teaches "3 left"; then 8 requests overlap.
    assertServedBy(await scene.chat(), "alpha");
    const answers: Promise<unknown>[] = [];
    for (let index = 0; index < 8; index++) {
      answers.push(scene.chat());
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await Promise.all(answers);
    assert.equal(refusals, 0, "the gateway sent more than the provider said was left");
    assert.deepEqual(scene.counts(), { alpha: 4, beta: 5 });
  });
});
