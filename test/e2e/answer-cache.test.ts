// The exact-match answer cache (`cache.enabled`, docs/routing.md "Answer cache"): a repeated JSON request gets
// the kept answer without an upstream call, over every front door; streams, errors, other clients and other
// bodies do not; `Cache-Control` steers it per request; the record, the metrics and /stats say what happened.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import {
  cacheClientsConfig,
  contentOf,
  HELLO_CHAT,
  numberedChatAnswers,
  waitUntil,
} from "../helpers/answer-cache-scene.ts";
import { CHAT_ROUTE, chatRequests, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const ADMIN_KEY = "cache-admin-key-1";
const TEAM_A_KEY = "cache-team-a-key";
const TEAM_B_KEY = "cache-team-b-key";
const PLAIN_KEY = "cache-plain-key";
const KEYS = { admin: ADMIN_KEY, plain: PLAIN_KEY, teamA: TEAM_A_KEY, teamB: TEAM_B_KEY };

function configText(mock: MockUpstream, cache: string): string {
  return cacheClientsConfig(mock, { keys: KEYS, providerKey: "sk-alpha-cache-secret", cache });
}

const ON = "cache:\n  enabled: true\n";

function chat(gateway: { url: string }, body: object, headers: Record<string, string> = {}, key = PLAIN_KEY) {
  return send(gateway as never, "POST", "/v1/chat/completions", {
    body,
    headers: { authorization: `Bearer ${key}`, ...headers },
  });
}

describe("answer cache", () => {
  test("a repeated JSON chat request gets the kept answer, marked, without an upstream call; another body, a stream or the cache off do not", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));

    const first = await chat(gateway, HELLO_CHAT);
    assert.equal(first.status, 200);
    assert.equal(first.headers["x-gateway-cache"], "miss");
    const second = await chat(gateway, HELLO_CHAT);
    assert.equal(second.status, 200);
    assert.equal(second.headers["x-gateway-cache"], "hit");
    assert.equal(second.headers["x-gateway-attempts"], "0");
    assert.equal(second.headers["x-gateway-provider"], "alpha");
    assert.equal(second.headers["x-gateway-model"], "alpha-m");
    assert.match(second.headers.age ?? "", /^\d+$/);
    assert.equal(second.text, first.text, "the kept answer, byte for byte");
    assert.equal(chatRequests(mock).length, 1, "the second request never reached the provider");

    // Spacing is not part of the request; every field is.
    const spaced = await send(gateway, "POST", "/v1/chat/completions", {
      body: JSON.stringify(HELLO_CHAT, null, 2),
      headers: { authorization: `Bearer ${PLAIN_KEY}` },
    });
    assert.equal(spaced.headers["x-gateway-cache"], "hit");
    const warmer = await chat(gateway, { ...HELLO_CHAT, temperature: 0.5 });
    assert.equal(warmer.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(warmer), "answer 2");

    // A stream is another request (its body says stream: true): it is kept apart from the JSON answer.
    const streamed = await chat(gateway, { ...HELLO_CHAT, stream: true });
    assert.equal(streamed.status, 200);
    assert.match(streamed.text, /stream 3/);
    assert.equal(streamed.headers["x-gateway-cache"], "miss");
    assert.equal(chatRequests(mock).length, 3);
    // The record of a hit: no candidates, no attempts, no tokens; the metric counts hits and misses.
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10", {
      headers: { authorization: `Bearer ${PLAIN_KEY}` },
    });
    const records = (listed.json as { data: { cache?: string; attempts: unknown[]; candidates: unknown[] }[] }).data;
    const hits = records.filter((record) => record.cache === "hit");
    assert.equal(hits.length, 2);
    for (const hit of hits) {
      assert.deepEqual(hit.attempts, []);
      assert.deepEqual(hit.candidates, []);
    }
    assert.equal(records.filter((record) => record.cache === "miss").length, 3);
    const metrics = parsePrometheusText(
      (await send(gateway, "GET", "/metrics", { headers: { authorization: `Bearer ${PLAIN_KEY}` } })).text,
    );
    assert.equal(sumOf(metrics, "llm_gateway_cache_lookups_total", { result: "hit" }), 2);
    assert.equal(sumOf(metrics, "llm_gateway_cache_lookups_total", { result: "miss" }), 3);
    const stats = (await send(gateway, "GET", "/stats", { headers: { authorization: `Bearer ${PLAIN_KEY}` } }))
      .json as { cache?: { entries: number; hits: number; misses: number } };
    assert.equal(stats.cache?.entries, 3);
    assert.equal(stats.cache?.hits, 2);
  });

  test("a repeated stream gets the kept chunks, as first sent; a stream cut short, or continued on another upstream, is not kept", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));
    const body = { ...HELLO_CHAT, stream: true, stream_options: { include_usage: true } };
    const first = await chat(gateway, body);
    assert.equal(first.headers["x-gateway-cache"], "miss");
    assert.match(first.text, /stream 1/);
    const second = await chat(gateway, body);
    assert.equal(second.headers["x-gateway-cache"], "hit");
    assert.match(second.headers["content-type"] ?? "", /^text\/event-stream/);
    assert.equal(second.text, first.text, "the same events, the usage chunk and [DONE] included");
    assert.equal(chatRequests(mock).length, 1);

    // Through the Anthropic SDK: its stream of the kept chunks is a valid Messages stream.
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: PLAIN_KEY, maxRetries: 0 });
    const message = { model: "m", max_tokens: 64, messages: [{ role: "user" as const, content: "Stream it" }] };
    const streamed1 = await anthropic.messages.stream(message).finalMessage();
    const streamed2 = anthropic.messages.stream(message);
    const final2 = await streamed2.finalMessage();
    assert.deepEqual(final2.content, streamed1.content);
    assert.equal(chatRequests(mock).length, 2);
    // And through the openai SDK's Responses stream: a complete response from the kept chunks.
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: PLAIN_KEY, maxRetries: 0 });
    const responses1 = await openai.responses.stream({ model: "m", input: "Stream a response" }).finalResponse();
    const responses2 = await openai.responses.stream({ model: "m", input: "Stream a response" }).finalResponse();
    assert.equal(responses2.output_text, responses1.output_text);
    assert.equal(responses2.status, "completed");
    assert.notEqual(responses2.id, responses1.id);
    assert.equal(chatRequests(mock).length, 3);

    // A stream the upstream cuts (and no other candidate continues) is not kept: the next one goes upstream.
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["half "], "alpha-m").slice(0, 2), end: "destroy" });
    const cutBody = { ...HELLO_CHAT, stream: true, temperature: 0.9 };
    await chat(gateway, cutBody);
    const upstreamCalls = chatRequests(mock).length;
    assert.ok(upstreamCalls >= 4, "the cut stream reached the upstream");
    const after = await chat(gateway, cutBody);
    assert.equal(after.headers["x-gateway-cache"], "miss");
    assert.equal(chatRequests(mock).length, upstreamCalls + 1);
  });

  test("off by default: the same request twice reaches the provider twice, and no cache header is sent", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ""));
    const first = await chat(gateway, HELLO_CHAT);
    const second = await chat(gateway, HELLO_CHAT);
    assert.equal(contentOf(first), "answer 1");
    assert.equal(contentOf(second), "answer 2");
    assert.equal(first.headers["x-gateway-cache"], undefined);
    assert.equal(second.headers["x-gateway-cache"], undefined);
    assert.equal(chatRequests(mock).length, 2);
  });

  test("Cache-Control: no-cache asks for a fresh answer (kept for the next); no-store leaves the cache out", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));
    await chat(gateway, HELLO_CHAT);
    const fresh = await chat(gateway, HELLO_CHAT, { "cache-control": "no-cache" });
    assert.equal(contentOf(fresh), "answer 2");
    assert.equal(fresh.headers["x-gateway-cache"], undefined);
    const next = await chat(gateway, HELLO_CHAT);
    assert.equal(next.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(next), "answer 2", "the fresh answer replaced the older one");
    const unstored = await chat(gateway, HELLO_CHAT, { "cache-control": "no-store" });
    assert.equal(contentOf(unstored), "answer 3");
    const after = await chat(gateway, HELLO_CHAT);
    assert.equal(contentOf(after), "answer 2", "a no-store answer is not kept");
    assert.equal(chatRequests(mock).length, 3);
  });

  test("one named client never gets another's kept answer; the same client does", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));
    const a1 = await chat(gateway, HELLO_CHAT, {}, TEAM_A_KEY);
    const b1 = await chat(gateway, HELLO_CHAT, {}, TEAM_B_KEY);
    const a2 = await chat(gateway, HELLO_CHAT, {}, TEAM_A_KEY);
    assert.equal(contentOf(a1), "answer 1");
    assert.equal(b1.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(b1), "answer 2");
    assert.equal(a2.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(a2), "answer 1");
  });

  test("an upstream error is never kept: the next identical request is tried again", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, configText(mock, ON));
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "bad request", type: "invalid_request_error", param: null, code: null } },
    });
    const failed = await chat(gateway, HELLO_CHAT);
    assert.equal(failed.status, 400);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("recovered", "alpha-m") });
    const retried = await chat(gateway, HELLO_CHAT);
    assert.equal(retried.status, 200);
    assert.equal(contentOf(retried), "recovered");
    assert.equal(retried.headers["x-gateway-cache"], "miss");
  });

  test("answers expire after ttl_ms; the oldest go first past max_entries", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const clock = new ManualClock(Date.now());
    const gateway = await useGateway(t, configText(mock, `${ON}  ttl_ms: 60000\n  max_entries: 2\n`), { clock });
    await chat(gateway, HELLO_CHAT);
    clock.advance(59_000);
    assert.equal((await chat(gateway, HELLO_CHAT)).headers["x-gateway-cache"], "hit");
    clock.advance(1_000);
    const expired = await chat(gateway, HELLO_CHAT);
    assert.equal(expired.headers["x-gateway-cache"], "miss");
    assert.equal(contentOf(expired), "answer 2");
    // Two more bodies: the first one is the oldest of three and is dropped.
    await chat(gateway, { ...HELLO_CHAT, temperature: 0.1 });
    await chat(gateway, { ...HELLO_CHAT, temperature: 0.2 });
    assert.equal((await chat(gateway, HELLO_CHAT)).headers["x-gateway-cache"], "miss");
    assert.equal((await chat(gateway, { ...HELLO_CHAT, temperature: 0.2 })).headers["x-gateway-cache"], "hit");
  });

  test("embeddings, the Responses API and Anthropic Messages get kept answers too, each in its own protocol", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: PLAIN_KEY, maxRetries: 0 });

    const vectors1 = await openai.embeddings.create({ model: "e", input: ["one", "two"] }).withResponse();
    const vectors2 = await openai.embeddings.create({ model: "e", input: ["one", "two"] }).withResponse();
    assert.equal(vectors2.response.headers.get("x-gateway-cache"), "hit");
    assert.deepEqual(vectors2.data.data, vectors1.data.data);
    assert.equal(mock.requests.filter((request) => request.path === "/v1/embeddings").length, 1);

    const response1 = await openai.responses.create({ model: "m", input: "Say hello" });
    const response2 = await openai.responses.create({ model: "m", input: "Say hello" }).withResponse();
    assert.equal(response2.response.headers.get("x-gateway-cache"), "hit");
    assert.equal(response1.output_text, "answer 1");
    assert.equal(response2.data.output_text, "answer 1");
    // Each is a response of its own: both kept, and a conversation goes on from the second.
    assert.notEqual(response2.data.id, response1.id);
    assert.equal((await openai.responses.retrieve(response1.id)).output_text, "answer 1");
    const followUp = await openai.responses.create({
      model: "m",
      input: "And then?",
      previous_response_id: response2.data.id,
    });
    assert.equal(followUp.output_text, "answer 2");

    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: PLAIN_KEY, maxRetries: 0 });
    const message = { model: "m", max_tokens: 64, messages: [{ role: "user" as const, content: "Hi there" }] };
    const answer1 = await anthropic.messages.create(message);
    const answer2 = await anthropic.messages.create(message).withResponse();
    assert.equal(answer2.response.headers.get("x-gateway-cache"), "hit");
    assert.deepEqual(answer2.data.content, answer1.content);
    assert.equal(
      chatRequests(mock).length,
      3,
      "one chat call for the Responses pair, one for its follow-up, one for the Messages pair",
    );
  });

  test("POST /admin/cache/clear empties it; a reload to enabled: false drops what it kept and stops keeping", async (t) => {
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const gateway = await useGateway(t, configText(mock, ON));
    await chat(gateway, HELLO_CHAT);
    assert.equal((await chat(gateway, HELLO_CHAT)).headers["x-gateway-cache"], "hit");
    const refused = await send(gateway, "POST", "/admin/cache/clear", {
      headers: { authorization: `Bearer ${PLAIN_KEY}` },
    });
    assert.equal(refused.status, 403, "a client key cannot empty the cache");
    const cleared = await send(gateway, "POST", "/admin/cache/clear", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.deepEqual(cleared.json, { status: "ok", dropped: 1 });
    assert.equal((await chat(gateway, HELLO_CHAT)).headers["x-gateway-cache"], "miss");

    writeFileSync(gateway.configPath, configText(mock, "cache:\n  enabled: false\n"));
    const reload = await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(reload.status, 200);
    const after = await chat(gateway, HELLO_CHAT);
    assert.equal(after.headers["x-gateway-cache"], undefined);
    assert.equal(contentOf(after), "answer 3");
    assert.equal(gateway.runtime.answers.summary.entries, 0);
  });
});

