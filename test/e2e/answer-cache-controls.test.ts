// The answer cache's per-request controls besides `max-age` (docs/routing.md "Answer cache"): `Cache-Control:
// only-if-cached` (a kept answer or a 504 `not_cached`, never an upstream call), `x-gateway-cache-ttl` (this answer
// kept for less than `cache.ttl_ms`), `x-gateway-cache-namespace` (a partition within a client's answers), on every
// cached front door, each door answering errors in its own shape; and the memory of answers no config can reach
// again freed at the swap (a discovery refresh, a reload).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import {
  cacheClientsConfig,
  contentOf,
  HELLO_CHAT,
  numberedChatAnswers,
  waitUntil,
} from "../helpers/answer-cache-scene.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  MODELS_ROUTE,
  type RawResponse,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const ADMIN_KEY = "cache-controls-admin-key";
const PLAIN_KEY = "cache-controls-plain-key";
const TEAM_A_KEY = "cache-controls-team-a-key";
const TEAM_B_KEY = "cache-controls-team-b-key";
const RERANK = "POST /v1/rerank";
const KEYS = { admin: ADMIN_KEY, plain: PLAIN_KEY, teamA: TEAM_A_KEY, teamB: TEAM_B_KEY };

function configText(mock: MockUpstream, cache = "cache:\n  enabled: true\n"): string {
  return cacheClientsConfig(mock, {
    keys: KEYS,
    providerKey: "sk-alpha-cache-controls",
    moreModels: ["r: { id: bge-reranker-alpha }"],
    cache,
  });
}

/** Every chat answer is numbered, so a kept answer is told apart from a fresh one; rerank answers one list. */
function numberedAnswers(mock: MockUpstream): void {
  numberedChatAnswers(mock);
  mock.setDefault(RERANK, {
    kind: "json",
    body: { id: "rr-1", results: [{ index: 0, relevance_score: 0.9 }], usage: { total_tokens: 5 } },
  });
}

function post(
  gateway: { url: string },
  path: string,
  body: object,
  headers: Record<string, string> = {},
  key = PLAIN_KEY,
): Promise<RawResponse> {
  return send(gateway as never, "POST", path, { body, headers: { authorization: `Bearer ${key}`, ...headers } });
}

function chat(
  gateway: { url: string },
  headers: Record<string, string> = {},
  key = PLAIN_KEY,
  body: object = HELLO_CHAT,
) {
  return post(gateway, "/v1/chat/completions", body, headers, key);
}

/** Every request a mock got other than discovery's model list. */
function upstreamCalls(mock: MockUpstream): number {
  return mock.requests.filter((request) => request.method === "POST").length;
}

const ONLY_IF_CACHED = { "cache-control": "only-if-cached" };

/** A 504 `not_cached` in the OpenAI shape, told not to be retried. */
function assertNotCached(response: RawResponse, what: string): void {
  assert.equal(response.status, 504, `${what}: ${response.text}`);
  const error = errorOf(response);
  assert.equal(error.code, "not_cached", what);
  assert.match(error.message, /only-if-cached/, what);
  assert.equal(response.headers["x-should-retry"], "false", `${what}: an SDK must not retry it`);
}

