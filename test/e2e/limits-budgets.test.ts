// Budgets end to end: a candidate at its rpm/rpd/tpm/concurrency limit is skipped before any upstream request
// (the mock's request count proves it) and the next candidate serves; when every candidate is over budget the
// client gets a 429 whose retry-after is when the first candidate is free of every budget it needs (a request
// larger than a whole budget is a 413 at once); daily budgets come back at the provider's reset time; /stats and
// /health show every window. A manual clock makes every instant exact.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { errorOf, send } from "../helpers/e2e.ts";
import { gate, within } from "../helpers/gates.ts";
import { assertServedBy, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
const CHAT_ROUTE = "POST /v1/chat/completions";

describe("a candidate over its budget is skipped without an upstream request", () => {
  test("rpm: the third request in a minute goes to the fallback; a minute later alpha serves again", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alphaModel: { limits: { rpm: 2 } } });
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(10_000);
    assertServedBy(await scene.chat(), "alpha");
    const skipped = await scene.chat();
    assertServedBy(skipped, "beta", 1);
    assert.deepEqual(scene.counts(), { alpha: 2, beta: 1 });

    // The first request leaves the sliding window exactly 60 s after it was sent.
    clock.set(START_MS + 60_000 - 1);
    assertServedBy(await scene.chat(), "beta");
    clock.set(START_MS + 60_000);
    assertServedBy(await scene.chat(), "alpha");
    assert.deepEqual(scene.counts(), { alpha: 3, beta: 2 });
  });

  test("rpd on the provider: its pool covers every model; it comes back at 00:00 UTC", async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 23, 58));
    const scene = await startScene(t, { clock, alpha: { limits: { rpd: 1 } } });
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "beta");
    const row = await scene.stats("alpha");
    assert.deepEqual(windowOf(row, "provider:alpha", "requests", "day"), {
      unit: "requests",
      window: "day",
      limit: 1,
      used: 1,
      remaining: 0,
      resets_at: "2026-01-02T00:00:00.000Z",
      source: "config",
      algorithm: "fixed",
    });

    clock.set(Date.UTC(2026, 0, 2) - 1);
    assertServedBy(await scene.chat(), "beta");
    clock.set(Date.UTC(2026, 0, 2));
    assertServedBy(await scene.chat(), "alpha");
    assert.deepEqual(scene.counts(), { alpha: 2, beta: 2 });
    assert.equal(windowOf(await scene.stats("alpha"), "provider:alpha", "requests", "day").used, 1);
  });

  test('rpd with day_reset "00:00 America/Los_Angeles" comes back at 08:00 UTC in winter', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 15, 7, 30));
    const scene = await startScene(t, {
      clock,
      alpha: { day_reset: "00:00 America/Los_Angeles" },
      alphaModel: { limits: { rpd: 1 } },
    });
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "beta");
    assert.equal(
      windowOf(await scene.stats("alpha"), "deployment:alpha/m", "requests", "day").resets_at,
      "2026-01-15T08:00:00.000Z",
    );
    clock.set(Date.UTC(2026, 0, 15, 8));
    assertServedBy(await scene.chat(), "alpha");
  });

  test("tpm: the estimate is charged up front and reconciled with the upstream's usage", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alphaModel: { limits: { tpm: 200 } } });
    // Estimated ~110 tokens (a short prompt + max_tokens 100); the upstream says it used 150.
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("hi", "alpha-model", { prompt_tokens: 60, completion_tokens: 90 }),
    });
    assertServedBy(await scene.chat({ max_tokens: 100 }), "alpha");
    const window = windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute");
    assert.equal(window.used, 150, "the reservation was not reconciled with usage");
    assert.equal(window.remaining, 50);

    // 150 + ~110 > 200: skipped. A request that fits the 50 tokens left still goes to alpha.
    assertServedBy(await scene.chat({ max_tokens: 100 }), "beta");
    assert.equal(scene.counts().alpha, 1);
    assertServedBy(await scene.chat({ max_tokens: 5 }), "alpha");
  });

  test("count_max_tokens: false charges only the prompt estimate", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alpha: { count_max_tokens: false },
      alphaModel: { limits: { tpm: 50 } },
    });
    assertServedBy(await scene.chat({ max_tokens: 4_000 }), "alpha");
  });

  test("concurrency: while alpha's only slot is busy, a second request goes to beta at once", async (t) => {
    const scene = await startScene(t, { alphaModel: { limits: { concurrency: 1 } } });
    // Alpha answers only once the second request was served: a gateway that waited for alpha's slot never serves it
    // (an ordering, where a bound on the clock below alpha's delay broke on a loaded machine).
    const secondServed = gate();
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await secondServed.promise;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("slow", "alpha-model")));
      },
    });
    const slow = scene.chat();
    await scene.alpha.waitForRequests(1);
    assert.equal((await scene.stats("alpha")).budgets[0]?.in_flight, 1);
    assertServedBy(await within(scene.chat(), 10_000, "the second request waited for alpha's slot"), "beta");
    secondServed.open();
    assertServedBy(await slow, "alpha");
    assert.equal((await scene.stats("alpha")).budgets[0]?.in_flight, 0);
    assertServedBy(await scene.chat(), "alpha");
    assert.deepEqual(scene.counts(), { alpha: 2, beta: 1 });
  });
});

