// The answer cache across configs (pipeline/answer-fingerprint.ts): an answer is kept under the config that decided
// it, so a replica on another config (a rolling deploy) or this gateway after a reload never gives it, while
// replicas on the same config share it and a reload that changes nothing of it keeps it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { contentOf, HELLO_CHAT, waitUntil } from "../helpers/answer-cache-scene.ts";
import { CHAT_ROUTE, chatRequests, type RawResponse, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const ADMIN_KEY = "cache-config-admin-key";
const KEY = "cache-config-client-key";

/** `model` is the YAML of the model entry `m` (its upstream id, its body rules); `rest` the sections after. */
function configText(mock: MockUpstream, model: string, rest = ""): string {
  return `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
  api_keys: [${KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-cache-config
    models:
      m: ${model}
cache:
  enabled: true
${rest}`;
}

/** Every answer is numbered; the first one waits `firstDelayMs` (a request in flight across a reload). */
function numberedAnswers(mock: MockUpstream, firstDelayMs = 0): void {
  let served = 0;
  mock.setDefault(CHAT_ROUTE, () => {
    served += 1;
    const delayMs = served === 1 ? firstDelayMs : 0;
    return { kind: "json", body: chatCompletion(`answer ${served}`, "alpha-m"), delayMs };
  });
}

function chat(gateway: { url: string }): Promise<RawResponse> {
  return send(gateway as never, "POST", "/v1/chat/completions", {
    body: HELLO_CHAT,
    headers: { authorization: `Bearer ${KEY}` },
  });
}

/** A field of the body the mock got in its `index`th chat request. */
function sentField(mock: MockUpstream, index: number, field: string): unknown {
  const body = chatRequests(mock)[index]?.body;
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[field] : undefined;
}

function reload(gateway: { url: string }): Promise<RawResponse> {
  return send(gateway as never, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}

describe("answer cache and the config", () => {
  test("an answer from a request still in flight when a reload changed the model's body rules is not given after it", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock, 400);
    const gateway = await useGateway(t, configText(mock, "{ id: alpha-m }"));
    const inFlight = chat(gateway);
    await waitUntil(async () => chatRequests(mock).length === 1);
    writeFileSync(gateway.configPath, configText(mock, "{ id: alpha-m, body: { override: { temperature: 0.1 } } }"));
    assert.equal((await reload(gateway)).status, 200);
    assert.equal(contentOf(await inFlight), "answer 1");

    const after = await chat(gateway);
    assert.equal(after.headers["x-gateway-cache"], "miss", "kept under the old rules: not this config's answer");
    assert.equal(contentOf(after), "answer 2");
    assert.equal(sentField(mock, 1, "temperature"), 0.1);
    assert.equal((await chat(gateway)).headers["x-gateway-cache"], "hit", "the new config's answer is kept");

    // A reload that changes nothing that decides answers (a time to live, a timeout) keeps them.
    writeFileSync(
      gateway.configPath,
      configText(mock, "{ id: alpha-m, body: { override: { temperature: 0.1 } } }", "  ttl_ms: 600000\n"),
    );
    assert.equal((await reload(gateway)).status, 200);
    const kept = await chat(gateway);
    assert.equal(kept.headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(kept), "answer 2");
    assert.equal(chatRequests(mock).length, 2);
  });

  test("a request that queued across a reload is served on the new config, and its answer kept under it", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock, 400);
    const queueing = "routing:\n  queue_timeout_ms: 3000\n";
    const gateway = await useGateway(t, configText(mock, "{ id: alpha-m, limits: { concurrency: 1 } }", queueing));
    const holder = chat(gateway);
    await waitUntil(async () => chatRequests(mock).length === 1);
    const queued = chat(gateway);
    await waitUntil(async () => gateway.runtime.queuedRequests === 1);
    writeFileSync(
      gateway.configPath,
      configText(
        mock,
        "{ id: alpha-m, limits: { concurrency: 1 }, body: { override: { temperature: 0.1 } } }",
        queueing,
      ),
    );
    assert.equal((await reload(gateway)).status, 200);
    assert.equal(contentOf(await holder), "answer 1");
    assert.equal(contentOf(await queued), "answer 2");
    assert.equal(sentField(mock, 1, "temperature"), 0.1, "planned and sent on the new config");

    const next = await chat(gateway);
    assert.equal(next.headers["x-gateway-cache"], "hit", "its answer was kept under the new config's key");
    assert.equal(contentOf(next), "answer 2");
  });

  test("a model repointed to another upstream id does not get the old id's answer after a reload", async (t) => {
    const mock = await useMock(t);
    numberedAnswers(mock);
    const gateway = await useGateway(t, configText(mock, "{ id: alpha-m }"));
    assert.equal(contentOf(await chat(gateway)), "answer 1");
    writeFileSync(gateway.configPath, configText(mock, "{ id: alpha-m-2 }"));
    assert.equal((await reload(gateway)).status, 200);
    const after = await chat(gateway);
    assert.equal(after.headers["x-gateway-cache"], "miss");
    assert.equal(sentField(mock, 1, "model"), "alpha-m-2");
  });
});

