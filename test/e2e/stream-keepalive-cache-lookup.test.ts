// An early head (`server.stream_keepalive_ms`) while the answer cache's lookup in Redis is still on its way (a slow
// round trip, within `state.redis_command_timeout_ms`): the head must say what the lookup found, as a prompt answer's
// head does. It went out without `x-gateway-cache` at all: a hit was then given in that head's stream without
// `hit`, and a miss learned after it could no longer be said. The lookup's round trip is slowed by a loopback proxy
// in front of a real redis-server (test/helpers/redis-proxy.ts), only for the lookup's commands.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CHAT_ROUTE } from "../helpers/e2e.ts";
import { KEEPALIVE_MS, keepAliveScene, postRaw, UPSTREAM_MODEL } from "../helpers/keepalive-scene.ts";
import { chatStream } from "../helpers/mock-upstream.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

/** Well past the keep-alive interval, well within the command timeout below. */
const LOOKUP_MS = 3 * KEEPALIVE_MS;
const BODY = { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] };

async function slowLookupScene(t: TestContext) {
  const redis = await useRedisServer(t);
  let isSlow = false;
  // The lookup is one MULTI of ZSCORE and HGET (state/redis-answer-rows.ts get).
  const proxy = await useRedisProxy(t, redis.port, (text) =>
    isSlow && text.includes("zscore") ? sleep(LOOKUP_MS) : undefined,
  );
  const { mock, gateway } = await keepAliveScene(t, {
    cache: "{ enabled: true }",
    state: `{ path: ":memory:", redis_url: "${proxy.url}", redis_key_prefix: "slow-lookup:", redis_command_timeout_ms: 5000 }`,
  });
  return { mock, gateway, slow: () => (isSlow = true) };
}

test("a hit found after the keep-alive interval is answered with `x-gateway-cache: hit`", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const { mock, gateway, slow } = await slowLookupScene(t);
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Kept", " once."], UPSTREAM_MODEL) });
  const first = await postRaw(gateway, "/v1/chat/completions", BODY);
  assert.equal(first.headers["x-gateway-cache"], "miss");
  // Kept once its put lands (not waited for): the next lookup finds it.
  for (let tries = 0; ; tries++) {
    const again = await postRaw(gateway, "/v1/chat/completions", BODY);
    if (again.headers["x-gateway-cache"] === "hit") break;
    assert.ok(tries < 50, "the answer was never kept");
    await sleep(50);
  }
  slow();
  const asked = mock.requests.length;
  const startedAtMs = Date.now();
  const hit = await postRaw(gateway, "/v1/chat/completions", BODY);
  assert.ok(Date.now() - startedAtMs >= LOOKUP_MS, "the lookup was slowed");
  assert.equal(hit.headers["x-gateway-cache"], "hit", hit.text);
  assert.match(hit.text, /Kept/);
  assert.equal(mock.requests.length, asked, "no provider was asked");
  assert.doesNotMatch(hit.text, /^: keep-alive/, "the hit's own head, not an early one");
});

test("a miss found after the keep-alive interval goes out with `x-gateway-cache: miss` in the early head", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const { mock, gateway, slow } = await slowLookupScene(t);
  // A first request on the cache's connection (its first lookup may come before the connection is ready: a miss at
  // once, as documented), then the slowed one.
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Warm."], UPSTREAM_MODEL) });
  const warm = await postRaw(gateway, "/v1/chat/completions", {
    ...BODY,
    messages: [{ role: "user", content: "warm" }],
  });
  assert.equal(warm.headers["x-gateway-cache"], "miss");
  slow();
  mock.enqueue(CHAT_ROUTE, {
    kind: "sse",
    headersDelayMs: 3 * KEEPALIVE_MS,
    events: chatStream(["Fresh."], UPSTREAM_MODEL),
  });
  const startedAtMs = Date.now();
  const miss = await postRaw(gateway, "/v1/chat/completions", BODY);
  assert.ok(Date.now() - startedAtMs >= LOOKUP_MS + 3 * KEEPALIVE_MS, "the lookup was slowed");
  assert.ok(miss.text.startsWith(": keep-alive\n\n"), `the head went out early:\n${miss.text}`);
  assert.equal(miss.headers["x-gateway-cache"], "miss");
  assert.match(miss.text, /Fresh/);
});