describe("Cache-Control: only-if-cached", () => {
  test("every cached front door answers a kept answer, or a 504 not_cached in its own shape without an upstream call", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const gateway = await useGateway(t, configText(mock));
    const doors: [string, object][] = [
      ["/v1/chat/completions", HELLO_CHAT],
      ["/v1/completions", { model: "m", prompt: "Say hello" }],
      ["/v1/embeddings", { model: "e", input: ["one", "two"] }],
      ["/v1/rerank", { model: "r", query: "capital of France", documents: ["Paris", "Bananas"] }],
      ["/v1/responses", { model: "m", input: "Say hello" }],
      ["/v1/chat/completions", { ...HELLO_CHAT, stream: true }],
    ];
    for (const [path, body] of doors) assertNotCached(await post(gateway, path, body, ONLY_IF_CACHED), path);

    const message = { model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi there" }] };
    const anthropicMiss = await post(gateway, "/v1/messages", message, ONLY_IF_CACHED);
    assert.equal(anthropicMiss.status, 504);
    const anthropicError = anthropicMiss.json as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(anthropicError.type, "error", "Anthropic's error shape");
    assert.equal(anthropicError.error?.type, "timeout_error", "Anthropic's name for a 504");
    assert.match(anthropicError.error?.message ?? "", /only-if-cached/);
    assert.equal(upstreamCalls(mock), 0, "a miss with only-if-cached never reaches the provider");

    // Once kept by a plain request, the same request with only-if-cached is answered from the cache.
    for (const [path, body] of [...doors, ["/v1/messages", message] as [string, object]]) {
      const first = await post(gateway, path, body);
      assert.equal(first.status, 200, `${path}: ${first.text}`);
      const before = upstreamCalls(mock);
      const kept = await post(gateway, path, body, ONLY_IF_CACHED);
      assert.equal(kept.status, 200, `${path}: ${kept.text}`);
      assert.equal(kept.headers["x-gateway-cache"], "hit", path);
      assert.equal(upstreamCalls(mock), before, `${path}: a hit calls no provider`);
    }

    // With no-cache or no-store no kept answer may be given: always the 504, and still no upstream call.
    const before = upstreamCalls(mock);
    for (const directive of ["only-if-cached, no-cache", "no-store, only-if-cached", "only-if-cached, max-age=0"]) {
      const refused = await chat(gateway, { "cache-control": directive });
      assertNotCached(refused, directive);
      assert.match(errorOf(refused).message, /no-cache|no-store/, directive);
    }
    assert.equal(upstreamCalls(mock), before);

    // The record says what happened.
    const stats = (await send(gateway, "GET", "/stats", { headers: { authorization: `Bearer ${PLAIN_KEY}` } }))
      .json as { cache?: { misses: number } };
    assert.ok((stats.cache?.misses ?? 0) >= doors.length + 1);
  });

  test("with the cache off, only-if-cached is a 504 too, never an upstream call", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const gateway = await useGateway(t, configText(mock, "cache:\n  enabled: false\n"));
    await chat(gateway);
    const refused = await chat(gateway, ONLY_IF_CACHED);
    assertNotCached(refused, "cache off");
    assert.match(errorOf(refused).message, /cache\.enabled/);
    assert.equal(upstreamCalls(mock), 1);
  });
});

describe("x-gateway-cache-ttl", () => {
  test("an answer is kept for the request's own seconds, never past cache.ttl_ms; 0 keeps nothing; a bad value is a 400", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const clock = new ManualClock(Date.now());
    const gateway = await useGateway(t, configText(mock, "cache:\n  enabled: true\n  ttl_ms: 60000\n"), { clock });

    assert.equal(contentOf(await chat(gateway, { "x-gateway-cache-ttl": "10" })), "answer 1");
    clock.advance(9_000);
    assert.equal((await chat(gateway)).headers["x-gateway-cache"], "hit", "younger than its own 10 s");
    clock.advance(1_000);
    const expired = await chat(gateway);
    assert.equal(expired.headers["x-gateway-cache"], "miss", "past its own 10 s although ttl_ms is 60 s");
    assert.equal(contentOf(expired), "answer 2");
    assert.equal(gateway.runtime.answers.summary.entries, 1, "the expired answer's memory was freed at the lookup");

    // Longer than ttl_ms: as long as ttl_ms, not longer.
    assert.equal(
      contentOf(await chat(gateway, { "cache-control": "no-cache", "x-gateway-cache-ttl": "3600" })),
      "answer 3",
    );
    clock.advance(59_000);
    assert.equal(contentOf(await chat(gateway)), "answer 3");
    clock.advance(1_000);
    assert.equal(contentOf(await chat(gateway)), "answer 4", "ttl_ms bounds a request's own time to live");

    // 0: this answer is not kept (the kept one is still given to a lookup).
    const other = { ...HELLO_CHAT, temperature: 0.5 };
    assert.equal(contentOf(await chat(gateway, { "x-gateway-cache-ttl": "0" }, PLAIN_KEY, other)), "answer 5");
    assert.equal((await chat(gateway, {}, PLAIN_KEY, other)).headers["x-gateway-cache"], "miss", "nothing was kept");
    assert.equal((await chat(gateway, { "x-gateway-cache-ttl": "0" })).headers["x-gateway-cache"], "hit");

    const calls = upstreamCalls(mock);
    for (const bad of ["abc", "-1", "1.5", "10s", "1e3", "5, 6"]) {
      const refused = await chat(gateway, { "x-gateway-cache-ttl": bad });
      assert.equal(refused.status, 400, bad);
      const error = errorOf(refused);
      assert.equal(error.code, "invalid_request", bad);
      assert.equal(error.param, "x-gateway-cache-ttl", bad);
    }
    const message = { model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi there" }] };
    const anthropic = await post(gateway, "/v1/messages", message, { "x-gateway-cache-ttl": "soon" });
    assert.equal(anthropic.status, 400);
    assert.equal((anthropic.json as { error?: { type?: string } }).error?.type, "invalid_request_error");
    assert.equal((anthropic.json as { type?: string }).type, "error", "Anthropic's error shape");
    assert.equal(upstreamCalls(mock), calls, "a refused header sends nothing upstream");
  });

  test("a stream's kept chunks follow the request's time to live too", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const clock = new ManualClock(Date.now());
    const gateway = await useGateway(t, configText(mock), { clock });
    const streamed = { ...HELLO_CHAT, stream: true };
    await chat(gateway, { "x-gateway-cache-ttl": "5" }, PLAIN_KEY, streamed);
    clock.advance(4_000);
    assert.equal((await chat(gateway, {}, PLAIN_KEY, streamed)).headers["x-gateway-cache"], "hit");
    clock.advance(1_000);
    assert.equal((await chat(gateway, {}, PLAIN_KEY, streamed)).headers["x-gateway-cache"], "miss");
    assert.equal(chatRequests(mock).length, 2);
  });
});