describe("answer cache shared through Redis, replicas on different configs", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, () => {
  test("a replica with other body rules for the same model never gets the first one's answer; one with the same config does", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedAnswers(mock);
    const shared = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-config:"\n`;
    const plain = configText(mock, "{ id: alpha-m }", shared);
    const ruled = configText(mock, "{ id: alpha-m, body: { defaults: { temperature: 0 } } }", shared);
    const first = await useGateway(t, plain);
    const sameConfig = await useGateway(t, plain);
    const otherRules = await useGateway(t, ruled);

    assert.equal((await chat(first)).headers["x-gateway-cache"], "miss");
    await waitUntil(async () => first.runtime.answers.summary.entries === 1);

    const other = await chat(otherRules);
    assert.equal(other.headers["x-gateway-cache"], "miss", "another config's answer is not this one's");
    assert.equal(contentOf(other), "answer 2");
    assert.equal(sentField(mock, 1, "temperature"), 0);

    const same = await chat(sameConfig);
    assert.equal(same.headers["x-gateway-cache"], "hit", "replicas on the same config still share answers");
    assert.equal(contentOf(same), "answer 1");

    // A reload of a caching replica to another config leaves the fleet's rows to the replicas still on theirs.
    writeFileSync(sameConfig.configPath, ruled);
    assert.equal((await reload(sameConfig)).status, 200);
    await waitUntil(async () => otherRules.runtime.answers.summary.entries === 2);
    assert.equal((await chat(sameConfig)).headers["x-gateway-cache"], "hit");
    assert.equal(contentOf(await chat(first)), "answer 1");
    assert.equal(chatRequests(mock).length, 2);
  });
});

describe("answer cache shared through Redis, /stats", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("a replica that kept nothing shows the fleet's entries and bytes, at most a second old", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedAnswers(mock);
    const shared = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-stats:"\n`;
    const keeper = await useGateway(t, configText(mock, "{ id: alpha-m }", shared));
    const watcher = await useGateway(t, configText(mock, "{ id: alpha-m }", shared));
    const cacheOf = async (gateway: { url: string }) =>
      (
        (await send(gateway as never, "GET", "/stats", { headers: { authorization: `Bearer ${KEY}` } })).json as {
          cache: { entries: number; bytes: number; shared: boolean };
        }
      ).cache;
    assert.deepEqual(await cacheOf(watcher), { entries: 0, bytes: 0, hits: 0, misses: 0, shared: true });

    await chat(keeper);
    await waitUntil(async () => keeper.runtime.answers.summary.entries === 1);
    // The figures are read from Redis at most once a second: the other replica's put is seen within about that.
    await waitUntil(async () => (await cacheOf(watcher)).entries === 1);
    const one = await cacheOf(watcher);
    assert.ok(one.bytes > 0);
    assert.equal(one.bytes, (await cacheOf(keeper)).bytes);

    const cleared = await send(keeper, "POST", "/admin/cache/clear", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(cleared.status, 200);
    await waitUntil(async () => (await cacheOf(watcher)).entries === 0);

    // Redis gone: /stats still answers, with the figures last seen.
    await redis.kill();
    const stats = await send(watcher, "GET", "/stats", { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(stats.status, 200);
    assert.equal((stats.json as { cache: { entries: number } }).cache.entries, 0);
  });

  test("a dashboard polling /stats costs Redis one read a second, however often it asks", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await useMock(t);
    numberedAnswers(mock);
    const clock = new ManualClock(Date.now());
    const shared = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cache-stats-poll:"\n`;
    const gateway = await useGateway(t, configText(mock, "{ id: alpha-m }", shared), { clock });
    const entries = async () =>
      (
        (await send(gateway as never, "GET", "/stats", { headers: { authorization: `Bearer ${KEY}` } })).json as {
          cache: { entries: number };
        }
      ).cache.entries;
    await chat(gateway);
    await waitUntil(async () => gateway.runtime.answers.summary.entries === 1);
    const monitor = await watchRedis(t, redis.port);
    // The cache's count of its rows: other stores' commands (budgets, flushes) are not this one's.
    const countReads = () =>
      monitor.lines().filter((line) => /"zcard" "cache-stats-poll:\{answers\}"/i.test(line)).length;

    const polls = await Promise.all(Array.from({ length: 10 }, () => entries()));
    for (let index = 0; index < 10; index += 1) polls.push(await entries());
    assert.deepEqual(new Set(polls), new Set([1]));
    // MONITOR's lines come a moment after the commands.
    await waitUntil(async () => countReads() >= 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(countReads(), 1, "twenty polls within a second: one Redis read, shared by those at once");

    clock.advance(1_000);
    assert.equal(await entries(), 1);
    await waitUntil(async () => countReads() === 2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(countReads(), 2, "a second later the figure is read again, once");
  });
});

/** Every command the test's redis-server gets from now on (`redis-cli monitor`), as the server itself saw them. */
async function watchRedis(t: TestContext, port: number): Promise<{ lines(): string[] }> {
  const child = spawn("redis-cli", ["-p", String(port), "monitor"], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => {
    child.kill("SIGKILL");
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  // MONITOR answers OK once it watches.
  await waitUntil(async () => output.startsWith("OK"));
  return { lines: () => output.split("\n") };
}
