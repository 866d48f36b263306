// Several gateway processes sharing budgets and cooldowns through one real redis-server: each gateway is a
// separate OS process (`node src/main.ts serve --config ...`), so Redis is the only thing they share. A Redis that
// dies mid-run never fails a request; the gateways report it in /health and go back to Redis when it returns.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { request } from "undici";
import { scopeKeys } from "../../src/state/redis-keys.ts";
import { CHAT_ROUTE, chatRequests, useMock } from "../helpers/e2e.ts";
import { type GatewayProcess, startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, type RedisServer, useRedisServer } from "../helpers/redis-server.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;
const PREFIX = "e2e:";

/** The runs hash of a scope's one-minute window: its field `r` counts the requests inside the window. */
function minuteRunsKey(scopeId: string): string {
  const [, runs] = scopeKeys(PREFIX, scopeId, { dayStartMs: 0, monthStartMs: 0 }).sliding[1] ?? [];
  return runs ?? "";
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
}

async function chat(gateway: GatewayProcess): Promise<Answer> {
  const response = await request(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) as unknown };
}

const GUARD = "meta-llama/llama-guard-4-12b";

async function moderate(gateway: GatewayProcess, input: readonly string[]): Promise<Answer> {
  const response = await request(`${gateway.url}/v1/moderations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "guard", input }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) as unknown };
}

async function getJson(gateway: GatewayProcess, path: string): Promise<unknown> {
  const response = await request(`${gateway.url}${path}`);
  return JSON.parse(await response.body.text()) as unknown;
}

interface Health {
  status: string;
  state: { kind: string; isDegraded: boolean; detail: string };
}

function health(gateway: GatewayProcess): Promise<Health> {
  return getJson(gateway, "/health") as Promise<Health>;
}

async function cooldownOf(gateway: GatewayProcess, key: string): Promise<{ cause: string } | null> {
  const stats = (await getJson(gateway, "/stats")) as {
    deployments: { provider: string; model: string; cooldown: { cause: string } | null }[];
  };
  const row = stats.deployments.find((deployment) => `${deployment.provider}/${deployment.model}` === key);
  assert.ok(row !== undefined, `no /stats row for ${key}`);
  return row.cooldown;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** alpha (preferred, with `alphaLimits`) and, when given, beta (no limits) serving public model `m`. */
function configYaml(redis: RedisServer, alpha: MockUpstream, alphaLimits: string, beta?: MockUpstream): string {
  const betaYaml =
    beta === undefined
      ? ""
      : `  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta
    retries: 0
    models:
      m: { priority: 1 }
`;
  return `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
    limits: ${alphaLimits}
    models:
      m: { priority: 10 }
${betaYaml}routing:
  max_wait_for_better_ms: 0
state:
  redis_url: ${redis.url}
  redis_key_prefix: "${PREFIX}"
  # Exact shared counts are asserted: on a loaded test machine a 200 ms command could time out and fall back to
  # local state (by design), which would let more through than the shared budget.
  redis_command_timeout_ms: 2000
`;
}

function startGateways(t: TestContext, count: number, yaml: string): Promise<GatewayProcess[]> {
  return Promise.all(Array.from({ length: count }, () => startGatewayProcess(t, yaml)));
}

function logCount(gateway: GatewayProcess, pattern: RegExp): number {
  return gateway.logs.filter((line) => pattern.test(line.msg)).length;
}

describe("shared state through Redis, across gateway processes", { skip }, () => {
  test("rpm 10 shared by three processes: exactly 10 of 30 requests reach the upstream, the rest get 429", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    const gateways = await startGateways(t, 3, configYaml(redis, alpha, "{ rpm: 10 }"));
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) => chat(gateways[index % 3] as GatewayProcess)),
    );
    // A budget kept per process would have let all 30 through.
    assert.equal(chatRequests(alpha).length, 10, "the upstream saw exactly the shared budget");
    const served = answers.filter((answer) => answer.status === 200);
    const limited = answers.filter((answer) => answer.status === 429);
    assert.equal(served.length, 10);
    assert.equal(limited.length, 20);
    for (const answer of limited) {
      assert.match(String(answer.headers["retry-after"]), /^\d+$/, "a 429 says when to retry");
      assert.equal((answer.json as { error: { code: string } }).error.code, "rate_limit_exceeded");
    }
  });

  test("a Llama Guard model's rpm: 5 shared by two processes counts every call: never more than 5 calls a minute", async (t) => {
    const redis = await useRedisServer(t);
    const guard = await useMock(t);
    // A Llama Guard verdict for every call: the moderation of N inputs is N chat calls.
    guard.setDefault("POST /v1/chat/completions", { kind: "json", body: chatCompletion("safe", GUARD) });
    const yaml = `providers:
  - name: guardian
    base_url: ${guard.baseUrl}
    api_key: sk-guardian
    retries: 0
    models:
      guard: { id: "${GUARD}", limits: { rpm: 5 } }
routing:
  max_wait_for_better_ms: 0
state:
  redis_url: ${redis.url}
  redis_key_prefix: "${PREFIX}"
  redis_command_timeout_ms: 2000
`;
    const gateways = await startGateways(t, 2, yaml);
    // Three moderations of two inputs from each process: 12 calls asked for. Each process alone sees 2 requests
    // (4 calls) fit its own count; counted one per request in Redis, 4 of the 6 passed (8 calls).
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        moderate(gateways[index % 2] as GatewayProcess, [`a${index}`, `b${index}`]),
      ),
    );
    const served = answers.filter((answer) => answer.status === 200);
    assert.equal(chatRequests(guard).length, 4, "two moderations of two calls; a third would be the sixth call");
    assert.equal(served.length, 2);
    for (const answer of served) assert.equal((answer.json as { results: unknown[] }).results.length, 2);
    for (const answer of answers.filter((answer) => answer.status !== 200)) {
      assert.equal(answer.status, 429, JSON.stringify(answer.json));
      assert.equal((answer.json as { error: { code: string } }).error.code, "rate_limit_exceeded");
      assert.match(String(answer.headers["retry-after"]), /^\d+$/, "a 429 says when to retry");
    }
    // Redis's minute counts the calls, not the requests; a single input (one call) still fits the fifth.
    const admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    const counted = await admin.hget(minuteRunsKey("deployment:guardian/guard"), "r");
    admin.disconnect();
    assert.equal(counted, "4");
    const fifth = await moderate(gateways[1] as GatewayProcess, ["c"]);
    assert.equal(fifth.status, 200, JSON.stringify(fifth.json));
    assert.equal(chatRequests(guard).length, 5);
  });

  test("rpm 10 shared by three processes, with an unlimited second provider: 10 to alpha, 20 to beta", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateways = await startGateways(t, 3, configYaml(redis, alpha, "{ rpm: 10 }", beta));
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) => chat(gateways[index % 3] as GatewayProcess)),
    );
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array.from({ length: 30 }, () => 200),
    );
    assert.equal(chatRequests(alpha).length, 10);
    assert.equal(chatRequests(beta).length, 20);
    const byProvider = answers.map((answer) => answer.headers["x-gateway-provider"]);
    assert.equal(byProvider.filter((name) => name === "alpha").length, 10);
  });

  test("a 429 seen by one process makes the others (and one started later) skip that candidate", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    const beta = await useMock(t);
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const yaml = configYaml(redis, alpha, "{ rpd: 1000 }", beta);
    const [first, second] = (await startGateways(t, 2, yaml)) as [GatewayProcess, GatewayProcess];

    const failedOver = await chat(first);
    assert.equal(failedOver.status, 200);
    assert.equal(failedOver.headers["x-gateway-provider"], "beta");
    assert.equal(chatRequests(alpha).length, 1);
    await waitFor(async () => (await cooldownOf(second, "alpha/m")) !== null, 3_000, "the shared cooldown");
    assert.equal((await cooldownOf(second, "alpha/m"))?.cause, "rate_limited");

    const fromSecond = await chat(second);
    assert.equal(fromSecond.status, 200);
    assert.equal(fromSecond.headers["x-gateway-provider"], "beta", "the other process skipped alpha");
    assert.equal(chatRequests(alpha).length, 1, "alpha got no second request");

    const late = await startGatewayProcess(t, yaml);
    assert.equal((await cooldownOf(late, "alpha/m"))?.cause, "rate_limited", "loaded at start");
    const fromLate = await chat(late);
    assert.equal(fromLate.headers["x-gateway-provider"], "beta");
    assert.equal(chatRequests(alpha).length, 1);
  });

  test("a fixed key ends its invalid-key park: after a reload, a dropped subscription, and in a process started with it", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    const beta = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, (received) =>
      received.headers.authorization === "Bearer sk-new"
        ? { kind: "json", body: chatCompletion("fixed", "m") }
        : { kind: "json", status: 401, body: { error: { message: "bad key", code: "invalid_api_key" } } },
    );
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("beta", "m") });
    const yaml = `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\n  admin_keys: ["adm"]\n${configYaml(redis, alpha, "{ rpd: 1000 }", beta)}`;
    const fixedYaml = yaml.replace("api_key: sk-alpha", "api_key: sk-new");
    const [first, second] = (await startGateways(t, 2, yaml)) as [GatewayProcess, GatewayProcess];
    assert.equal((await chat(first)).headers["x-gateway-provider"], "beta", "alpha's 401 failed over");
    await waitFor(async () => (await cooldownOf(second, "alpha/m"))?.cause === "invalid_key", 3_000, "the park");

    // The key is fixed on the first process: it uses alpha at once, and keeps doing so once its subscriber
    // connection dropped and it loaded what Redis holds again (the second process, still on the bad key, parked).
    writeFileSync(first.configPath, fixedYaml);
    const reload = await request(`${first.url}/admin/reload`, {
      method: "POST",
      headers: { authorization: "Bearer adm" },
    });
    assert.equal(reload.statusCode, 200, await reload.body.text());
    assert.equal((await chat(first)).headers["x-gateway-provider"], "alpha");
    const admin = new Redis(redis.url);
    // The server stops before this client's cleanup (the hooks run in turn): its reconnection errors are expected,
    // and it is disconnected, not quit (a QUIT queued behind a command waits through the reconnections for ever).
    admin.on("error", () => {});
    t.after(() => admin.disconnect());
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    // Time to reconnect, subscribe again and load (what the old code then parked alpha again with).
    await sleep(1_500);
    assert.equal(await cooldownOf(first, "alpha/m"), null, "the old key's park was not loaded back");
    assert.equal((await chat(first)).headers["x-gateway-provider"], "alpha");
    assert.equal((await chat(second)).headers["x-gateway-provider"], "beta", "the bad key stays parked");

    // A process started with the fixed key (a rolling restart) does not load the park.
    const restarted = await startGatewayProcess(t, fixedYaml);
    assert.equal(await cooldownOf(restarted, "alpha/m"), null);
    assert.equal((await chat(restarted)).headers["x-gateway-provider"], "alpha");
  });

  test("Redis killed mid-run: no request fails, /health says degraded, and the gateways go back to Redis", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    // rpm 200: below what budget leases are taken for (docs/limits.md), so every request is its own charge and
    // the exact count below is the replay's and the reserves' alone (leases across an outage: redis-budget-leases.test.ts).
    const gateways = await startGateways(t, 2, configYaml(redis, alpha, "{ rpm: 200 }"));
    const statuses: number[] = [];
    const sendRound = async (count: number): Promise<void> => {
      for (let index = 0; index < count; index++) {
        statuses.push((await chat(gateways[index % 2] as GatewayProcess)).status);
      }
    };
    await sendRound(10);
    for (const gateway of gateways) {
      const before = await health(gateway);
      assert.equal(before.status, "ok");
      assert.deepEqual([before.state.kind, before.state.isDegraded], ["redis", false]);
    }

    await redis.kill();
    await sendRound(20);
    for (const gateway of gateways) {
      const during = await health(gateway);
      assert.equal(during.status, "degraded");
      assert.equal(during.state.isDegraded, true);
      assert.match(during.state.detail, /unreachable/);
    }

    await redis.restart();
    let sentAfterKill = 20;
    const isBack = async (): Promise<boolean> => {
      await sendRound(2); // traffic keeps flowing while Redis comes back
      sentAfterKill += 2;
      const states = await Promise.all(gateways.map(health));
      return states.every((state) => state.status === "ok" && !state.state.isDegraded);
    };
    await waitFor(isBack, 10_000, "both gateways to report Redis back");
    await sendRound(6);
    sentAfterKill += 6;

    assert.ok(
      statuses.every((status) => status === 200),
      `every request succeeded: ${statuses.join(",")}`,
    );
    assert.equal(chatRequests(alpha).length, statuses.length);
    // The restarted Redis started empty; it now counts every request sent since the kill: those sent during the
    // outage were replayed into it, the later ones were reserved in it.
    const client = new Redis(redis.url, { lazyConnect: true });
    t.after(() => client.disconnect());
    await client.connect();
    await waitFor(
      async () => Number(await client.hget(minuteRunsKey("provider:alpha"), "r")) === sentAfterKill,
      3_000,
      `Redis to count the ${sentAfterKill} requests sent since the kill`,
    );
    for (const gateway of gateways) {
      assert.equal(logCount(gateway, /^Redis is unreachable/), 1, "one line when Redis went down");
      assert.equal(logCount(gateway, /^Redis is reachable again/), 1, "one line when it came back");
    }
  });

  test("with queueing on, requests queue for a shared budget instead of getting 429s (one process, then three)", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    const queued = `${configYaml(redis, alpha, "{ rps: 2 }").replace("routing:\n", "routing:\n  queue_timeout_ms: 15000\n")}`;
    const [single] = await startGateways(t, 1, queued);
    const startedAtMs = Date.now();
    const answers = await Promise.all(Array.from({ length: 8 }, () => chat(single as GatewayProcess)));
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array.from({ length: 8 }, () => 200),
      "each waits its turn (before: 6 of 8 got a 429 within a second)",
    );
    assert.ok(Date.now() - startedAtMs >= 2_500, "two a second: eight take at least three seconds");
    const fleet = await startGateways(
      t,
      3,
      queued.replace(`redis_key_prefix: "${PREFIX}"`, `redis_key_prefix: "${PREFIX}q3:"`),
    );
    const fleetAnswers = await Promise.all(
      Array.from({ length: 9 }, (_, index) => chat(fleet[index % 3] as GatewayProcess)),
    );
    assert.deepEqual(
      fleetAnswers.map((answer) => answer.status),
      Array.from({ length: 9 }, () => 200),
    );
    assert.equal(chatRequests(alpha).length, 17, "each request reached the upstream once");
  });

  test("a concurrency limit of 2 holds across processes, and freed slots are seen by every process", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    let active = 0;
    let maxActive = 0;
    alpha.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(1_500);
        active--;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("slow", "m")));
      },
    });
    const gateways = await startGateways(t, 3, configYaml(redis, alpha, "{ concurrency: 2 }"));
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, index) => chat(gateways[index % 3] as GatewayProcess)),
    );
    assert.equal(maxActive, 2, "never more than 2 requests at the upstream at once");
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(answers.filter((answer) => answer.status === 200).length, 2);
    const limited = answers.filter((answer) => answer.status === 429);
    assert.equal(limited.length, 7);
    // The slots were released: each process in turn gets one again.
    for (const gateway of gateways) assert.equal((await chat(gateway)).status, 200);
    assert.equal(chatRequests(alpha).length, 5);
  });

  test("Redis down: the request log API answers 503 service_unavailable, not a 500; requests are still served", async (t) => {
    const redis = await useRedisServer(t);
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("hi", "m") });
    const withAdmin = `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\n  admin_keys: [admin-key-1]\n${configYaml(redis, alpha, "{ rpm: 100 }")}`;
    const [gateway] = await startGateways(t, 1, withAdmin);
    assert.ok(gateway !== undefined);
    assert.equal((await chat(gateway)).status, 200);
    await redis.kill();
    assert.equal((await chat(gateway)).status, 200, "Redis being down never fails a request");
    const { url } = gateway;
    for (const path of ["/v1/gateway/requests", "/v1/gateway/requests/req-none"]) {
      const response = await request(`${url}${path}`);
      const body = JSON.parse(await response.body.text()) as { error: { code: string; message: string } };
      assert.equal(response.statusCode, 503, `${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, "service_unavailable");
      assert.doesNotMatch(body.error.message, /redis:\/\//, "the store's URL is not shown");
    }
    // The admin reset resets this process and says the fleet's shared counts were not (it was an opaque 500).
    const reset = await request(`${url}/admin/cooldowns/reset`, {
      method: "POST",
      headers: { authorization: "Bearer admin-key-1" },
    });
    const resetBody = JSON.parse(await reset.body.text()) as { error: { code: string; message: string } };
    assert.equal(reset.statusCode, 503, JSON.stringify(resetBody));
    assert.equal(resetBody.error.code, "service_unavailable");
    assert.match(resetBody.error.message, /only this gateway process's cooldowns and budgets were reset/);
  });
});
