// Config reloads while the gateway is busy (docs/configuration.md "Reloading the config"): requests in flight on
// the old config must neither hold nor free what the new config counts, nor teach it what the old upstream said;
// a reload must not be undone by a model refresh that started before it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { stringify } from "yaml";
import { chatRequests, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, strictSseData } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const ADMIN_KEY = "admin-secret";

function provider(name: string, mock: MockUpstream, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    base_url: mock.baseUrl,
    api_key: `sk-${name}-secret`,
    retries: 0,
    timeout_ms: 10_000,
    models: { m: { id: `${name}-m` } },
    ...extra,
  };
}

function configYaml(providers: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  return stringify({
    server: { port: 0, host: "127.0.0.1", admin_keys: [ADMIN_KEY] },
    providers,
    routing: { max_wait_for_better_ms: 0 },
    ...extra,
  });
}

/** Rewrites the config file in place, keeping the test gateway's own `discovery:` and `state:` lines. */
function rewrite(gateway: TestGateway, yamlText: string): void {
  const text = readFileSync(gateway.configPath, "utf8");
  writeFileSync(gateway.configPath, `${yamlText}\n${text.slice(text.search(/^discovery:/m))}`);
}

/** POST /admin/reload, which must apply; the new config's hash. */
async function reload(gateway: TestGateway): Promise<string> {
  const response = await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(response.status, 200, response.text);
  return (response.json as { config: { hash: string } }).config.hash;
}

describe("a reload while requests are in flight", () => {
  test("a raised max_in_flight lets the requests waiting for a slot go at once, not one by one", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("slow", "alpha-m"), delayMs: 1_500 });
    const gateway = await useGateway(t, configYaml([provider("alpha", alpha, { max_in_flight: 1 })]));
    const answers = [0, 1, 2].map(() => postChat(gateway, { model: "m" }));
    await alpha.waitForRequests(1);
    await sleep(100);
    assert.equal(alpha.activeRequests(), 1, "two wait for the one slot");
    rewrite(gateway, configYaml([provider("alpha", alpha, { max_in_flight: 3 })]));
    await reload(gateway);
    // Before, the two waiters went one after the other as slots were given back (1.5 s each).
    await alpha.waitForRequests(3, 1_000);
    assert.equal(alpha.activeRequests(), 3);
    for (const answer of await Promise.all(answers)) assert.equal(answer.status, 200, answer.text);
  });

  test("a request in flight with the old key does not free the new key's concurrency slot", async (t) => {
    const alpha = await useMock(t);
    // The old key's request ends first; the new key's first request holds its slot well after that.
    alpha.enqueue(
      CHAT_ROUTE,
      { kind: "json", body: chatCompletion("old key", "alpha-m"), delayMs: 600 },
      { kind: "json", body: chatCompletion("new key", "alpha-m"), delayMs: 2_500 },
    );
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("new key", "alpha-m") });
    const limited = (key: string) =>
      configYaml(
        [provider("alpha", alpha, { api_key: key, models: { m: { id: "alpha-m", limits: { concurrency: 1 } } } })],
        {
          routing: { max_wait_for_better_ms: 0, queue_timeout_ms: 10_000 },
        },
      );
    const gateway = await useGateway(t, limited("sk-old"));
    const old = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    rewrite(gateway, limited("sk-new"));
    await reload(gateway);
    // Another key is another account: its one slot is free.
    const first = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(2);
    assert.equal(alpha.requests[1]?.headers.authorization, "Bearer sk-new");
    assert.equal((await old).status, 200);
    // The old key's request ended; the new key's slot is still held by `first`: another request waits in the queue.
    const second = postChat(gateway, { model: "m" });
    await sleep(400);
    assert.equal(chatRequests(alpha).length, 2, "no request reached the upstream while the new key's slot was held");
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    assert.equal(chatRequests(alpha).length, 3);
  });

  test("a 429 answered to the old key does not cool the new key down", async (t) => {
    const alpha = await useMock(t);
    const keyed = (key: string) => configYaml([provider("alpha", alpha, { api_key: key })]);
    const gateway = await useGateway(t, keyed("sk-old"));
    // The old key's quota is spent: the operator swaps the key while a request is on its way.
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 429,
      headers: { "retry-after": "3600" },
      body: { error: { message: "You exceeded your current quota", type: "requests", code: "rate_limit_exceeded" } },
      delayMs: 800,
    });
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("new key", "alpha-m") });
    const old = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    rewrite(gateway, keyed("sk-new"));
    await reload(gateway);
    assert.equal((await old).status, 429);
    const served = await postChat(gateway, { model: "m" });
    assert.equal(served.status, 200, `the new key was not told about the old key's 429: ${served.text}`);
    assert.equal(alpha.requests.at(-1)?.headers.authorization, "Bearer sk-new");
  });
});

