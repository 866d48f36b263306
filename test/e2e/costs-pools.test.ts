// Cost classes and account-wide pools over loopback (docs/routing.md "Free and paid models", "Pools"):
// `routing.paid: never` never calls a paid upstream, even when every free candidate is cooling (the client gets a
// 429 naming the soonest free reset); `last_resort` tries a paid model only when no free one can serve and says so
// in `x-gateway-cost` and the request record; a 429 naming the account's pool cools every model of that key at
// once, without an upstream request each, and the explanation and the 429 name the pool and its reset.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { ManualClock } from "../../src/clock.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { NOW_MS } from "../fixtures/provider-fixtures.ts";
import { chatRequests, errorOf, modelOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { assertServedBy, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

interface SkipView {
  provider: string;
  model: string;
  cause: string;
  reason: string;
  until: string | null;
  cost: string;
  pool: string | null;
}

interface ExplanationView {
  candidates: { provider: string; model: string; cost: string }[];
  skipped: SkipView[];
}

describe("routing.paid: never", () => {
  test("every free candidate cooling: 429 naming the soonest free reset, and no paid upstream is called", async (t) => {
    const clock = new ManualClock(NOW_MS);
    // alpha is free and preferred; beta is paid (a provider nobody marked free) and would serve at once.
    const scene = await startScene(t, { clock, alpha: { cost: "free" }, config: { routing: { paid: "never" } } });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));

    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers["retry-after"], "30");
    const message = errorOf(first).message;
    assert.match(message, new RegExp(`at ${new Date(NOW_MS + 30_000).toISOString()}`), message);
    assert.match(message, /paid candidate was not tried \(routing\.paid: never\)/, message);
    assert.deepEqual(scene.counts(), { alpha: 1, beta: 0 }, "a paid upstream was called");

    // Still cooling: no upstream request at all, the same reset named.
    clock.set(NOW_MS + 10_000);
    const second = await scene.chat();
    assert.equal(second.status, 429, second.text);
    assert.equal(second.headers["retry-after"], "20");
    assert.match(errorOf(second).message, new RegExp(`alpha/m at ${new Date(NOW_MS + 30_000).toISOString()}`));
    assert.deepEqual(scene.counts(), { alpha: 1, beta: 0 });

    const explained = (await send(scene.gateway, "GET", "/v1/gateway/route?model=m")).json as ExplanationView;
    const paidSkip = explained.skipped.find((skip) => skip.provider === "beta");
    assert.equal(paidSkip?.cause, "paid");
    assert.equal(paidSkip?.cost, "paid");

    // The free candidate is back at its reset; beta was never asked.
    clock.set(NOW_MS + 30_000);
    assertServedBy(await scene.chat(), "alpha");
    assert.equal(scene.counts().beta, 0);
  });

  test("only paid models for a name: 400 no_capable_model, nothing sent upstream", async (t) => {
    const scene = await startScene(t, { config: { routing: { paid: "never" } } });
    const response = await scene.chat();
    assert.equal(response.status, 400, response.text);
    assert.equal(errorOf(response).code, "no_capable_model");
    assert.deepEqual(scene.counts(), { alpha: 0, beta: 0 });
  });
});

describe("routing.paid: last_resort (the default)", () => {
  test("a free model goes first whatever its score; a paid one answers only when no free one can, and says so", async (t) => {
    // alpha scores far higher (priority 100) but is paid; beta is free.
    const scene = await startScene(t, { beta: { cost: "free" } });
    const records: RequestRecord[] = [];
    scene.gateway.runtime.onRecord((record) => records.push(record));

    const free = await scene.chat();
    assertServedBy(free, "beta");
    assert.equal(free.headers["x-gateway-cost"], "free");

    scene.beta.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "60" }));
    const paid = await scene.chat();
    assertServedBy(paid, "alpha", 2);
    assert.equal(paid.headers["x-gateway-cost"], "paid");
    assert.deepEqual(
      records.map((record) => record.servedBy?.cost),
      ["free", "paid"],
    );
    assert.deepEqual(scene.counts(), { alpha: 1, beta: 2 });
  });

  test("a stream says which it was in its headers too", async (t) => {
    const scene = await startScene(t, { beta: { cost: "free" } });
    scene.beta.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "60" }));
    const stream = await scene.chat({ stream: true });
    assert.equal(stream.status, 200, stream.text);
    assert.equal(stream.headers["x-gateway-provider"], "alpha");
    assert.equal(stream.headers["x-gateway-cost"], "paid");
    assert.match(stream.text, /data: \[DONE\]/);
  });

  test("a model-level `cost: free` on a paid provider is free", async (t) => {
    const scene = await startScene(t, { alphaModel: { cost: "free" } });
    const response = await scene.chat();
    assertServedBy(response, "alpha");
    assert.equal(response.headers["x-gateway-cost"], "free");
  });
});

