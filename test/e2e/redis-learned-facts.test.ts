// What one replica learns from a refusal, the others know without paying the same refusal (docs/limits.md "Shared
// state with Redis", docs/routing.md "Context fit" and "Learned refusals"): two gateways on one real redis-server and
// scripted mock upstreams; the mocks' request counts show which gateway asked whom.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import { githubModels, type ResponseFixture } from "../fixtures/provider-fixtures.ts";
import { CHAT_ROUTE, chatRequests, postChat, rowOf, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockStep, type MockUpstream } from "../helpers/mock-upstream.ts";
import {
  cutSubscribers,
  isRedisInstalled,
  REDIS_MISSING,
  type RedisServer,
  useRedisServer,
} from "../helpers/redis-server.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;

/** A one-message prompt the gateway estimates at exactly `tokens`. */
function promptOf(tokens: number): { role: "user"; content: string }[] {
  for (let words = 1; words <= tokens * 2; words++) {
    const messages = [{ role: "user" as const, content: "word ".repeat(words) }];
    const estimate = estimateChatPrompt(messages, undefined).promptTokens;
    if (estimate === tokens) return messages;
    if (estimate > tokens) break;
  }
  throw new Error(`no prompt of "word "s is estimated at ${tokens} tokens`);
}

/** The fixture as the mock's answer: its status, headers and body bytes. */
function replay(fixture: ResponseFixture): MockStep {
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [name, value] of Object.entries(fixture.headers)) if (typeof value === "string") headers[name] = value;
  return { kind: "text", status: fixture.status, headers, body: fixture.bodyText ?? "" };
}

const TOO_LONG: MockStep = {
  kind: "json",
  status: 400,
  body: {
    error: {
      message: "This model's maximum context length is 4000 tokens. However, you requested 4400 tokens.",
      type: "invalid_request_error",
      code: "context_length_exceeded",
    },
  },
};

