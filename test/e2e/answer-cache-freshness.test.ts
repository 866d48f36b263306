// Per-request freshness of the answer cache (`Cache-Control: max-age=N`, pipeline/cache-control.ts) over every
// front door and with Redis, and what a hit costs (`x-gateway-cost: free`: no model was called).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import { contentOf, HELLO_CHAT, numberedChatAnswers } from "../helpers/answer-cache-scene.ts";
import { chatRequests, type RawResponse, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const KEY = "cache-freshness-key";

function configText(mock: MockUpstream, rest = ""): string {
  return `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-cache-freshness
    cost: paid
    models:
      m: { id: alpha-m }
routing:
  paid: allowed
cache:
  enabled: true
${rest}`;
}

/** Numbered answers (numberedChatAnswers) whose streams say only `stream N`. */
function numberedAnswers(mock: MockUpstream): void {
  numberedChatAnswers(mock, (served) => [`stream ${served}`]);
}

function chat(gateway: { url: string }, cacheControl?: string): Promise<RawResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${KEY}` };
  if (cacheControl !== undefined) headers["cache-control"] = cacheControl;
  return send(gateway as never, "POST", "/v1/chat/completions", { body: HELLO_CHAT, headers });
}

describe("Cache-Control: max-age on a request", () => {
  test("a kept answer older than max-age is a miss and the fresh one replaces it; younger is a hit; a bad value is ignored", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const clock = new ManualClock(Date.now());
    const gateway = await useGateway(t, configText(mock), { clock });
    await chat(gateway);
    clock.advance(10_000);

    const young = await chat(gateway, "max-age=30");
    assert.equal(young.headers["x-gateway-cache"], "hit");
    assert.equal(young.headers.age, "10");
    const exact = await chat(gateway, "max-age=10");
    assert.equal(exact.headers["x-gateway-cache"], "hit", "kept exactly N seconds ago is young enough");

    const old = await chat(gateway, "max-age=5");
    assert.equal(old.status, 200);
    assert.equal(old.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(old), "answer 2");
    const next = await chat(gateway);
    assert.equal(next.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(next), "answer 2", "the fresh answer replaced the older one");
    assert.equal(next.headers.age, "0");

    clock.advance(10_000);
    for (const malformed of ["max-age=abc", "max-age=-1", "max-age=1.5", "max-age=", 'max-age="5']) {
      const ignored = await chat(gateway, malformed);
      assert.equal(ignored.status, 200, malformed);
      assert.equal(ignored.headers["x-gateway-cache"], "hit", `${malformed} is ignored`);
    }
    const zero = await chat(gateway, "max-age=0");
    assert.equal(zero.headers["x-gateway-cache"], undefined, "max-age=0 looks nothing up, as no-cache");
    assert.equal(contentOf(zero), "answer 3");
    assert.equal(contentOf(await chat(gateway)), "answer 3", "and its answer is kept");
    assert.equal(chatRequests(mock).length, 3);

    // The SDKs' own per-request headers reach the cache through the other front doors too.
    clock.advance(10_000);
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: KEY, maxRetries: 0 });
    const viaSdk = await openai.chat.completions
      .create(
        { model: "m", messages: [{ role: "user", content: "Say hello" }] },
        { headers: { "cache-control": "max-age=5" } },
      )
      .withResponse();
    assert.equal(viaSdk.response.headers.get("x-gateway-cache"), "miss");
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: KEY, maxRetries: 0 });
    const message = { model: "m", max_tokens: 64, messages: [{ role: "user" as const, content: "Hi there" }] };
    await anthropic.messages.create(message);
    clock.advance(10_000);
    const fresh = await anthropic.messages
      .create(message, { headers: { "cache-control": "max-age=5" } })
      .withResponse();
    assert.equal(fresh.response.headers.get("x-gateway-cache"), "miss");
    const kept = await anthropic.messages
      .create(message, { headers: { "cache-control": "max-age=60" } })
      .withResponse();
    assert.equal(kept.response.headers.get("x-gateway-cache"), "hit");
  });
});

describe("Cache-Control: max-age with the cache in Redis", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("a shared answer older than max-age is a miss on another replica", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedAnswers(mock);
    const shared = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-freshness:"\n`;
    const first = await useGateway(t, configText(mock, shared));
    const second = await useGateway(t, configText(mock, shared));
    await chat(first);
    await waitUntil(() => first.runtime.answers.summary.entries === 1);
    assert.equal((await chat(second, "max-age=60")).headers["x-gateway-cache"], "hit");
    // The real clock: an answer kept over a second ago is older than max-age=1.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const old = await chat(second, "max-age=1");
    assert.equal(old.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(old), "answer 2");
    assert.equal(chatRequests(mock).length, 2);
  });
});

describe("what a hit costs", () => {
  test("a hit says x-gateway-cost: free although a paid model gave the first answer; its record names no model served", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const gateway = await useGateway(t, configText(mock));
    const first = await chat(gateway);
    assert.equal(first.headers["x-gateway-cost"], "paid");
    const hit = await chat(gateway);
    assert.equal(hit.headers["x-gateway-cache"], "hit");
    assert.equal(hit.headers["x-gateway-cost"], "free", "no model was called for it");
    assert.equal(hit.headers["x-gateway-provider"], "alpha", "who first answered is still named");

    const streamFirst = await send(gateway, "POST", "/v1/chat/completions", {
      body: { ...HELLO_CHAT, stream: true },
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(streamFirst.headers["x-gateway-cost"], "paid");
    const streamHit = await send(gateway, "POST", "/v1/chat/completions", {
      body: { ...HELLO_CHAT, stream: true },
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(streamHit.headers["x-gateway-cache"], "hit");
    assert.equal(streamHit.headers["x-gateway-cost"], "free");

    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10", {
      headers: { authorization: `Bearer ${KEY}` },
    });
    const records = (listed.json as { data: { cache?: string; servedBy?: { cost?: string } }[] }).data;
    const hits = records.filter((record) => record.cache === "hit");
    assert.equal(hits.length, 2);
    for (const record of hits) assert.equal(record.servedBy, undefined);
    assert.equal(records.filter((record) => record.servedBy?.cost === "paid").length, 2);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
