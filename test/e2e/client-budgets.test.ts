// A client's own budgets (`server.api_keys` entries `{ key, name, limits }`): one greedy client cannot spend every
// provider's free tier. Over loopback: the refusal in the caller's protocol with retry-after, the upstream never
// asked; other clients unaffected; tokens counted as used; a slot per stream; shared by replicas through Redis.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import Anthropic from "@anthropic-ai/sdk";
import { ChatOpenAI } from "@langchain/openai";
import { generateText } from "ai";
import OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import { errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CHAT = "POST /v1/chat/completions";
const GREEDY_KEY = "greedy-secret-key";
const GREEDY_OLD_KEY = "greedy-old-secret-key";
const OTHER_KEY = "other-secret-key";
/** An unnamed key: what the operator scrapes /metrics with (a named client's key may not read it). */
const OPS_KEY = "ops-secret-key";
const START_MS = Date.UTC(2026, 0, 1, 12);

function config(upstreamUrl: string, limits: string, state = ""): string {
  return `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${GREEDY_KEY}, name: greedy, limits: ${limits} }
    - { key: ${GREEDY_OLD_KEY}, name: greedy }
    - { key: ${OTHER_KEY}, name: other }
    - ${OPS_KEY}
providers:
  - name: alpha
    base_url: ${upstreamUrl}
    api_key: sk-alpha-secret-key
    models:
      m: { id: alpha-m }
${state}`;
}

const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe("client budgets", () => {
  test("rpm: the client's third request in a minute is refused with retry-after, without an upstream request; other clients go on", async (t) => {
    const clock = new ManualClock(START_MS);
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ rpm: 2 }"), { clock });
    for (let index = 0; index < 4; index++) {
      upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    }
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
    clock.advance(15_000);
    // The client's other key shares its budget.
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_OLD_KEY))).status, 200);
    clock.advance(5_000);
    const refused = await postChat(gateway, { model: "m" }, as(GREEDY_KEY));
    assert.equal(refused.status, 429, refused.text);
    // The first request leaves the client's minute 40 s from now.
    assert.equal(refused.headers["retry-after"], "40");
    const error = errorOf(refused);
    assert.equal(error.code, "rate_limit_exceeded");
    assert.match(error.message, /^Client `greedy` is over its rpm budget \(2\/2/);
    assert.ok(!refused.text.includes(GREEDY_KEY));
    assert.equal(upstream.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 2);
    // Another client is not held by it.
    assert.equal((await postChat(gateway, { model: "m" }, as(OTHER_KEY))).status, 200);
    // The refusal is the client's record (a 429 the upstream never saw).
    const listed = await send(gateway, "GET", "/v1/gateway/requests?client=greedy", { headers: as(GREEDY_KEY) });
    const records = (listed.json as { data: { status: number; attempts: unknown[] }[] }).data;
    assert.deepEqual(
      records.map((record) => [record.status, record.attempts.length]),
      [
        [429, 0],
        [200, 1],
        [200, 1],
      ],
    );
    // Prometheus sees the client's window: what alerting on a client near its quota reads.
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: as(OPS_KEY) })).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_budget_remaining_requests", { scope: "client:greedy", window: "minute" }),
      0,
    );
    assert.equal(sumOf(metrics, "llm_gateway_budget_limit_requests", { scope: "client:greedy", window: "minute" }), 2);
    clock.set(START_MS + 60_000);
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
  });

  test("a daily budget spent: the SDK is told not to retry (x-should-retry: false) instead of retrying within seconds", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ rpd: 1 }"));
    upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: GREEDY_KEY, maxRetries: 2 });
    await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const refusal = await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "hi" }] })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.ok(refusal instanceof OpenAI.RateLimitError, String(refusal));
    assert.equal(refusal.headers.get("x-should-retry"), "false");
    assert.ok(Number(refusal.headers.get("retry-after")) > 60);
    // One refusal recorded: the SDK did not retry (without the header it sleeps the whole retry-after, then retries).
    const listed = await send(gateway, "GET", "/v1/gateway/requests", { headers: as(GREEDY_KEY) });
    const statuses = (listed.json as { data: { status: number }[] }).data.map((record) => record.status);
    assert.deepEqual(statuses, [429, 200]);
  });

  test("a daily budget spent, at every door and with every SDK: the call ends in seconds, not after the retry-after", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ rpd: 1 }"));
    upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
    const refusalsSince = async (count: number) => {
      const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100", { headers: as(GREEDY_KEY) });
      const records = (listed.json as { data: { status: number; endpoint: string }[] }).data;
      return records.slice(0, records.length - 1 - count).map((record) => `${record.endpoint} ${record.status}`);
    };
    const failure = (calling: Promise<unknown>) =>
      calling.then(
        () => assert.fail("the call succeeded over a spent budget"),
        (error: unknown) => error,
      );

    // The Messages door, Anthropic's SDK (it reads x-should-retry from the Anthropic-shaped error too).
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: GREEDY_KEY, maxRetries: 2 });
    const messages = await failure(
      anthropic.messages.create({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
    );
    assert.ok(messages instanceof Anthropic.RateLimitError, String(messages));
    assert.equal(messages.headers?.get("x-should-retry"), "false");
    assert.deepEqual(await refusalsSince(0), ["messages 429"]);

    // The Responses door, OpenAI's SDK.
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: GREEDY_KEY, maxRetries: 2 });
    const responses = await failure(openai.responses.create({ model: "m", input: "hi" }));
    assert.ok(responses instanceof OpenAI.RateLimitError, String(responses));
    assert.deepEqual(await refusalsSince(1), ["responses 429"]);

    // LangChain retries itself (the SDK's own retries off) and gives up at once on a retry-after over a minute.
    const langchain = new ChatOpenAI({ model: "m", apiKey: GREEDY_KEY, configuration: { baseURL: gateway.baseUrl } });
    const invoked = await failure(langchain.invoke("hi"));
    assert.equal((invoked as Error).name, "RateLimitCapacityError", String(invoked));
    assert.deepEqual(await refusalsSince(2), ["chat 429"]);

    // The AI SDK reads no x-should-retry: a retry-after over a minute falls back to its own backoff (2 s, 4 s), so
    // it asks twice more and then throws (docs/errors.md says so); it does not wait for the day to end either.
    const provider = createOpenAICompatible({ name: "gateway", baseURL: gateway.baseUrl, apiKey: GREEDY_KEY });
    const generated = await failure(generateText({ model: provider("m"), prompt: "hi" }));
    assert.match(String(generated), /Failed after 3 attempts/);
    assert.deepEqual(await refusalsSince(3), ["chat 429", "chat 429", "chat 429"]);
  });

  test("tpm counts what the requests used, not their max_tokens; a request larger than the whole budget is a 413", async (t) => {
    const clock = new ManualClock(START_MS);
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ tpm: 100 }"), { clock });
    for (let index = 0; index < 3; index++) {
      upstream.enqueue(CHAT, {
        kind: "json",
        body: chatCompletion("hi", "alpha-m", { prompt_tokens: 30, completion_tokens: 10 }),
      });
    }
    // 40 tokens used each (a max_tokens of 4000 is not charged): two fit in 100, the third does not.
    for (let index = 0; index < 2; index++) {
      const answered = await postChat(gateway, { model: "m", max_tokens: 4_000 }, as(GREEDY_KEY));
      assert.equal(answered.status, 200, answered.text);
      clock.advance(1_000);
    }
    const stats = await send(gateway, "GET", "/stats", { headers: as(GREEDY_KEY) });
    const greedy = (stats.json as { clients?: Record<string, { budgets: { unit: string; used: number }[] }> }).clients
      ?.greedy;
    assert.deepEqual(
      greedy?.budgets.map((window) => [window.unit, window.used]),
      [["tokens", 80]],
    );
    const refused = await postChat(
      gateway,
      { model: "m", messages: [{ role: "user", content: "word ".repeat(60) }] },
      as(GREEDY_KEY),
    );
    assert.equal(refused.status, 429, refused.text);
    assert.match(errorOf(refused).message, /over its tpm budget/);
    const tooLarge = await postChat(
      gateway,
      { model: "m", messages: [{ role: "user", content: "word ".repeat(400) }] },
      as(GREEDY_KEY),
    );
    assert.equal(tooLarge.status, 413, tooLarge.text);
    assert.equal(errorOf(tooLarge).code, "request_too_large");
    assert.equal(upstream.requests.length, 2);
  });

  test("concurrency: a stream holds the client's slot until it ends; the refusal comes in the Messages protocol too", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ concurrency: 1 }"));
    upstream.enqueue(CHAT, { kind: "sse", events: chatStream(["slow", " answer"], "alpha-m", { delayMs: 300 }) });
    upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const streaming = postChat(gateway, { model: "m", stream: true }, as(GREEDY_KEY));
    await upstream.waitForRequests(1);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: GREEDY_OLD_KEY, maxRetries: 0 });
    const refusal = await anthropic.messages
      .create({ model: "m", max_tokens: 50, messages: [{ role: "user", content: "hello" }] })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.ok(
      refusal instanceof Anthropic.RateLimitError,
      `expected a 429 in the Messages protocol: ${String(refusal)}`,
    );
    assert.match(refusal.message, /Client `greedy` is at its concurrency limit/);
    const streamed = await streaming;
    assert.equal(streamed.status, 200, streamed.text);
    assert.match(streamed.text, /slow/);
    // The stream ended: its slot is free.
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
  });

  test("a refusal at the concurrency limit names the later wait of a spent budget, or the 413 of one never to fit", async (t) => {
    const upstream = await useMock(t);
    /** A gateway whose greedy client has a slow stream in flight, holding its one slot, 10 s ago. */
    const busyGateway = async (limits: string) => {
      const clock = new ManualClock(START_MS);
      const gateway = await useGateway(t, config(upstream.baseUrl, limits), { clock });
      upstream.enqueue(CHAT, { kind: "sse", events: chatStream(["slow", " answer"], "alpha-m", { delayMs: 300 }) });
      const requestsBefore = upstream.requests.length;
      const streaming = postChat(gateway, { model: "m", stream: true }, as(GREEDY_KEY));
      await upstream.waitForRequests(requestsBefore + 1);
      clock.advance(10_000);
      return { gateway, streaming };
    };
    const spent = await busyGateway("{ rpm: 1, concurrency: 1 }");
    // Before: "at its concurrency limit: retry in 1 s", and the retry a second later met the rpm for 49 s more.
    const refused = await postChat(spent.gateway, { model: "m" }, as(GREEDY_KEY));
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "50");
    assert.match(errorOf(refused).message, /^Client `greedy` is over its rpm budget \(1\/1\): retry in 50 s\.$/);
    assert.equal((await spent.streaming).status, 200);
    const small = await busyGateway("{ tpm: 100, concurrency: 1 }");
    // Larger than the whole tpm: no wait lets it through, busy slot or not (before: a 429 to retry in 1 s).
    const tooLarge = await postChat(
      small.gateway,
      { model: "m", messages: [{ role: "user", content: "word ".repeat(400) }] },
      as(GREEDY_KEY),
    );
    assert.equal(tooLarge.status, 413, tooLarge.text);
    assert.equal(errorOf(tooLarge).code, "request_too_large");
    // A request that fits is still told the slot's own short wait.
    const fits = await postChat(small.gateway, { model: "m" }, as(GREEDY_KEY));
    assert.equal(fits.status, 429, fits.text);
    assert.equal(fits.headers["retry-after"], "1");
    assert.match(errorOf(fits).message, /at its concurrency limit/);
    assert.equal((await small.streaming).status, 200);
    assert.equal(upstream.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 2);
  });

  test("rpm and tpm both spent: a request larger than the whole tpm is a 413 at once; one that fits is told the later window", async (t) => {
    const clock = new ManualClock(START_MS);
    const upstream = await useMock(t);
    const gateway = await useGateway(t, config(upstream.baseUrl, "{ rpm: 2, tpm: 100 }"), { clock });
    // 10 tokens used at START, 80 at START + 30 s (the charge becomes what the request used).
    for (const [prompt, completion] of [
      [5, 5],
      [70, 10],
      [10, 10],
    ] as const) {
      upstream.enqueue(CHAT, {
        kind: "json",
        body: chatCompletion("hi", "alpha-m", { prompt_tokens: prompt, completion_tokens: completion }),
      });
    }
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
    clock.advance(30_000);
    assert.equal((await postChat(gateway, { model: "m" }, as(GREEDY_KEY))).status, 200);
    clock.advance(20_000);
    // The rpm frees in 10 s. Before, it was the refusal (checked first): "retry in 10 s", and the retry got the 413.
    const tooLarge = await postChat(
      gateway,
      { model: "m", messages: [{ role: "user", content: "word ".repeat(400) }] },
      as(GREEDY_KEY),
    );
    assert.equal(tooLarge.status, 413, tooLarge.text);
    assert.match(errorOf(tooLarge).message, /client `greedy` \(over its tpm budget \(90\/100 tokens, needs \d{3}\)\)/);
    // ~44 tokens fit the tpm, not beside the 80 counted until START + 90 s: the tpm's 40 s, not the rpm's 10 s.
    const fitting = { model: "m", messages: [{ role: "user", content: "word ".repeat(40) }] };
    const refused = await postChat(gateway, fitting, as(GREEDY_KEY));
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "40");
    assert.match(
      errorOf(refused).message,
      /^Client `greedy` is over its tpm budget \(90\/100 tokens, needs \d+\): retry in 40 s\.$/,
    );
    clock.set(START_MS + 90_000);
    assert.equal((await postChat(gateway, fitting, as(GREEDY_KEY))).status, 200);
    assert.equal(upstream.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 3);
  });

  test("through Redis too: a request larger than the tpm is a 413, and a spent rpm does not hide a spent rpd", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const clock = new ManualClock(START_MS);
    const redis = await useRedisServer(t);
    const upstream = await useMock(t);
    const state = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "client-binding:"\n`;
    const yaml = config(upstream.baseUrl, "{ rpm: 1, tpm: 50, rpd: 2 }", state);
    // Two replicas: what the second is told comes from the shared ledger, not from its own book.
    const first = await useGateway(t, yaml, { clock });
    const second = await useGateway(t, yaml, { clock });
    for (let index = 0; index < 2; index++) {
      upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    }
    assert.equal((await postChat(first, { model: "m" }, as(GREEDY_KEY))).status, 200);
    clock.advance(61_000);
    assert.equal((await postChat(first, { model: "m" }, as(GREEDY_KEY))).status, 200);
    clock.advance(9_000);
    const tooLarge = await postChat(
      second,
      { model: "m", messages: [{ role: "user", content: "word ".repeat(400) }] },
      as(GREEDY_KEY),
    );
    assert.equal(tooLarge.status, 413, tooLarge.text);
    // The rpm frees in 51 s, the day's 2 requests at midnight (11 h 58 m 50 s): the day binds.
    const refused = await postChat(second, { model: "m" }, as(GREEDY_KEY));
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], String(12 * 3_600 - 70));
    assert.match(errorOf(refused).message, /^Client `greedy` is over its rpd budget \(2\/2\)/);
    assert.equal(upstream.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 2);
  });

  test("a reload that renames a client forgets its counters, in the state file too; a client kept keeps its counts", async (t) => {
    const upstream = await useMock(t);
    upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const statePath = join(mkdtempSync(join(tmpdir(), "client-budgets-")), "state.db");
    const adminKey = "admin-secret-key-1";
    // A long flush interval: only the flush on close writes the state file.
    const yaml = (greedyName: string, otherRpd: number) => `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${adminKey}]
  api_keys:
    - { key: ${GREEDY_KEY}, name: ${greedyName}, limits: { rpd: 1 } }
    - { key: ${OTHER_KEY}, name: other, limits: { rpd: ${otherRpd} } }
    - ${OPS_KEY}