/** `first` (preferred, with `firstModel`'s settings) and `second` serve public model `m`; state in `redis`. */
function configYaml(redis: RedisServer, first: MockUpstream, firstModel: string, second: MockUpstream): string {
  return `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first
    retries: 0
    models:
      m: { priority: 10${firstModel} }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second
    retries: 0
    models:
      m: { priority: 1, context: 100000 }
routing:
  max_wait_for_better_ms: 0
cooldowns:
  rate_limit_base_ms: 50
state:
  redis_url: ${redis.url}
  redis_key_prefix: "e2e-learned:"
  redis_command_timeout_ms: 2000
`;
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether the gateway's route explanation (no upstream request) skips `first` for a request of this size. */
async function skipsFirst(gateway: TestGateway, tokens: number, maxTokens: number): Promise<boolean> {
  const response = await send(gateway, "GET", `/v1/gateway/route?model=m&tokens=${tokens}&max_tokens=${maxTokens}`);
  assert.equal(response.status, 200, response.text);
  const explanation = JSON.parse(response.text) as RouteExplanation;
  return explanation.skipped.some((skipped) => skipped.provider === "first");
}

function servedBy(response: { status: number; text: string; headers: Record<string, unknown> }): unknown {
  assert.equal(response.status, 200, response.text);
  return response.headers["x-gateway-provider"];
}

async function twoGateways(t: TestContext, yaml: string): Promise<[TestGateway, TestGateway]> {
  return [await useGateway(t, yaml), await useGateway(t, yaml)];
}

describe("learned facts shared through Redis", { skip }, () => {
  test("a context-length refusal on replica A: replica B sends a prompt that size elsewhere without asking the model", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    // One 4,000 window: a prompt estimated at 3,000 plus 100 out looks as if it fits, but tokenizes denser there.
    first.setDefault(CHAT_ROUTE, TOO_LONG);
    const [a, b] = await twoGateways(t, configYaml(redis, first, ", context: 4000", second));
    const request = { model: "m", messages: promptOf(3_000), max_tokens: 100 };
    assert.equal(await skipsFirst(b, 3_000, 100), false, "B would ask first before anything was learned");

    assert.equal(servedBy(await postChat(a, request)), "second");
    assert.equal(chatRequests(first).length, 1, "A asked first once and was refused");
    // A's lesson reaches B without any request of B's.
    await waitFor(() => skipsFirst(b, 3_000, 100), "B to learn A's lesson");
    assert.equal(servedBy(await postChat(b, request)), "second");
    assert.equal(chatRequests(first).length, 1, "B paid a refused upstream request of its own");

    // A replica started afterwards loads the calibration at start (or, when Redis answered too slowly for the start to
    // wait, as soon as it connects: the start does not wait for Redis).
    const late = await useGateway(t, configYaml(redis, first, ", context: 4000", second));
    await waitFor(() => skipsFirst(late, 3_000, 100), "the late replica to load A's lesson");
    assert.equal(servedBy(await postChat(late, request)), "second");
    assert.equal(chatRequests(first).length, 1);
  });

  test("a window learned to be shared on replica A is one window on replica B and on a replica started later", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    first.setDefault(CHAT_ROUTE, TOO_LONG);
    // Listed 4,000 in and 1,000 out; in truth one 4,000 window: 3,500 + 900 is refused.
    const model = ", context: 4000, max_output_tokens: 1000";
    const [a, b] = await twoGateways(t, configYaml(redis, first, model, second));
    const request = { model: "m", messages: promptOf(3_500), max_tokens: 900 };
    assert.equal(await skipsFirst(b, 3_500, 900), false, "the prompt fits the input limit as listed");

    assert.equal(servedBy(await postChat(a, request)), "second");
    assert.equal(chatRequests(first).length, 1);
    await waitFor(() => skipsFirst(b, 3_500, 900), "B to check first as one shared window");
    assert.equal(servedBy(await postChat(b, request)), "second");
    assert.equal(chatRequests(first).length, 1, "B paid a refused upstream request of its own");
    // What fits the shared window still goes to first.
    first.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("first", "m") });
    assert.equal(servedBy(await postChat(b, { ...request, max_tokens: 400 })), "first");

    const late = await useGateway(t, configYaml(redis, first, model, second));
    // Loaded at start, or as soon as Redis answers when the start could not wait for it (a loaded machine, in CI once).
    await waitFor(() => skipsFirst(late, 3_500, 900), "a replica started later to load the shared window");
    assert.equal(servedBy(await postChat(late, request)), "second");
    assert.equal(chatRequests(first).length, 2);
  });

  test("a concurrency limit stated to replica A holds for the fleet: B skips first while A's requests fill it", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    const slow: MockStep = { kind: "json", body: chatCompletion("slow", "m"), delayMs: 1_000 };
    // GitHub Models' "Rate limit of 2 per 0s exceeded for UserConcurrentRequests": what first answers whenever
    // it is asked beyond its script.
    first.setDefault(CHAT_ROUTE, replay(githubModels.concurrent429));
    first.enqueue(CHAT_ROUTE, slow, slow, replay(githubModels.concurrent429), slow, slow);
    const [a, b] = await twoGateways(t, configYaml(redis, first, "", second));
    const firstHas = (count: number): Promise<void> =>
      waitFor(async () => chatRequests(first).length >= count, `first to have ${count} requests`);
    const request = { model: "m", messages: [{ role: "user", content: "hi" }] };

    // A: two in flight at first, the third refused for concurrency and served by second.
    const one = postChat(a, request);
    await firstHas(1);
    const two = postChat(a, request);
    await firstHas(2);
    assert.equal(servedBy(await postChat(a, request)), "second");
    assert.equal(chatRequests(first).length, 3);
    await waitFor(async () => {
      const stats = JSON.parse((await send(b, "GET", "/stats")).text) as {
        deployments: { provider: string; concurrency: { limit: number | null; learned_from?: string } | null }[];
      };
      const row = stats.deployments.find((deployment) => deployment.provider === "first");
      return row?.concurrency?.limit === 2 && row.concurrency.learned_from === "429 stating 2 in flight";
    }, "B to know first's stated limit");
    assert.equal(servedBy(await one), "first");
    assert.equal(servedBy(await two), "first");
    await sleep(100); // the concurrency 429's cooldown (rate_limit_base_ms) is over

    // A fills first's two slots again; B's request is skipped fleet-wide (Redis counts A's two), not sent to be
    // refused.
    const three = postChat(a, request);
    await firstHas(4);
    const four = postChat(a, request);
    await firstHas(5);
    assert.equal(servedBy(await postChat(b, request)), "second");
    assert.equal(chatRequests(first).length, 5, "B sent first a request beyond the fleet's stated limit");
    assert.equal(servedBy(await three), "first");
    assert.equal(servedBy(await four), "first");

    // The slots are free again for every replica.
    first.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("first", "m") });
    await sleep(150); // B's cached denial (CONCURRENCY_RETRY_MS) is over
    assert.equal(servedBy(await postChat(b, request)), "first");
  });
  test("a feature refused to replica A: B ranks the deployment last without asking it; a success on B clears it fleet-wide", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    first.setDefault(CHAT_ROUTE, NO_TOOLS);
    const [a, b] = await twoGateways(t, configYaml(redis, first, "", second));

    assert.equal(servedBy(await postChat(a, TOOLS_REQUEST)), "second");
    assert.equal(chatRequests(first).length, 1, "A asked first once and was refused");
    // A's lesson reaches B without any request of B's, with A's end.
    await waitFor(async () => (await refusedOn(b)).length === 1, "B to learn A's lesson");
    const [onA] = rowOf(await statsOf(a), "first/m").refused_features;
    assert.deepEqual(rowOf(await statsOf(b), "first/m").refused_features, [onA]);
    assert.equal(servedBy(await postChat(b, TOOLS_REQUEST)), "second");
    assert.equal(chatRequests(first).length, 1, "B paid a refused upstream request of its own");
    // A request without tools still goes to first, on either.
    first.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("first", "m") });
    assert.equal(servedBy(await postChat(b, { model: "m", messages: [{ role: "user", content: "hi" }] })), "first");

    // A replica started afterwards loads the lesson at start (or as soon as Redis answers).
    const late = await useGateway(t, configYaml(redis, first, "", second));
    await waitFor(async () => (await refusedOn(late)).length === 1, "the late replica to load A's lesson");
    assert.equal(servedBy(await postChat(late, TOOLS_REQUEST)), "second");
    assert.equal(chatRequests(first).length, 2);

    // first takes tools now. B's request reaches it only when second fails: its success clears the lesson for all.
    first.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("first", "m") });
    second.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    assert.equal(servedBy(await postChat(b, TOOLS_REQUEST)), "first");
    assert.deepEqual(await refusedOn(b), []);
    await waitFor(
      async () => (await refusedOn(a)).length === 0 && (await refusedOn(late)).length === 0,
      "A and the late replica to hear that first takes tools",
    );
    assert.equal(servedBy(await postChat(a, TOOLS_REQUEST)), "first");
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    assert.deepEqual(await admin.keys("e2e-learned:refused-features:*"), []);
    const fresh = await useGateway(t, configYaml(redis, first, "", second));
    assert.deepEqual(await refusedOn(fresh), [], "a replica started later loaded a cleared lesson");
  });

  test("an admin reset on replica A makes every replica forget what was refused, and deletes the shared copies", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    first.setDefault(CHAT_ROUTE, NO_TOOLS);
    const yaml = `server:\n  port: 0\n  host: 127.0.0.1\n  admin_keys: [admin-key-123]\n${configYaml(redis, first, "", second)}`;
    const [a, b] = await twoGateways(t, yaml);
    assert.equal(servedBy(await postChat(a, TOOLS_REQUEST)), "second");
    await waitFor(async () => (await refusedOn(b)).length === 1, "B to learn A's lesson");
    assert.deepEqual(await refusedOn(b), ["tools"]);

    const reset = await send(a, "POST", "/admin/cooldowns/reset", {
      headers: { authorization: "Bearer admin-key-123" },
    });
    assert.equal(reset.status, 200, reset.text);
    assert.deepEqual(await refusedOn(a), []);
    // The reset the fleet hears (cooldowns, circuits, budgets) covers B's refused features too, as the reset says.
    await waitFor(async () => (await refusedOn(b)).length === 0, "B to forget first's refusal of tools");
    // The shared copy went with it: a replica started after the reset does not load it back.
    const late = await useGateway(t, yaml);
    assert.deepEqual(await refusedOn(late), []);
    assert.equal(chatRequests(first).length, 1);
    first.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("first", "m") });
    assert.equal(servedBy(await postChat(b, TOOLS_REQUEST)), "first");
  });

  test("a reload pointing first at another key deletes what was shared of it (its refused features and its shared window), and every replica drops its copy", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    first.setDefault(CHAT_ROUTE, NO_TOOLS);
    const model = ", context: 4000, max_output_tokens: 1000";
    const yaml = configYaml(redis, first, model, second);
    const a = await useGateway(t, yaml);
    assert.equal(servedBy(await postChat(a, TOOLS_REQUEST)), "second");
    first.setDefault(CHAT_ROUTE, TOO_LONG);
    assert.equal(servedBy(await postChat(a, { model: "m", messages: promptOf(3_500), max_tokens: 900 })), "second");
    assert.equal(chatRequests(first).length, 2);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const storedLessons = ["e2e-learned:refused-features:{first}:first/m", "e2e-learned:shared-window:{first}:first/m"];
    await waitFor(async () => (await admin.exists(...storedLessons)) === 2, "both lessons stored");
    const b = await useGateway(t, yaml);
    assert.deepEqual(await refusedOn(b), ["tools"]);
    assert.equal(await skipsFirst(b, 3_500, 900), true, "B loaded the shared window");

    // The new key is another account, perhaps another model behind the name: what the old one taught is not its.
    writeFileSync(a.configPath, readFileSync(a.configPath, "utf8").replace("sk-first", "sk-first-2"));
    assert.equal((await a.runtime.reloadFromSource("test")).isApplied, true);
    assert.deepEqual(await refusedOn(a), []);
    await waitFor(async () => (await admin.exists(...storedLessons)) === 0, "the stored lessons of first deleted");
    // The forget is published: B (which reloads next, in a rolling reload) drops its copies too, instead of keeping
    // them until they end (for a shared window, for good) whatever first now points at.
    await waitFor(async () => (await refusedOn(b)).length === 0, "B to drop the forgotten refusal");
    await waitFor(async () => !(await skipsFirst(b, 3_500, 900)), "B to drop the forgotten shared window");
    // Neither a replica started with the new key, nor A at a reconnect, adopts them again.
    const fresh = await useGateway(t, yaml.replace("sk-first", "sk-first-2"));
    assert.deepEqual(await refusedOn(fresh), [], "a replica with the new key loaded the old key's refusal");
    assert.equal(await skipsFirst(fresh, 3_500, 900), false, "a replica with the new key loaded the old shared window");
    // A's connections dropped (Redis keeps its data): A loads what is stored again when it reconnects.
    await admin.call("CLIENT", "KILL", "TYPE", "normal");
    await waitFor(async () => /name=llm-gateway /.test(String(await admin.call("CLIENT", "LIST"))), "A reconnected");
    await sleep(500); // the resync's load
    assert.deepEqual(await refusedOn(a), []);
    assert.equal(await skipsFirst(a, 3_500, 900), false, "A adopted the old key's shared window again");
  });

  test("a rate limit stated to replica A binds replica B, and a replica started later, without a 429 of their own", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    // What first answers whenever it is asked beyond its script.
    const stated = STATED_RPM_2;
    const ok: MockStep = { kind: "json", body: chatCompletion("first", "m") };
    first.setDefault(CHAT_ROUTE, stated);
    first.enqueue(CHAT_ROUTE, stated, ok, ok);
    const [a, b] = await twoGateways(t, configYaml(redis, first, "", second));
    const request = { model: "m", messages: [{ role: "user", content: "hi" }] };

    assert.equal(servedBy(await postChat(a, request)), "second");
    assert.equal(chatRequests(first).length, 1, "A asked first once and was refused");
    // A's lesson reaches B without any request of B's.
    await waitFor(async () => (await learnedRpm(b)) === 2, "B to know first's stated limit");
    await sleep(150); // the 429's cooldown (rate_limit_base_ms) is over

    // A spends the minute's two requests; B's request is refused by the fleet's count (Redis), not sent to first.
    assert.equal(servedBy(await postChat(a, request)), "first");
    assert.equal(servedBy(await postChat(a, request)), "first");
    assert.equal(chatRequests(first).length, 3);
    assert.equal(servedBy(await postChat(b, request)), "second");
    assert.equal(chatRequests(first).length, 3, "B sent first a request beyond the stated limit (and paid its 429)");

    // A replica started afterwards loads the stated limit at start.
    const late = await useGateway(t, configYaml(redis, first, "", second));
    await waitFor(async () => (await learnedRpm(late)) === 2, "the late replica to load the stated limit");
    assert.equal(servedBy(await postChat(late, request)), "second");
    assert.equal(chatRequests(first).length, 3, "a replica started later sent first a request beyond the limit");

    // A reload gives first another key: the limit was the old key's. A forgets it and deletes the stored copy, so a
    // replica started with the new key does not load it, and publishes the forget: B drops it too.
    writeFileSync(a.configPath, readFileSync(a.configPath, "utf8").replace("sk-first", "sk-first-2"));
    assert.equal((await a.runtime.reloadFromSource("test")).isApplied, true);
    assert.equal(await learnedRpm(a), undefined);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    await waitFor(
      async () => (await admin.keys("e2e-learned:budget:*:learned-rate:*")).length === 0,
      "the stored limit deleted",
    );
    const fresh = await useGateway(t, configYaml(redis, first, "", second).replace("sk-first", "sk-first-2"));
    assert.equal(await learnedRpm(fresh), undefined, "a replica with the new key loaded the old key's limit");
    await waitFor(async () => (await learnedRpm(b)) === undefined, "B to drop the forgotten limit");
  });

  test("a replica whose subscription was away when a reload forgot a stated limit drops it once its subscription is back", async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    second.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("second", "m") });
    first.setDefault(CHAT_ROUTE, STATED_RPM_2);
    const [a, b] = await twoGateways(t, configYaml(redis, first, "", second));
    assert.equal(servedBy(await postChat(a, { model: "m", messages: [{ role: "user", content: "hi" }] })), "second");
    await waitFor(async () => (await learnedRpm(b)) === 2, "B to know first's stated limit");

    // B's subscription goes away (a blip, a pub/sub buffer limit) and stays away while A reloads with a new key.
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const letSubscribersBack = await cutSubscribers(admin);
    writeFileSync(a.configPath, readFileSync(a.configPath, "utf8").replace("sk-first", "sk-first-2"));
    assert.equal((await a.runtime.reloadFromSource("test")).isApplied, true);
    await waitFor(
      async () => (await admin.keys("e2e-learned:budget:*:learned-rate:*")).length === 0,
      "the stored limit deleted",
    );
    await sleep(300);
    assert.equal(await learnedRpm(b), 2, "B heard the forget: its subscription was not away, the test proves nothing");
    // Back, B reads what was forgotten meanwhile instead of holding the new key to the old key's limit for good.
    await letSubscribersBack();
    await waitFor(async () => (await learnedRpm(b)) === undefined, "B to drop the limit forgotten while it was away");
  });
});