/** Provider "pool" serves `x` with two models sharing one key; "other" is the fallback. */
async function startPoolScene(t: Parameters<typeof useMock>[0], clock: ManualClock, poolExtra: object = {}) {
  const pool = await useMock(t);
  const other = await useMock(t);
  const defaults = { retries: 0, timeout_ms: 5000, cost: "free" };
  const yaml = stringify({
    routing: { max_wait_for_better_ms: 0 },
    meta_models: { x: ["pool/a", "pool/b", "other/c"] },
    providers: [
      {
        name: "pool",
        base_url: pool.baseUrl,
        api_key: "sk-pool-secret",
        ...defaults,
        ...poolExtra,
        models: { a: { priority: 100 }, b: { priority: 50 } },
      },
      { name: "other", base_url: other.baseUrl, api_key: "sk-other-secret", ...defaults, models: { c: {} } },
    ],
  });
  const gateway = await useGateway(t, yaml, { clock });
  return { pool, other, gateway };
}

function modelsAsked(mock: MockUpstream): unknown[] {
  return chatRequests(mock).map(modelOf);
}

describe("account-wide pools", () => {
  test("a 429 naming the account's pool cools every model of the key at once, without asking the others", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const { pool, other, gateway } = await startPoolScene(t, clock);
    pool.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from pool", "a") });
    other.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from other", "c") });
    pool.enqueue(
      CHAT_ROUTE,
      rateLimited({
        retryAfter: "30",
        body: { error: { message: "Rate limit exceeded: free-models-per-min. ", code: 429 } },
      }),
    );

    const first = await postChat(gateway, { model: "x" });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "other");
    // pool/b shares the empty pool: it got no request of its own to find out.
    assert.deepEqual(modelsAsked(pool), ["a"]);
    assert.equal(first.headers["x-gateway-attempts"], "2");

    const explained = (await send(gateway, "GET", "/v1/gateway/route?model=x")).json as ExplanationView;
    const poolSkips = explained.skipped.filter((skip) => skip.provider === "pool");
    assert.deepEqual(
      poolSkips.map((skip) => [skip.model, skip.pool, skip.until]),
      [
        ["a", "provider:pool", new Date(NOW_MS + 30_000).toISOString()],
        ["b", "provider:pool", new Date(NOW_MS + 30_000).toISOString()],
      ],
    );
    assert.match(poolSkips[1]?.reason ?? "", /pool provider:pool empty: account-wide limit/);

    // The whole pool is skipped while it cools; the fallback serves at once.
    clock.set(NOW_MS + 29_999);
    const second = await postChat(gateway, { model: "x" });
    assert.equal(second.headers["x-gateway-provider"], "other");
    assert.equal(second.headers["x-gateway-attempts"], "1");
    assert.deepEqual(modelsAsked(pool), ["a"]);

    // With the fallback limited too, the 429 names the pool and its reset.
    other.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "60" }));
    const limited = await postChat(gateway, { model: "x" });
    assert.equal(limited.status, 429, limited.text);
    assert.match(errorOf(limited).message, /pool\/a at .*, pool provider:pool\)/);
    // And why each was skipped: pool/b for its provider's pool, with where the pool's wait came from.
    assert.match(
      errorOf(limited).message,
      /pool\/b: pool provider:pool empty: account-wide limit: OpenRouter free-models-per-min limit; cooling down for the wait in the provider's retry-after header until 2026-01-01T12:00:30\.000Z\. Attempts: other\/c: /,
    );

    clock.set(NOW_MS + 30_000);
    const back = await postChat(gateway, { model: "x" });
    assert.equal(back.headers["x-gateway-provider"], "pool");
    assert.deepEqual(modelsAsked(pool), ["a", "a"]);
  });

  test("rate_limit_scope: account makes any 429 of the key the pool's; the default cools the model alone", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const scoped = await startPoolScene(t, clock, { rate_limit_scope: "account" });
    scoped.pool.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from pool", "a") });
    scoped.other.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from other", "c") });
    scoped.pool.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const response = await postChat(scoped.gateway, { model: "x" });
    assert.equal(response.headers["x-gateway-provider"], "other");
    assert.deepEqual(modelsAsked(scoped.pool), ["a"]);

    const perModel = await startPoolScene(t, clock);
    perModel.pool.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from pool", "b") });
    perModel.pool.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const answered = await postChat(perModel.gateway, { model: "x" });
    assert.equal(answered.headers["x-gateway-provider"], "pool");
    assert.deepEqual(modelsAsked(perModel.pool), ["a", "b"]);
  });

  test("a limit learned from one model's account-wide 429 paces every model of the pool after the cooldown", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const { pool, other, gateway } = await startPoolScene(t, clock, { rate_limit_scope: "account" });
    pool.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from pool", "a") });
    other.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from other", "c") });
    for (const atMs of [NOW_MS, NOW_MS + 1_000]) {
      clock.set(atMs);
      assert.equal((await postChat(gateway, { model: "x" })).headers["x-gateway-provider"], "pool");
    }
    // The third request in the minute: a 429 that states the limit and asks for only 5 s.
    pool.enqueue(
      CHAT_ROUTE,
      rateLimited({
        retryAfter: "5",
        body: { error: { message: "Rate limit reached on requests per minute (RPM): Limit 2, Used 2, Requested 1." } },
      }),
    );
    clock.set(NOW_MS + 2_000);
    assert.equal((await postChat(gateway, { model: "x" })).headers["x-gateway-provider"], "other");
    assert.deepEqual(modelsAsked(pool), ["a", "a", "a"]);

    // The cooldown is over, but the pool's learned limit holds for both models: pool/b, which never got a 429,
    // is not asked to find out (a limit learned per model would send it there and provoke the next 429).
    clock.set(NOW_MS + 10_000);
    const explained = (await send(gateway, "GET", "/v1/gateway/route?model=x")).json as ExplanationView;
    const poolSkips = explained.skipped.filter((skip) => skip.provider === "pool");
    assert.deepEqual(
      poolSkips.map((skip) => [skip.model, skip.cause, skip.pool, skip.until]),
      [
        ["a", "budget", "provider:pool", new Date(NOW_MS + 60_000).toISOString()],
        ["b", "budget", "provider:pool", new Date(NOW_MS + 60_000).toISOString()],
      ],
    );
    assert.match(poolSkips[1]?.reason ?? "", /pool provider:pool empty: over its learned rpm limit \(2\/2; body:/);
    const paced = await postChat(gateway, { model: "x" });
    assert.equal(paced.headers["x-gateway-provider"], "other");
    assert.equal(paced.headers["x-gateway-attempts"], "1");
    assert.deepEqual(modelsAsked(pool), ["a", "a", "a"]);

    // The first request leaves the minute: the pool serves again.
    clock.set(NOW_MS + 60_000);
    assert.equal((await postChat(gateway, { model: "x" })).headers["x-gateway-provider"], "pool");
    assert.deepEqual(modelsAsked(pool), ["a", "a", "a", "a"]);
  });

  test("a pool over its shared budget is skipped as a whole, with the pool's reset", async (t) => {
    const clock = new ManualClock(NOW_MS);
    const { pool, other, gateway } = await startPoolScene(t, clock, { limits: { rpm: 1 } });
    pool.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from pool", "a") });
    other.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from other", "c") });
    assert.equal((await postChat(gateway, { model: "x" })).headers["x-gateway-provider"], "pool");

    const explained = (await send(gateway, "GET", "/v1/gateway/route?model=x")).json as ExplanationView;
    const poolSkips = explained.skipped.filter((skip) => skip.provider === "pool");
    assert.deepEqual(
      poolSkips.map((skip) => [skip.model, skip.cause, skip.pool]),
      [
        ["a", "budget", "provider:pool"],
        ["b", "budget", "provider:pool"],
      ],
    );
    assert.equal(poolSkips[0]?.until, poolSkips[1]?.until);
    const second = await postChat(gateway, { model: "x" });
    assert.equal(second.headers["x-gateway-provider"], "other");
    assert.deepEqual(modelsAsked(pool), ["a"]);
  });
});