describe("a request failing over when a reload comes", () => {
  /** Alpha (first) answers a 500 after 600 ms; the reload lands while it is out. */
  async function failingFirst(t: Parameters<typeof useMock>[0]) {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await sleep(600);
        response.statusCode = 500;
        response.end("upstream broke");
      },
    });
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-m") });
    return { alpha, beta };
  }

  test("the next candidate's key rotated: the new key serves it, the replaced one is never sent", async (t) => {
    const { alpha, beta } = await failingFirst(t);
    const keyed = (betaKey: string) =>
      configYaml([
        provider("alpha", alpha, { base_priority: 10 }),
        provider("beta", beta, { api_key: betaKey, models: { m: { id: "beta-m", limits: { rpd: 10 } } } }),
      ]);
    const gateway = await useGateway(t, keyed("sk-beta-revoked"));
    const pending = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    rewrite(gateway, keyed("sk-beta-new"));
    await reload(gateway);
    const response = await pending;
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.deepEqual(
      chatRequests(beta).map((request) => request.headers.authorization),
      ["Bearer sk-beta-new"],
    );
    // Counted once, in the new key's budget, and nothing left in flight.
    const health = await send(gateway, "GET", "/health");
    type Budget = { in_flight: number; windows: { window: string; used: number }[] };
    const deployments = (health.json as { deployments: { key: string; budgets: Budget[] }[] }).deployments;
    const budget = deployments.find((deployment) => deployment.key === "beta/m")?.budgets[0];
    assert.equal(budget?.windows.find((window) => window.window === "day")?.used, 1);
    assert.equal(budget?.in_flight, 0);
  });

  test("the next candidate removed: it gets no attempt; the client has the attempts made", async (t) => {
    const { alpha, beta } = await failingFirst(t);
    const gateway = await useGateway(
      t,
      configYaml([provider("alpha", alpha, { base_priority: 10 }), provider("beta", beta)]),
    );
    const pending = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    rewrite(gateway, configYaml([provider("alpha", alpha, { base_priority: 10 })]));
    await reload(gateway);
    const response = await pending;
    assert.equal(response.status, 502, response.text);
    assert.match(response.text, /alpha\/alpha-m: HTTP 500/);
    assert.equal(chatRequests(beta).length, 0, "a removed provider gets no new attempt");
  });
});

describe("a stream in flight that then needs a continuation", () => {
  test("is not continued with a key the reload replaced: the provider's new key continues it", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const words = ["one", " two", " three", " four", " five", " six", " seven", " eight"];
    // Alpha streams five words and is cut; the next candidate (beta) continues with the rest.
    const firstFive = chatStream(words.slice(0, 5), "alpha-m", { delayMs: 120 }).slice(0, 11);
    alpha.enqueue(
      CHAT_ROUTE,
      { kind: "sse", events: firstFive, end: "destroy" },
      { kind: "sse", events: chatStream(words.slice(5), "alpha-m") },
    );
    beta.setDefault(CHAT_ROUTE, { kind: "sse", events: chatStream(words.slice(5), "beta-m") });
    const keyed = (betaKey: string) =>
      configYaml([provider("alpha", alpha, { base_priority: 10 }), provider("beta", beta, { api_key: betaKey })]);
    const gateway = await useGateway(t, keyed("sk-beta-revoked"));
    const stream = await postJson(`${gateway.baseUrl}/chat/completions`, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "count" }],
    });
    assert.equal(stream.statusCode, 200);
    const reading = readTimed(stream.body);
    await alpha.waitForRequests(1);
    rewrite(gateway, keyed("sk-beta-new"));
    await reload(gateway);
    const data = strictSseData((await reading).text);
    assert.equal(data.at(-1), "[DONE]");
    const content = data
      .slice(0, -1)
      .map((line) => (JSON.parse(line) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content)
      .join("");
    assert.equal(content, words.join(""));
    // Beta is the next candidate: what its name points at now (the new key) continues the stream, as a request
    // made after the reload would be served; the replaced key (perhaps a revoked one) is never sent.
    assert.deepEqual(
      chatRequests(beta).map((request) => request.headers.authorization),
      ["Bearer sk-beta-new"],
      "the continuation went to beta's new key, not the replaced one",
    );
    assert.equal(chatRequests(alpha).length, 1, "alpha was not asked again: beta continued");
    alpha.reset(); // its scripted second stream was not needed
    // New requests are served.
    const next = await postChat(gateway, { model: "m" });
    assert.equal(next.status, 200, next.text);
  });
});

describe("a provider removed and added again", () => {
  test("with another key it starts afresh; with the same key its cooldown holds", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("beta", "beta-m") });
    alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after": "3600" } }));
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha", "alpha-m") });
    const alphaWith = (key: string) => provider("alpha", alpha, { api_key: key, models: { a: { id: "alpha-m" } } });
    const gateway = await useGateway(t, configYaml([alphaWith("sk-old"), provider("beta", beta)]));
    assert.equal((await postChat(gateway, { model: "a" })).status, 429, "alpha's old key is cooling");
    rewrite(gateway, configYaml([provider("beta", beta)]));
    await reload(gateway);
    rewrite(gateway, configYaml([alphaWith("sk-old"), provider("beta", beta)]));
    await reload(gateway);
    assert.equal((await postChat(gateway, { model: "a" })).status, 429, "the same key: still cooling");
    assert.equal(chatRequests(alpha).length, 1);
    rewrite(gateway, configYaml([provider("beta", beta)]));
    await reload(gateway);
    rewrite(gateway, configYaml([alphaWith("sk-new"), provider("beta", beta)]));
    await reload(gateway);
    const served = await postChat(gateway, { model: "a" });
    assert.equal(served.status, 200, `another key is another account: ${served.text}`);
    assert.equal(alpha.requests.at(-1)?.headers.authorization, "Bearer sk-new");
  });
});