/** Groq's wording, stating 2 requests a minute (no retry delay: the 429's cooldown is rate_limit_base_ms). */
const STATED_RPM_2: MockStep = {
  kind: "json",
  status: 429,
  body: {
    error: {
      message:
        "Rate limit reached for model `m` in organization `org_1` service tier `on_demand` on requests per minute (RPM): Limit 2, Used 2, Requested 1.",
      type: "requests",
      code: "rate_limit_exceeded",
    },
  },
};

const NO_TOOLS: MockStep = {
  kind: "json",
  status: 400,
  body: { error: { message: "This model does not support tools", type: "invalid_request_error" } },
};

const TOOLS_REQUEST = {
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
};

/** The features a gateway's /stats says first refused. */
async function refusedOn(gateway: TestGateway): Promise<string[]> {
  return rowOf(await statsOf(gateway), "first/m").refused_features.map((refusal) => refusal.feature);
}

/** The requests-per-minute limit a gateway learned for first (its /stats), if it knows one. */
async function learnedRpm(gateway: TestGateway): Promise<number | undefined> {
  const stats = JSON.parse((await send(gateway, "GET", "/stats")).text) as {
    deployments: {
      provider: string;
      budgets: { windows: { unit: string; window: string; limit: number; source: string }[] }[];
    }[];
  };
  const windows = stats.deployments.find((row) => row.provider === "first")?.budgets.flatMap((scope) => scope.windows);
  return windows?.find((row) => row.source === "learned" && row.unit === "requests" && row.window === "minute")?.limit;
}