describe("every candidate over budget", () => {
  test("429 rate_limit_exceeded with retry-after until the first budget frees, no upstream request", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alphaModel: { limits: { rpm: 1 } },
      betaModel: { limits: { rpm: 1 } },
    });
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(20_000);
    assertServedBy(await scene.chat(), "beta");

    clock.advance(10_000);
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    // alpha's request leaves its window at START + 60 s, 30 s from now.
    assert.equal(refused.headers["retry-after"], "30");
    const error = errorOf(refused);
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
    assert.deepEqual(error.attempts ?? [], []);
    assert.deepEqual(scene.counts(), { alpha: 1, beta: 1 });

    clock.set(START_MS + 60_000);
    assertServedBy(await scene.chat(), "alpha");
  });

  test("rpm and tpm both spent: a request larger than the whole tpm is a 413 at once; one that fits waits for the later window", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alphaModel: { limits: { rpm: 2, tpm: 100 } }, beta: false });
    // 10 tokens used at START, 80 at START + 30 s (the upstream's usage replaces the estimates).
    for (const [prompt, completion] of [
      [5, 5],
      [70, 10],
      [10, 10],
    ] as const) {
      scene.alpha.enqueue(CHAT_ROUTE, {
        kind: "json",
        body: chatCompletion("hi", "alpha-model", { prompt_tokens: prompt, completion_tokens: completion }),
      });
    }
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(30_000);
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(20_000);

    // rpm is spent until START + 60 s, 10 s from now. Before, the rpm was the refusal (checked first): a 429 to retry
    // in 10 s, and only the retry got the 413.
    const tooLarge = await scene.chat({ messages: [{ role: "user", content: "word ".repeat(400) }] });
    assert.equal(tooLarge.status, 413, tooLarge.text);
    assert.equal(tooLarge.headers["retry-after"], undefined);
    const tooLargeError = errorOf(tooLarge);
    assert.equal(tooLargeError.code, "request_too_large");
    assert.match(tooLargeError.message, /over its tpm budget \(90\/100 tokens, needs \d{3}\)/);

    // ~44 tokens fit the tpm, but not beside the 80 counted until START + 90 s: rpm frees in 10 s, the tpm in 40 s.
    const fitting = { messages: [{ role: "user", content: "word ".repeat(40) }] };
    const refused = await scene.chat(fitting);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "40");
    assert.match(errorOf(refused).message, /available again in 40 s \(alpha\/m at 2026-01-01T12:01:30\.000Z\)/);
    // At the old answer's time the tpm still refuses; at the new one the request is sent.
    clock.set(START_MS + 60_000);
    const early = await scene.chat(fitting);
    assert.equal(early.status, 429, early.text);
    assert.equal(early.headers["retry-after"], "30");
    clock.set(START_MS + 90_000);
    assertServedBy(await scene.chat(fitting), "alpha");
    assert.equal(scene.counts().alpha, 3);
  });

  test("a 429's cooldown over a spent rpm: retry-after is when the budget frees, the later of the two", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alphaModel: { limits: { rpm: 2 } }, beta: false });
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(20_000);
    // The second request of the minute is sent (the rpm counts it) and refused for 5 s; the rpm frees at START + 60 s.
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "5" }));
    const limited = await scene.chat();
    assert.equal(limited.status, 429, limited.text);
    assert.equal(limited.headers["retry-after"], "40");

    // Planned while both hold: the cooldown ends in 5 s, the budget in 40 s. Before, both answers said 5.
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "40");
    assert.match(errorOf(refused).message, /available again in 40 s \(alpha\/m at 2026-01-01T12:01:00\.000Z\)/);
    // At the cooldown's end the budget still refuses, with the time left; at the budget's the request is sent.
    clock.set(START_MS + 25_000);
    const early = await scene.chat();
    assert.equal(early.status, 429, early.text);
    assert.equal(early.headers["retry-after"], "35");
    clock.set(START_MS + 60_000);
    assertServedBy(await scene.chat(), "alpha");
    assert.equal(scene.counts().alpha, 3);
  });

  test("a daily budget: retry-after counts down to the reset", async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 23));
    const scene = await startScene(t, { clock, alpha: { limits: { rpd: 1 } }, beta: false });
    assertServedBy(await scene.chat(), "alpha");
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "3600");
    assert.equal(scene.counts().alpha, 1);
  });
});