describe("x-gateway-cache-namespace", () => {
  test("answers in one namespace are not given in another nor without one; named clients stay apart within a namespace", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const gateway = await useGateway(t, configText(mock));
    const inA = { "x-gateway-cache-namespace": "eval-run-a" };
    const inB = { "x-gateway-cache-namespace": "eval-run-b" };

    assert.equal(contentOf(await chat(gateway, inA)), "answer 1");
    const other = await chat(gateway, inB);
    assert.equal(other.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(other), "answer 2");
    const none = await chat(gateway);
    assert.equal(none.headers["x-gateway-cache"], "miss", "no namespace is a namespace of its own");
    assert.equal(contentOf(none), "answer 3");
    const again = await chat(gateway, inA);
    assert.equal(again.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(again), "answer 1");
    assert.equal(contentOf(await chat(gateway, inB)), "answer 2");
    assert.equal(contentOf(await chat(gateway)), "answer 3");

    // A namespace only narrows: two named clients naming the same one still do not share answers.
    const shared = { "x-gateway-cache-namespace": "shared-name" };
    assert.equal(contentOf(await chat(gateway, shared, TEAM_A_KEY)), "answer 4");
    const teamB = await chat(gateway, shared, TEAM_B_KEY);
    assert.equal(teamB.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(teamB), "answer 5");
    assert.equal(contentOf(await chat(gateway, shared, TEAM_A_KEY)), "answer 4");

    // Other front doors: an embeddings answer and a Messages answer are partitioned the same way.
    const vectors = { model: "e", input: ["one"] };
    await post(gateway, "/v1/embeddings", vectors, inA);
    assert.equal((await post(gateway, "/v1/embeddings", vectors, inB)).headers["x-gateway-cache"], "miss");
    assert.equal((await post(gateway, "/v1/embeddings", vectors, inA)).headers["x-gateway-cache"], "hit");
    const message = { model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi there" }] };
    await post(gateway, "/v1/messages", message, inA);
    assert.equal((await post(gateway, "/v1/messages", message, inB)).headers["x-gateway-cache"], "miss");
    assert.equal((await post(gateway, "/v1/messages", message, inA)).headers["x-gateway-cache"], "hit");

    const calls = upstreamCalls(mock);
    for (const bad of ["a".repeat(129), "two, values", "sp ace", "é"]) {
      const refused = await chat(gateway, { "x-gateway-cache-namespace": bad });
      assert.equal(refused.status, 400, bad);
      assert.equal(errorOf(refused).param, "x-gateway-cache-namespace", bad);
    }
    assert.equal(upstreamCalls(mock), calls);
  });
});

