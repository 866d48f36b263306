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
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { keepAnswerFor } from "../helpers/answer-cache-scene.ts";
import { CHAT_ROUTE, recordsOf } from "../helpers/e2e.ts";
import { gate } from "../helpers/gates.ts";
import { KEEPALIVE_MS, keepAliveScene, postRaw, UPSTREAM_MODEL } from "../helpers/keepalive-scene.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { postJson, waitUntil } from "../helpers/sse-client.ts";

/**
 * How long a slowed lookup is held at most: well past the keep-alive interval, well within the command timeout below.
 * A scene that holds the lookup until the head came (`holdUntilHead`) releases it at once after the head: the head's
 * timing is then an ordering (it came while the lookup was held), not a bound a loaded machine could break.
 */
const SLOW_LOOKUP_MS = 25 * KEEPALIVE_MS;
/** Settled well before the head is due. */
const QUICK_LOOKUP_MS = KEEPALIVE_MS / 4;
const BODY = { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] };
const REDIS = { skip: isRedisInstalled() ? false : REDIS_MISSING };

async function slowLookupScene(t: TestContext, lookupMs: number) {
  const redis = await useRedisServer(t);
  let isSlow = false;
  let slowedLookups = 0;
  let heldLookups = 0;
  const headCame = gate();
  // The lookup is one MULTI of ZSCORE and HGET (state/redis-answer-rows.ts get); a Lua script naming ZSCORE (a kept
  // response's write, which re-stamps the rows it continues) is not it.
  const proxy = await useRedisProxy(t, redis.port, (text) =>
    isSlow && text.includes("zscore") && !text.includes("eval") ? heldLookup() : undefined,
  );
  // A slow lookup is held until the head came, or lookupMs (a gateway whose head waits for the lookup gets it then).
  async function heldLookup(): Promise<void> {
    slowedLookups++;
    heldLookups++;
    await (lookupMs === SLOW_LOOKUP_MS ? Promise.race([sleep(lookupMs), headCame.promise]) : sleep(lookupMs));
    heldLookups--;
  }
  const { mock, gateway } = await keepAliveScene(t, {
    cache: "{ enabled: true }",
    state: `{ path: ":memory:", redis_url: "${proxy.url}", redis_key_prefix: "slow-lookup:", redis_command_timeout_ms: 20000 }`,
  });
  // A first request on the cache's connection (its first lookup may come before the connection is ready: a miss at
  // once, as documented), its answer kept for BODY's next lookup.
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Kept", " once."], UPSTREAM_MODEL) });
  assert.equal((await postRaw(gateway, "/v1/chat/completions", BODY)).headers["x-gateway-cache"], "miss");
  return {
    mock,
    gateway,
    slow: () => (isSlow = true),
    /** Whether a slowed lookup was still held when the head came; then lets it go. */
    headCame: (): boolean => {
      const wasHeld = heldLookups > 0;
      headCame.open();
      return wasHeld;
    },
    slowedLookups: () => slowedLookups,
  };
}

/**
 * Posts `body` as a stream: whether its head came while the slowed lookup was still held (`headCame` of the scene,
 * which then releases it), its headers, and its body once it ended.
 */
async function heldHead(url: string, body: unknown, headCame: () => boolean, path = "/v1/chat/completions") {
  const answer = await postJson(`${url}${path}`, body);
  const isBeforeLookup = headCame();
  const text = await answer.body.text();
  return { isBeforeLookup, headers: answer.headers, text };
}

test(
  "a hit found after the keep-alive interval is given in the early head's stream, which did not wait for it",
  REDIS,
  async (t) => {
    const { mock, gateway, slow, headCame, slowedLookups } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    // Kept once its put lands (not waited for): the next lookup finds it.
    for (let tries = 0; ; tries++) {
      const again = await postRaw(gateway, "/v1/chat/completions", BODY);
      if (again.headers["x-gateway-cache"] === "hit") break;
      assert.ok(tries < 50, "the answer was never kept");
      await sleep(50);
    }
    slow();
    const asked = mock.requests.length;
    const hit = await heldHead(gateway.url, BODY, headCame);
    assert.equal(slowedLookups(), 1, "the lookup was slowed");
    // Before, the head waited for the lookup (SLOW_LOOKUP_MS), past the interval.
    assert.ok(hit.isBeforeLookup, "the head went out at the interval, not after the lookup");
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
    const { mock, gateway, slow, headCame, slowedLookups } = await slowLookupScene(t, SLOW_LOOKUP_MS);
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
    const hit = await heldHead(gateway.url, body, headCame, "/v1/responses");
    assert.equal(slowedLookups(), 1, "the lookup was slowed");
    assert.ok(hit.isBeforeLookup, "the head went out at the interval, not after the lookup");
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
    const { mock, gateway, slow, headCame, slowedLookups } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    slow();
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Fresh."], UPSTREAM_MODEL) });
    const miss = await heldHead(gateway.url, { ...BODY, messages: [{ role: "user", content: "new" }] }, headCame);
    assert.equal(slowedLookups(), 1, "the lookup was slowed");
    assert.ok(miss.isBeforeLookup, "the head went out at the interval, not after the lookup");
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
    const { mock, gateway, slow, headCame } = await slowLookupScene(t, QUICK_LOOKUP_MS);
    slow();
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      headersDelayMs: 3 * KEEPALIVE_MS,
      events: chatStream(["Fresh."], UPSTREAM_MODEL),
    });
    const miss = await heldHead(gateway.url, { ...BODY, messages: [{ role: "user", content: "new" }] }, headCame);
    assert.ok(miss.text.startsWith(": keep-alive\n\n"), `the head went out early:\n${miss.text}`);
    assert.equal(miss.headers["x-gateway-cache"], "miss");
    assert.doesNotMatch(miss.text, /: x-gateway-cache/, "said once, in the head");
    assert.match(miss.text, /Fresh/);
  },
);

test(
  "a kept JSON answer found after the early head (a shared row under a stream's key): an in-band error, the record still published",
  REDIS,
  async (t) => {
    const { mock, gateway, slow, headCame } = await slowLookupScene(t, SLOW_LOOKUP_MS);
    // In the order the validated body has: the key hashes its JSON text.
    const body = { model: "m", messages: [{ role: "user", content: "kept as JSON" }], stream: true };
    // A row another replica could have written: a JSON answer where this gateway keeps a stream's chunks. Given after
    // the head went out, it cannot be sent as the stream the client asked for (forwarding-route.ts).
    const bodyText = JSON.stringify(chatCompletion("Kept as JSON.", UPSTREAM_MODEL));
    const row = { api: "chat", form: "json", bodyText, status: 200, provider: "alpha", model: UPSTREAM_MODEL } as const;
    await keepAnswerFor(gateway, "chat", body, { ...row, cost: "free" });
    const records: RequestRecord[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    slow();
    const answer = await heldHead(gateway.url, body, headCame);
    assert.ok(answer.isBeforeLookup, "the head went out at the interval, not after the lookup");
    assert.match(answer.text, /^: keep-alive\n\n/);
    assert.match(answer.text, /data: \{"error":\{"message":"The answer could not be sent as a stream\."/);
    assert.equal(mock.requests.length, 1, "no provider was asked (only the scene's first request)");
    // The door hands the record to its subscribers itself on this path (JsonAnswer.releaseRecord): without that call
    // the request would leave none.
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.cache, "hit");
    // What the client got: the in-band 500, not the kept answer's 200.
    assert.equal(records[0]?.status, 500);
    assert.equal(records[0]?.outcome, "rejected");
    assert.equal(records[0]?.errorCode, "internal_error");
  },
);
