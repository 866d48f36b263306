// A client's own `paid` (`server.api_keys` entries `{ key, name, paid }`): a CI key that must never cost money
// gets `paid: never` while everyone else keeps `routing.paid: last_resort`. Over loopback: the paid upstream is
// never called for that client, whatever the free one does; another client falls back to it as usual.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, type TestContext, test } from "node:test";
import { chatRequests, errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT = "POST /v1/chat/completions";
const CI_KEY = "ci-secret-key";
const TEAM_KEY = "team-secret-key";
const ADMIN_KEY = "admin-secret-key";
const as = (key: string) => ({ authorization: `Bearer ${key}` });

interface FreeAndPaidOptions {
  /** With an admin key (ADMIN_KEY). */
  readonly adminKey?: string;
  /** The team client (TEAM_KEY) besides the CI client (CI_KEY, `paid: never`); default true. */
  readonly hasTeam?: boolean;
  /** The free provider retries (default true; false writes `retries: 0`). */
  readonly isFreeRetried?: boolean;
  readonly freePriority?: number;
  readonly paidPriority?: number;
  /** The paid provider also serves `only-paid`, which no free model serves. */
  readonly hasPaidOnlyModel?: boolean;
  /** Top-level YAML after the providers (`routing:` ...). */
  readonly rest: string;
}

/** A free and a paid provider, both serving `m` (`free-m`, `paid-m`), and the gateway with the CI client. */
async function freeAndPaidScene(
  t: TestContext,
  options: FreeAndPaidOptions,
): Promise<{ free: MockUpstream; paid: MockUpstream; gateway: TestGateway }> {
  const free = await useMock(t);
  const paid = await useMock(t);
  const priority = (value: number | undefined) => (value === undefined ? "" : `, priority: ${value}`);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
${options.adminKey === undefined ? "" : `  admin_keys: [${options.adminKey}]\n`}  api_keys:
    - { key: ${CI_KEY}, name: ci, paid: never }
${options.hasTeam === false ? "" : `    - { key: ${TEAM_KEY}, name: team }\n`}providers:
  - name: free
    base_url: ${free.baseUrl}
    api_key: sk-free-secret
    cost: free
${options.isFreeRetried === false ? "    retries: 0\n" : ""}    models:
      m: { id: free-m${priority(options.freePriority)} }
  - name: paid
    base_url: ${paid.baseUrl}
    api_key: sk-paid-secret
    cost: paid
    models:
      m: { id: paid-m${priority(options.paidPriority)} }
${options.hasPaidOnlyModel === true ? "      only-paid: { id: paid-only }\n" : ""}${options.rest}`,
  );
  return { free, paid, gateway };
}

describe("a client's own paid policy", () => {
  test("paid: never for one client: its requests never reach a paid upstream; other clients fall back to it", async (t) => {
    const { free, paid, gateway } = await freeAndPaidScene(t, {
      isFreeRetried: false,
      freePriority: 10,
      hasPaidOnlyModel: true,
      rest: `routing:\n  max_wait_for_better_ms: 0\n`,
    });
    free.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    const refused = await postChat(gateway, { model: "m" }, as(CI_KEY));
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "30");
    assert.match(errorOf(refused).message, /1 paid candidate was not tried \(this client's paid: never\)/);
    assert.equal(chatRequests(paid).length, 0, "a paid upstream was called for a paid: never client");

    // Another client, the gateway's routing.paid (last_resort): the paid model serves while the free one cools.
    paid.enqueue(CHAT, { kind: "json", body: chatCompletion("paid answer", "paid-m") });
    const served = await postChat(gateway, { model: "m" }, as(TEAM_KEY));
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-cost"], "paid");

    // A name only paid models serve: the client is told why, nothing is sent.
    const onlyPaid = await postChat(gateway, { model: "only-paid" }, as(CI_KEY));
    assert.equal(onlyPaid.status, 400, onlyPaid.text);
    assert.equal(errorOf(onlyPaid).code, "no_capable_model");
    assert.match(errorOf(onlyPaid).message, /this client may not use paid models/);
    assert.equal(chatRequests(paid).length, 1);
  });

  test("queueing: a paid: never client waiting for the cooling free model holds up no other client's request", async (t) => {
    const { free, paid, gateway } = await freeAndPaidScene(t, {
      isFreeRetried: false,
      freePriority: 10,
      rest: `routing:\n  paid: last_resort\n  max_wait_for_better_ms: 0\n  queue_timeout_ms: 15000\n`,
    });
    // The free model cools for 5 s after a 429; the team's request goes on to the paid one.
    free.enqueue(CHAT, rateLimited({ retryAfter: "5" }));
    paid.enqueue(CHAT, { kind: "json", body: chatCompletion("paid answer", "paid-m") });
    const first = await postChat(gateway, { model: "m" }, as(TEAM_KEY));
    assert.equal(first.headers["x-gateway-cost"], "paid", first.text);

    // The CI client may only wait for the free model: it queues.
    free.enqueue(CHAT, { kind: "json", body: chatCompletion("free answer", "free-m") });
    let isCiAnswered = false;
    const waiting = postChat(gateway, { model: "m" }, as(CI_KEY)).finally(() => {
      isCiAnswered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));

    // The team's next request has a candidate ready now (the paid model): it is served at once, not after the CI
    // client's wait (the old code queued it behind that waiter, per requested model, for the whole cooldown).
    paid.enqueue(CHAT, { kind: "json", body: chatCompletion("paid again", "paid-m") });
    const startedMs = Date.now();
    const second = await postChat(gateway, { model: "m" }, as(TEAM_KEY));
    const tookMs = Date.now() - startedMs;
    assert.equal(second.status, 200, second.text);
    assert.equal(second.headers["x-gateway-cost"], "paid");
    // Before the CI client's wait ended (an ordering), and well within the free model's 5 s cooldown that a request
    // queued behind it would wait out (a bound with room for a loaded machine).
    assert.equal(isCiAnswered, false, "the team's request was answered after the CI client's");
    assert.ok(tookMs < 3_500, `the team's request waited ${tookMs} ms behind the CI client's queue`);

    const ci = await waiting;
    assert.equal(ci.status, 200, ci.text);
    assert.equal(ci.headers["x-gateway-cost"], "free");
    assert.equal(chatRequests(paid).length, 2, "the CI client's request reached the paid upstream");
  });

  test("GET /v1/gateway/route and /v1/models answer with the asking client's own paid rule", async (t) => {
    const { gateway } = await freeAndPaidScene(t, {
      hasPaidOnlyModel: true,
      rest: `meta_models:\n  paid-meta: [only-paid]\nrouting:\n  paid: allowed\n`,
    });
    type Explanation = { candidates: { provider: string }[]; skipped: { provider: string; cause: string }[] };
    const route = async (key: string) => {
      const answer = await send(gateway, "GET", "/v1/gateway/route?model=m", { headers: as(key) });
      assert.equal(answer.status, 200, answer.text);
      return answer.json as Explanation;
    };
    const ci = await route(CI_KEY);
    assert.deepEqual(
      ci.candidates.map((candidate) => candidate.provider),
      ["free"],
      "the CI client's explanation lists a paid candidate its requests never try",
    );
    assert.deepEqual(
      ci.skipped.map((skip) => [skip.provider, skip.cause]),
      [["paid", "paid"]],
    );
    const team = await route(TEAM_KEY);
    assert.deepEqual(team.candidates.map((candidate) => candidate.provider).sort(), ["free", "paid"]);

    // A name only paid models serve answers the CI client 400 no_capable_model: not listed for it.
    const names = async (key: string) => {
      const answer = await send(gateway, "GET", "/v1/models", { headers: as(key) });
      assert.equal(answer.status, 200, answer.text);
      return (answer.json as { data: { id: string }[] }).data.map((model) => model.id).sort();
    };
    assert.deepEqual(await names(CI_KEY), ["m", "priority-auto"]);
    assert.deepEqual(await names(TEAM_KEY), ["m", "only-paid", "paid-meta", "priority-auto"]);
    const retrieved = await send(gateway, "GET", "/v1/models/only-paid", { headers: as(CI_KEY) });
    assert.equal(retrieved.status, 404, retrieved.text);
  });

  test("a request queued across a reload is planned with the client's paid rule of the new config", async (t) => {
    const { free, paid, gateway } = await freeAndPaidScene(t, {
      adminKey: ADMIN_KEY,
      hasTeam: false,
      isFreeRetried: false,
      freePriority: 1,
      paidPriority: 10,
      rest: `routing:\n  paid: allowed\n  max_wait_for_better_ms: 0\n  queue_timeout_ms: 5000\n`,
    });
    // The free model answers 429 and cools for 2 s: the CI client's next request waits in the queue for it.
    free.enqueue(CHAT, rateLimited({ retryAfter: "2" }));
    const refused = await postChat(gateway, { model: "m" }, as(CI_KEY));
    assert.equal(refused.status, 429, refused.text);
    free.enqueue(CHAT, { kind: "json", body: chatCompletion("free answer", "free-m") });
    paid.enqueue(CHAT, { kind: "json", body: chatCompletion("paid answer", "paid-m") });
    const waiting = postChat(gateway, { model: "m" }, as(CI_KEY));
    await new Promise((resolve) => setTimeout(resolve, 200));

    // The reload allows the client paid models: its waiting request is served by the config it is planned on.
    writeFileSync(
      gateway.configPath,
      readFileSync(gateway.configPath, "utf8").replace("name: ci, paid: never", "name: ci, paid: allowed"),
    );
    const reloaded = await send(gateway, "POST", "/admin/reload", { headers: as(ADMIN_KEY) });
    assert.equal(reloaded.status, 200, reloaded.text);
    const served = await waiting;
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-cost"], "paid", "the queued request kept the rule of the old config");
  });
});