providers:
  - name: alpha
    base_url: ${upstream.baseUrl}
    api_key: sk-alpha-secret-key
    models:
      m: { id: alpha-m }
state:
  path: ${JSON.stringify(statePath)}
  flush_interval_ms: 3600000
`;
    const open = new Set<TestGateway>();
    t.after(async () => {
      for (const gateway of open) await gateway.close();
    });
    const start = async (yamlText: string) => {
      const gateway = await startTestGateway(yamlText);
      open.add(gateway);
      return gateway;
    };
    const close = async (gateway: TestGateway) => {
      open.delete(gateway);
      await gateway.close();
    };
    const usedByClient = async (gateway: TestGateway) => {
      const stats = await send(gateway, "GET", "/stats", { headers: as(OPS_KEY) });
      const clients = (stats.json as { clients: Record<string, { budgets: { used: number; limit: number }[] }> })
        .clients;
      return Object.fromEntries(
        Object.entries(clients).map(([name, client]) => [name, client.budgets.map((w) => `${w.used}/${w.limit}`)]),
      );
    };
    const persistedScopes = () => {
      const db = new DatabaseSync(statePath, { readOnly: true });
      try {
        return db
          .prepare("SELECT scope_id FROM budget_scopes")
          .all()
          .map((row) => String(row.scope_id))
          .filter((id) => id.startsWith("client:"))
          .sort();
      } finally {
        db.close();
      }
    };

    const first = await start(yaml("greedy", 5));
    assert.equal((await postChat(first, { model: "m" }, as(GREEDY_KEY))).status, 200);
    assert.equal((await postChat(first, { model: "m" }, as(GREEDY_KEY))).status, 429);
    assert.equal((await postChat(first, { model: "m" }, as(OTHER_KEY))).status, 200);
    assert.deepEqual(await usedByClient(first), { greedy: ["1/1"], other: ["1/5"] });

    // The key's client is renamed; the other client's limit changes. Reloaded from the file, as SIGHUP would.
    // The test gateway's own discovery section (its private cache dir) stays.
    const written = readFileSync(first.configPath, "utf8");
    writeFileSync(first.configPath, `${yaml("thrifty", 6)}${written.slice(written.search(/^discovery:/m))}`);
    const reloaded = await send(first, "POST", "/admin/reload", { headers: as(adminKey) });
    assert.equal(reloaded.status, 200, reloaded.text);
    assert.deepEqual(await usedByClient(first), { other: ["1/6"], thrifty: ["0/1"] });
    assert.equal((await postChat(first, { model: "m" }, as(GREEDY_KEY))).status, 200, "thrifty starts afresh");
    await close(first);
    assert.deepEqual(persistedScopes(), ["client:other", "client:thrifty"]);

    // Named `greedy` again (after a restart): its old day is gone, not found again in the state file.
    const second = await start(yaml("greedy", 5));
    assert.deepEqual(await usedByClient(second), { greedy: ["0/1"], other: ["1/5"] });
    assert.equal((await postChat(second, { model: "m" }, as(GREEDY_KEY))).status, 200);
  });

  test("two gateways on one Redis share a client's budget", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const upstream = await useMock(t);
    const state = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "client-budgets:"\n`;
    const yaml = config(upstream.baseUrl, "{ rpm: 3 }", state);
    const first = await useGateway(t, yaml);
    const second = await useGateway(t, yaml);
    for (let index = 0; index < 6; index++) {
      upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    }
    const statuses: number[] = [];
    for (let index = 0; index < 6; index++) {
      statuses.push((await postChat(index % 2 === 0 ? first : second, { model: "m" }, as(GREEDY_KEY))).status);
    }
    // Kept per process, each would have let 3 through.
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
  });
});