describe("answers no config can reach again", () => {
  test("a discovery refresh that found other models frees the kept answers; one that found the same keeps them", async (t) => {
    const mock = await useMock(t, { models: [{ id: "alpha-m" }] });
    numberedAnswers(mock);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
  api_keys: [${PLAIN_KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-cache-controls
cache:
  enabled: true
`,
    );
    const ask = () => chat(gateway, {}, PLAIN_KEY, { model: "alpha-m", messages: HELLO_CHAT.messages });
    const entries = async () =>
      (
        (await send(gateway, "GET", "/stats", { headers: { authorization: `Bearer ${PLAIN_KEY}` } })).json as {
          cache: { entries: number };
        }
      ).cache.entries;
    const refresh = () =>
      send(gateway, "POST", "/admin/models/refresh", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

    assert.equal((await ask()).status, 200);
    assert.equal(await entries(), 1);
    mock.enqueue(MODELS_ROUTE, { kind: "json", body: { object: "list", data: [{ id: "alpha-m" }] } });
    assert.equal((await refresh()).status, 200);
    assert.equal(await entries(), 1, "the same models: the answers are still reachable and kept");
    assert.equal((await ask()).headers["x-gateway-cache"], "hit");

    mock.enqueue(MODELS_ROUTE, {
      kind: "json",
      body: { object: "list", data: [{ id: "alpha-m" }, { id: "alpha-new" }] },
    });
    assert.equal((await refresh()).status, 200);
    assert.equal(await entries(), 0, "kept under the old model list: unreachable, freed at the refresh");
    assert.equal((await ask()).headers["x-gateway-cache"], "miss");
    assert.equal(await entries(), 1);
  });

  test("an answer still in flight across a reload that changed what decides answers is not kept in memory", async (t) => {
    const mock = await useMock(t);
    let served = 0;
    mock.setDefault(CHAT_ROUTE, (request) => {
      served += 1;
      const isSlow = served === 1 || (request.body as { temperature?: number }).temperature === 0.7;
      return { kind: "json", body: chatCompletion(`answer ${served}`, "alpha-m"), delayMs: isSlow ? 400 : 0 };
    });
    const gateway = await useGateway(t, configText(mock));
    const inFlight = chat(gateway);
    await mock.waitForRequests(1);
    writeFileSync(gateway.configPath, configText(mock).replace("{ id: alpha-m }", "{ id: alpha-m-2 }"));
    const reloaded = await send(gateway, "POST", "/admin/reload", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(reloaded.status, 200);
    assert.equal(contentOf(await inFlight), "answer 1");
    assert.equal(gateway.runtime.answers.summary.entries, 0, "no request on the new config could ever get it");
    assert.equal((await chat(gateway)).headers["x-gateway-cache"], "miss");
    assert.equal(gateway.runtime.answers.summary.entries, 1);

    // A reload that turns the cache off while an answer is on its way: nothing would ever look it up or expire it.
    const slow = chat(gateway, {}, PLAIN_KEY, { ...HELLO_CHAT, temperature: 0.7 });
    await mock.waitForRequests(3);
    const off = configText(mock, "cache:\n  enabled: false\n").replace("{ id: alpha-m }", "{ id: alpha-m-2 }");
    writeFileSync(gateway.configPath, off);
    assert.equal(
      (await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status,
      200,
    );
    assert.equal((await slow).status, 200);
    assert.equal(gateway.runtime.answers.summary.entries, 0, "kept by no one: not kept");
  });
});

describe("per-request controls with the cache shared through Redis", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, () => {
  test("another replica honours a kept answer's own time to live, its namespace, and only-if-cached", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedAnswers(mock);
    const clock = new ManualClock(Date.now());
    const shared = `cache:\n  enabled: true\nstate:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-controls:"\n`;
    const keeper = await useGateway(t, configText(mock, shared), { clock });
    const other = await useGateway(t, configText(mock, shared), { clock });
    const inA = { "x-gateway-cache-namespace": "tenant-a" };

    assertNotCached(await chat(other, { ...ONLY_IF_CACHED, ...inA }), "nothing kept yet");
    assert.equal(contentOf(await chat(keeper, { ...inA, "x-gateway-cache-ttl": "10" })), "answer 1");
    await waitUntil(async () => keeper.runtime.answers.summary.entries === 1);

    const given = await chat(other, { ...ONLY_IF_CACHED, ...inA });
    assert.equal(given.status, 200, given.text);
    assert.equal(given.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(given), "answer 1");
    assertNotCached(await chat(other, ONLY_IF_CACHED), "another namespace (none) on the other replica");

    clock.advance(10_000);
    assertNotCached(await chat(other, { ...ONLY_IF_CACHED, ...inA }), "past its own 10 s on the other replica");
    assert.equal(upstreamCalls(mock), 1);
  });
});
