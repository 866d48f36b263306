// An early head (`server.stream_keepalive_ms`) while the answer cache's lookup in Redis is still on its way. A lookup
// settled by the time the head is due is said in it (`x-gateway-cache: miss`; a hit answers with its own head); one
// still under way does not hold it: the head goes out at the keep-alive interval the operator set, without
// `x-gateway-cache`. Until 2026-12-07 it waited for the lookup, up to `state.redis_command_timeout_ms`: with that
// longer than the interval, a slow Redis kept the client silent past it, and a proxy whose idle timeout lies between
// the two cut the connection. What the head could not say is the stream's first line, an SSE comment
// (`: x-gateway-cache: hit`), which clients skip. The lookup's round trip is slowed by a loopback proxy in front of a real redis-server
// (test/helpers/redis-proxy.ts), only for the lookup's commands.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CHAT_ROUTE, recordsOf } from "../helpers/e2e.ts";
import { KEEPALIVE_MS, keepAliveScene, postRaw, UPSTREAM_MODEL } from "../helpers/keepalive-scene.ts";
import { chatStream } from "../helpers/mock-upstream.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { postJson } from "../helpers/sse-client.ts";

/** Well past the keep-alive interval, well within the command timeout below. */
const SLOW_LOOKUP_MS = 10 * KEEPALIVE_MS;
/** Settled well before the head is due. */
const QUICK_LOOKUP_MS = KEEPALIVE_MS / 4;
const BODY = { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] };
const REDIS = { skip: isRedisInstalled() ? false : REDIS_MISSING };

async function slowLookupScene(t: TestContext, lookupMs: number) {
  const redis = await useRedisServer(t);
  let isSlow = false;
  // The lookup is one MULTI of ZSCORE and HGET (state/redis-answer-rows.ts get).
  const proxy = await useRedisProxy(t, redis.port, (text) =>
    isSlow && text.includes("zscore") ? sleep(lookupMs) : undefined,
  );
  const { mock, gateway } = await keepAliveScene(t, {
    cache: "{ enabled: true }",
    state: `{ path: ":memory:", redis_url: "${proxy.url}", redis_key_prefix: "slow-lookup:", redis_command_timeout_ms: 5000 }`,
  });
  // A first request on the cache's connection (its first lookup may come before the connection is ready: a miss at
  // once, as documented), its answer kept for BODY's next lookup.
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Kept", " once."], UPSTREAM_MODEL) });
  assert.equal((await postRaw(gateway, "/v1/chat/completions", BODY)).headers["x-gateway-cache"], "miss");
  return { mock, gateway, slow: () => (isSlow = true) };
}

/** Posts `body` as a stream: when its head came (ms after the send), its headers, and its body once it ended. */
async function timedHead(url: string, body: unknown, path = "/v1/chat/completions") {
  const startedAtMs = Date.now();
  const answer = await postJson(`${url}${path}`, body);
  const headMs = Date.now() - startedAtMs;
  const text = await answer.body.text();
  return { headMs, headers: answer.headers, text, totalMs: Date.now() - startedAtMs };
}

test(
  "a hit found after the keep-alive interval is given in the early head's stream, which did not wait for it",
  REDIS,
  async (t) => {
    const { mock, gateway, slow } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    // Kept once its put lands (not waited for): the next lookup finds it.
    for (let tries = 0; ; tries++) {
      const again = await postRaw(gateway, "/v1/chat/completions", BODY);
      if (again.headers["x-gateway-cache"] === "hit") break;
      assert.ok(tries < 50, "the answer was never kept");
      await sleep(50);
    }
    slow();
    const asked = mock.requests.length;
    const hit = await timedHead(gateway.url, BODY);
    assert.ok(hit.totalMs >= SLOW_LOOKUP_MS, "the lookup was slowed");
    // Before, the head waited for the lookup (SLOW_LOOKUP_MS), past the interval.
    assert.ok(
      hit.headMs < SLOW_LOOKUP_MS / 2,
      `the head went out at the interval, not after the lookup: ${hit.headMs} ms`,
    );
    assert.ok(hit.text.startsWith(": keep-alive\n\n"), `an early head:\n${hit.text}`);
    assert.equal(hit.headers["x-gateway-cache"], undefined, "nothing known when the head went out");
    // Said in the stream instead, before its first event (until 2026-12-07 only the record said it).
    const said = hit.text.indexOf(": x-gateway-cache: hit\n\n");
    assert.ok(said > 0 && said < hit.text.indexOf("data: "), `the hit is said before the events:\n${hit.text}`);
    assert.match(hit.text, /Kept/);
    assert.equal(mock.requests.length, asked, "no provider was asked");
    const { text } = await recordsOf(gateway, "chat");
    assert.equal((JSON.parse(text) as { data: { cache?: string }[] }).data[0]?.cache, "hit", "the record says the hit");
  },
);