describe("/health and /stats show the budgets", () => {
  test("per scope (provider pool first, then the deployment): every window's limit, used, left and reset", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alpha: { limits: { rpd: 100, tokens_per_month: 1_000_000 } },
      alphaModel: { limits: { rps: 5, rpm: 10, rph: 50, tpm: 10_000, tph: 50_000, tpd: 100_000, concurrency: 3 } },
    });
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("hi", "alpha-model", { prompt_tokens: 30, completion_tokens: 12 }),
    });
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(500);

    const row = await scene.stats("alpha");
    assert.deepEqual(
      row.budgets.map((budget) => [budget.scope, budget.in_flight]),
      [
        ["provider:alpha", 0],
        ["deployment:alpha/m", 0],
      ],
    );
    const view = (scope: string, budgetIndex: number) =>
      row.budgets[budgetIndex]?.windows.map((window) => [
        scope,
        `${window.unit}/${window.window}`,
        window.limit,
        window.used,
        window.remaining,
        window.resets_at,
      ]);
    assert.deepEqual(view("pool", 0), [
      ["pool", "requests/day", 100, 1, 99, "2026-01-02T00:00:00.000Z"],
      ["pool", "tokens/month", 1_000_000, 42, 999_958, "2026-02-01T00:00:00.000Z"],
    ]);
    assert.deepEqual(view("own", 1), [
      ["own", "requests/second", 5, 1, 4, "2026-01-01T12:00:01.000Z"],
      ["own", "requests/minute", 10, 1, 9, "2026-01-01T12:01:00.000Z"],
      ["own", "requests/hour", 50, 1, 49, "2026-01-01T13:00:00.000Z"],
      ["own", "tokens/minute", 10_000, 42, 9_958, "2026-01-01T12:01:00.000Z"],
      ["own", "tokens/hour", 50_000, 42, 49_958, "2026-01-01T13:00:00.000Z"],
      ["own", "tokens/day", 100_000, 42, 99_958, "2026-01-02T00:00:00.000Z"],
    ]);
    // An empty sliding window has no next reset.
    clock.advance(60_000);
    assert.equal(windowOf(await scene.stats("alpha"), "deployment:alpha/m", "requests", "minute").resets_at, null);

    const health = await scene.health();
    const deployment = health.deployments.find((entry) => entry.key === "alpha/m");
    assert.ok(deployment !== undefined);
    assert.equal(deployment.circuit, "closed");
    assert.equal(deployment.cooldown, null);
    assert.deepEqual(
      deployment.budgets.map((budget) => budget.scope),
      ["provider:alpha", "deployment:alpha/m"],
    );
    assert.equal(deployment.budgets[0]?.windows[0]?.used, 1);
  });

  test("/stats counts queued requests", async (t) => {
    const scene = await startScene(t);
    const response = await send(scene.gateway, "GET", "/stats");
    assert.equal((response.json as { queued_requests: number }).queued_requests, 0);
  });
});