describe("answer cache shared through Redis", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("an answer kept by one replica is given by another; a stopped Redis makes lookups miss, never fail", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedChatAnswers(mock);
    const shared = `${ON}state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "answer-cache:"\n`;
    const first = await useGateway(t, configText(mock, shared));
    const second = await useGateway(t, configText(mock, shared));

    const kept = await chat(first, HELLO_CHAT);
    assert.equal(kept.headers["x-gateway-cache"], "miss");
    // The put is not waited for by the request: give it its round trip.
    await waitUntil(async () => first.runtime.answers.summary.entries === 1);
    // A replica without the cache, on the same Redis, reloading its config: it leaves the fleet's cache alone.
    const uncached = await useGateway(
      t,
      configText(mock, `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "answer-cache:"\n`),
    );
    // Twice, a moment apart: a first clear could fail unseen on a connection still opening.
    for (const pauseMs of [0, 300]) {
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      const reloaded = await send(uncached, "POST", "/admin/reload", {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      assert.equal(reloaded.status, 200, reloaded.text);
    }
    const given = await chat(second, HELLO_CHAT);
    assert.equal(given.headers["x-gateway-cache"], "hit");
    assert.equal(given.text, kept.text);
    assert.equal(chatRequests(mock).length, 1);
    const stats = (await send(second, "GET", "/stats", { headers: { authorization: `Bearer ${PLAIN_KEY}` } })).json as {
      cache?: { shared: boolean; hits: number };
    };
    assert.equal(stats.cache?.shared, true);
    assert.ok((stats.cache?.hits ?? 0) >= 1);

    // One replica's admin clear empties the fleet's cache.
    const cleared = await send(first, "POST", "/admin/cache/clear", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.deepEqual(cleared.json, { status: "ok", dropped: 1 });
    assert.equal((await chat(second, HELLO_CHAT)).headers["x-gateway-cache"], "miss");

    await redis.kill();
    const unreachable = await chat(first, { ...HELLO_CHAT, temperature: 0.3 });
    assert.equal(unreachable.status, 200, "the cache is left out, the provider answers");
    assert.equal(unreachable.headers["x-gateway-cache"], "miss");
  });
});