describe("reloads racing", () => {
  test("a model refresh under way does not undo a config reload applied meanwhile", async (t) => {
    const alpha = await useMock(t, { models: [{ id: "alpha-m" }] });
    const beta = await useMock(t);
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("beta", "beta-m") });
    const discovered = { name: "alpha", base_url: alpha.baseUrl, api_key: "sk-alpha", retries: 0 };
    const gateway = await useGateway(t, configYaml([discovered]));
    // The forced refresh's GET /models is slow: the config reload lands while it waits.
    alpha.enqueue("GET /v1/models", {
      kind: "json",
      body: { object: "list", data: [{ id: "alpha-m" }] },
      delayMs: 800,
    });
    const modelsBefore = alpha.requests.length;
    const refresh = send(gateway, "POST", "/admin/models/refresh", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    await alpha.waitForRequests(modelsBefore + 1);
    rewrite(gateway, configYaml([discovered, provider("beta", beta)]));
    const hash = await reload(gateway);
    assert.equal((await refresh).status, 200);
    const health = (await send(gateway, "GET", "/health")).json as { config: { hash: string } };
    assert.equal(health.config.hash, hash, "/health names the reloaded config");
    const served = await postChat(gateway, { model: "m" });
    assert.equal(served.status, 200, `the reloaded config still serves: ${served.text}`);
    assert.equal(served.headers["x-gateway-provider"], "beta");
  });
});

describe("requests waiting in the queue across a reload", () => {
  test("a model the reload removed: the waiter gets 404 at once, the one behind it is served", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha", "alpha-m"), delayMs: 1_000 });
    // A queue far longer than the bound below: a waiter the reload did not wake waits all of it.
    const queueing = { routing: { max_wait_for_better_ms: 0, queue_timeout_ms: 30_000 } };
    const models = (withGone: boolean) => ({
      ...(withGone ? { gone: { id: "alpha-gone", limits: { concurrency: 1 } } } : {}),
      m: { id: "alpha-m" },
    });
    const gateway = await useGateway(t, configYaml([provider("alpha", alpha, { models: models(true) })], queueing));
    const busy = postChat(gateway, { model: "gone" });
    await alpha.waitForRequests(1);
    const startedAtMs = Date.now();
    const waiting = postChat(gateway, { model: "gone" });
    const deadline = Date.now() + 10_000;
    while (((await send(gateway, "GET", "/stats")).json as { queued_requests: number }).queued_requests !== 1) {
      assert.ok(Date.now() < deadline, "the request never queued");
      await sleep(10);
    }
    rewrite(gateway, configYaml([provider("alpha", alpha, { models: models(false) })], queueing));
    await reload(gateway);
    const answer = await waiting;
    assert.equal(answer.status, 404, answer.text);
    assert.ok(Date.now() - startedAtMs < 15_000, "answered without waiting out the queue's time");
    assert.equal((await busy).status, 200, "the request in flight finished on the old config");
    const stats = (await send(gateway, "GET", "/stats")).json as { queued_requests: number };
    assert.equal(stats.queued_requests, 0);
    assert.equal((await postChat(gateway, { model: "m" })).status, 200);
  });
});

describe("client keys rotated by a reload", () => {
  test("the old key is refused at once; a stream it started finishes whole", async (t) => {
    const alpha = await useMock(t);
    const words = ["a", "b", "c", "d", "e"];
    alpha.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, "alpha-m", { delayMs: 150 }) });
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", "alpha-m") });
    const withKeys = (apiKeys: string[]) =>
      stringify({
        server: { port: 0, host: "127.0.0.1", admin_keys: [ADMIN_KEY], api_keys: apiKeys },
        providers: [provider("alpha", alpha)],
      });
    const gateway = await useGateway(t, withKeys(["old-client-key"]));
    const stream = await request(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer old-client-key" },
      body: JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(stream.statusCode, 200);
    const reading = readTimed(stream.body);
    await alpha.waitForRequests(1);
    rewrite(gateway, withKeys(["new-client-key"]));
    await reload(gateway);
    const refused = await postChat(gateway, { model: "m" }, { authorization: "Bearer old-client-key" });
    assert.equal(refused.status, 401, refused.text);
    const served = await postChat(gateway, { model: "m" }, { authorization: "Bearer new-client-key" });
    assert.equal(served.status, 200, served.text);
    const data = strictSseData((await reading).text);
    assert.equal(data.at(-1), "[DONE]", "the stream started with the old key finished");
    assert.equal(chatRequests(alpha).length, 2);
  });
});