test(
  "a hit found after the keep-alive interval on /v1/responses: its stream says it before its first event",
  REDIS,
  async (t) => {
    const { mock, gateway, slow } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    const body = { model: "m", stream: true, input: "hi" };
    mock.setDefault(CHAT_ROUTE, { kind: "sse", events: chatStream(["Kept", " once."], UPSTREAM_MODEL) });
    for (let tries = 0; ; tries++) {
      const again = await postRaw(gateway, "/v1/responses", body);
      if (again.headers["x-gateway-cache"] === "hit") break;
      assert.ok(tries < 50, "the answer was never kept");
      await sleep(50);
    }
    slow();
    const asked = mock.requests.length;
    const hit = await timedHead(gateway.url, body, "/v1/responses");
    assert.ok(hit.text.startsWith(": keep-alive\n\n"), `an early head:\n${hit.text}`);
    assert.equal(hit.headers["x-gateway-cache"], undefined, "nothing known when the head went out");
    const said = hit.text.indexOf(": x-gateway-cache: hit\n\n");
    assert.ok(said > 0 && said < hit.text.indexOf("event: "), `the hit is said before the events:\n${hit.text}`);
    assert.match(hit.text, /event: response\.completed/);
    assert.equal(mock.requests.length, asked, "no provider was asked");
  },
);

test(
  "a miss found after the keep-alive interval: the early head went out without `x-gateway-cache`",
  REDIS,
  async (t) => {
    const { mock, gateway, slow } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    slow();
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Fresh."], UPSTREAM_MODEL) });
    const miss = await timedHead(gateway.url, { ...BODY, messages: [{ role: "user", content: "new" }] });
    assert.ok(miss.totalMs >= SLOW_LOOKUP_MS, "the lookup was slowed");
    assert.ok(
      miss.headMs < SLOW_LOOKUP_MS / 2,
      `the head went out at the interval, not after the lookup: ${miss.headMs} ms`,
    );
    assert.ok(miss.text.startsWith(": keep-alive\n\n"), `an early head:\n${miss.text}`);
    assert.equal(miss.headers["x-gateway-cache"], undefined);
    assert.match(miss.text, /: x-gateway-cache: miss\n\n/, "said in the stream");
    assert.match(miss.text, /Fresh/);
  },
);

test(
  "a miss found before the head is due goes out with `x-gateway-cache: miss` in the early head",
  REDIS,
  async (t) => {
    const { mock, gateway, slow } = await slowLookupScene(t, QUICK_LOOKUP_MS);
    slow();
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      headersDelayMs: 3 * KEEPALIVE_MS,
      events: chatStream(["Fresh."], UPSTREAM_MODEL),
    });
    const miss = await timedHead(gateway.url, { ...BODY, messages: [{ role: "user", content: "new" }] });
    assert.ok(miss.text.startsWith(": keep-alive\n\n"), `the head went out early:\n${miss.text}`);
    assert.equal(miss.headers["x-gateway-cache"], "miss");
    assert.doesNotMatch(miss.text, /: x-gateway-cache/, "said once, in the head");
    assert.match(miss.text, /Fresh/);
  },
);
