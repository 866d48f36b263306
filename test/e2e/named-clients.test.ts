// Named client keys: `server.api_keys` entries written `{ key, name }` put the client's name on the records of its
// requests (request log, refused ones too), and on the per-client metrics; the key itself is recorded nowhere.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CHAT = "POST /v1/chat/completions";
const TEAM_A_KEY = "team-a-secret-key-1";
const TEAM_A_NEW_KEY = "team-a-secret-key-2";
const PLAIN_KEY = "plain-secret-key";

/** Two named clients and an unnamed key, as `server.api_keys` entries. */
const TEAMS_AND_PLAIN = [`{ key: ${TEAM_A_KEY}, name: team-a }`, `{ key: ${TEAM_A_NEW_KEY}, name: team-b }`, PLAIN_KEY];

/**
 * The gateway with these `server.api_keys` entries (YAML, one an entry) and `adminKeys`, in front of one mock
 * provider `alpha` serving `m`; `rest` is YAML after the providers.
 */
async function namedClientsScene(
  t: TestContext,
  apiKeys: readonly string[],
  options: { readonly adminKeys?: readonly string[]; readonly rest?: string } = {},
): Promise<{ upstream: MockUpstream; gateway: TestGateway }> {
  const upstream = await useMock(t);
  const adminKeys = options.adminKeys === undefined ? "" : `  admin_keys: [${options.adminKeys.join(", ")}]\n`;
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
${adminKeys}  api_keys:
${apiKeys.map((entry) => `    - ${entry}\n`).join("")}providers:
  - name: alpha
    base_url: ${upstream.baseUrl}
    api_key: sk-alpha-secret-key
    models:
      m: { id: alpha-m }
${options.rest ?? ""}`,
  );
  return { upstream, gateway };
}

interface ListedRecord {
  readonly id: string;
  readonly client?: string;
  readonly status: number;
}

const backends = [
  { name: "files (the default)", state: "" },
  { name: "memory", state: `state:\n  path: ":memory:"\n` },
  { name: "Redis", state: "redis" },
] as const;

describe("named client keys", () => {
  for (const backend of backends) {
    test(`each record says whose key the request carried, and the request log filters by it: ${backend.name}; the metrics count per client`, {
      skip: backend.state === "redis" && !isRedisInstalled() ? REDIS_MISSING : false,
    }, async (t) => {
      const state =
        backend.state === "redis"
          ? `state:\n  redis_url: ${(await useRedisServer(t)).url}\n  redis_key_prefix: "named-clients:"\n`
          : backend.state;
      const { upstream, gateway } = await namedClientsScene(
        t,
        [`{ key: ${TEAM_A_KEY}, name: team-a }`, `{ key: ${TEAM_A_NEW_KEY}, name: team-a }`, PLAIN_KEY],
        { rest: `log:\n  content: true\n${state}` },
      );
      for (let index = 0; index < 3; index++) {
        upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
      }
      const byTeamA = await postChat(gateway, { model: "m" }, { authorization: `Bearer ${TEAM_A_KEY}` });
      assert.equal(byTeamA.status, 200, byTeamA.text);
      // The same client's other key (a rotation), sent the Anthropic way.
      const byTeamANewKey = await postChat(gateway, { model: "m" }, { "x-api-key": TEAM_A_NEW_KEY });
      assert.equal(byTeamANewKey.status, 200, byTeamANewKey.text);
      // An unnamed key's client writes what looks like a name into its message: kept content must not pass for one.
      const byPlain = await postChat(
        gateway,
        { model: "m", messages: [{ role: "user", content: "hi", client: "team-a", candidates: [] }] },
        { authorization: `Bearer ${PLAIN_KEY}` },
      );
      assert.equal(byPlain.status, 200, byPlain.text);
      // Refused before planning (an unknown model): still the client's record.
      const refused = await postChat(gateway, { model: "no-such-model" }, { authorization: `Bearer ${TEAM_A_KEY}` });
      assert.equal(refused.status, 404, refused.text);

      const auth = { authorization: `Bearer ${PLAIN_KEY}` };
      const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10", { headers: auth });
      assert.equal(listed.status, 200, listed.text);
      const records = (listed.json as { data: ListedRecord[] }).data;
      const clientOf = (id: string | undefined) => {
        const record = records.find((candidate) => candidate.id === id);
        assert.ok(record !== undefined, `no record for ${id}`);
        return record.client;
      };
      assert.equal(clientOf(byTeamA.headers["x-request-id"]), "team-a");
      assert.equal(clientOf(byTeamANewKey.headers["x-request-id"]), "team-a");
      assert.equal(clientOf(byPlain.headers["x-request-id"]), undefined);
      assert.equal(clientOf(refused.headers["x-request-id"]), "team-a");
      for (const key of [TEAM_A_KEY, TEAM_A_NEW_KEY, PLAIN_KEY]) {
        assert.ok(!listed.text.includes(key), "a key was recorded");
      }

      const teamA = await send(gateway, "GET", "/v1/gateway/requests?client=team-a", { headers: auth });
      assert.equal(teamA.status, 200, teamA.text);
      assert.deepEqual(
        (teamA.json as { data: ListedRecord[] }).data.map((record) => record.id).sort(),
        [byTeamA, byTeamANewKey, refused].map((answer) => answer.headers["x-request-id"]).sort(),
      );
      const nobody = await send(gateway, "GET", "/v1/gateway/requests?client=team-b", { headers: auth });
      assert.deepEqual((nobody.json as { data: ListedRecord[] }).data, []);

      const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
      assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team-a", status_class: "2xx" }), 2);
      assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team-a", status_class: "4xx" }), 1);
      assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "none", status_class: "2xx" }), 1);
      const teamATokensIn = sumOf(metrics, "llm_gateway_client_tokens_total", { client: "team-a", direction: "in" });
      const noneTokensIn = sumOf(metrics, "llm_gateway_client_tokens_total", { client: "none", direction: "in" });
      assert.ok(teamATokensIn > 0, "no tokens counted for team-a");
      assert.equal(teamATokensIn + noneTokensIn, sumOf(metrics, "llm_gateway_tokens_total", { direction: "in" }));
    });
  }

  test("a named client sees its own requests only: request log, a record by id, the dashboard's feed and routes", async (t) => {
    const { upstream, gateway } = await namedClientsScene(t, TEAMS_AND_PLAIN);
    for (let index = 0; index < 2; index++) {
      upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    }
    const a = await postChat(gateway, { model: "m" }, { authorization: `Bearer ${TEAM_A_KEY}` });
    const b = await postChat(gateway, { model: "m" }, { authorization: `Bearer ${TEAM_A_NEW_KEY}` });
    const idOf = (answer: typeof a) => answer.headers["x-request-id"] ?? "";
    const asA = { authorization: `Bearer ${TEAM_A_KEY}` };

    const listedByA = await send(gateway, "GET", "/v1/gateway/requests", { headers: asA });
    assert.deepEqual(
      (listedByA.json as { data: ListedRecord[] }).data.map((record) => record.id),
      [idOf(a)],
    );
    const othersAsked = await send(gateway, "GET", "/v1/gateway/requests?client=team-b", { headers: asA });
    assert.equal(othersAsked.status, 403, othersAsked.text);
    assert.equal((await send(gateway, "GET", `/v1/gateway/requests/${idOf(b)}`, { headers: asA })).status, 404);
    assert.equal((await send(gateway, "GET", `/v1/gateway/requests/${idOf(a)}`, { headers: asA })).status, 200);
    // An unnamed key sees every client's.
    const listedByPlain = await send(gateway, "GET", "/v1/gateway/requests", {
      headers: { authorization: `Bearer ${PLAIN_KEY}` },
    });
    assert.equal((listedByPlain.json as { data: ListedRecord[] }).data.length, 2);

    // The dashboard (no admin keys: client keys open it) likewise.
    const state = await send(gateway, "GET", "/dashboard/api/state", { headers: asA });
    assert.deepEqual(
      (state.json as { feed: { id: string }[] }).feed.map((entry) => entry.id),
      [idOf(a)],
    );
    assert.equal((await send(gateway, "GET", `/dashboard/api/requests/${idOf(b)}`, { headers: asA })).status, 404);
    assert.equal((await send(gateway, "GET", `/dashboard/api/requests/${idOf(a)}`, { headers: asA })).status, 200);
    // The key sent the Anthropic way (x-api-key) opens the same view as on the request log.
    const stateByApiKey = await send(gateway, "GET", "/dashboard/api/state", { headers: { "x-api-key": TEAM_A_KEY } });
    assert.equal(stateByApiKey.status, 200, stateByApiKey.text);
    assert.deepEqual(
      (stateByApiKey.json as { feed: { id: string }[] }).feed.map((entry) => entry.id),
      [idOf(a)],
    );
    const listedByApiKey = await send(gateway, "GET", "/v1/gateway/requests", { headers: { "x-api-key": TEAM_A_KEY } });
    assert.deepEqual(
      (listedByApiKey.json as { data: ListedRecord[] }).data.map((record) => record.id),
      [idOf(a)],
    );
  });

  for (const backend of [...backends, { name: "no request log (the dashboard's memory)", state: "off" }] as const) {
    test(`two named clients sending the same x-request-id: each finds its own record by id, the later one hides nothing: ${backend.name}`, {
      skip: backend.state === "redis" && !isRedisInstalled() ? REDIS_MISSING : false,
    }, async (t) => {
      const state =
        backend.state === "redis"
          ? `state:\n  redis_url: ${(await useRedisServer(t)).url}\n  redis_key_prefix: "same-id:"\n`
          : backend.state === "off"
            ? "request_log:\n  enabled: false\n"
            : backend.state;
      const { upstream, gateway } = await namedClientsScene(
        t,
        [`{ key: ${TEAM_A_KEY}, name: team-a }`, "{ key: team-b-secret-key, name: team-b }", PLAIN_KEY],
        { rest: state },
      );
      upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
      const asA = { authorization: `Bearer ${TEAM_A_KEY}` };
      const asB = { authorization: "Bearer team-b-secret-key" };
      const asPlain = { authorization: `Bearer ${PLAIN_KEY}` };
      const sharedId = "client-chosen-id-1";
      // team-b's request first, then team-a's with the same id (one it chose, or learnt): the newer record of the id.
      const byB = await postChat(gateway, { model: "m" }, { ...asB, "x-request-id": sharedId });
      assert.equal(byB.status, 200, byB.text);
      assert.equal(byB.headers["x-request-id"], sharedId);
      const byA = await postChat(gateway, { model: "m" }, { ...asA, "x-request-id": sharedId });
      assert.equal(byA.status, 200, byA.text);

      const routes = ["/v1/gateway/requests", "/dashboard/api/requests"];
      const clientOf = async (path: string, headers: Record<string, string>): Promise<string | undefined> => {
        // Records are written after the answer: wait until the lookup has one.
        for (let tries = 0; tries < 100; tries++) {
          const response = await send(gateway, "GET", `${path}/${sharedId}`, { headers });
          if (response.status === 200) return (response.json as { client?: string }).client;
          assert.equal(response.status, 404, response.text);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return "(not found)";
      };
      // Without a request log, both routes read the dashboard's memory.
      for (const path of routes) {
        assert.equal(await clientOf(path, asB), "team-b", `${path}: the owner of the earlier request finds it`);
        assert.equal(await clientOf(path, asA), "team-a", `${path}: the owner of the later request finds it`);
        // An unnamed key sees every client's record: the newest with the id.
        assert.equal(await clientOf(path, asPlain), "team-a", `${path}: an unnamed key gets the newest`);
      }
      if (backend.state !== "off") {
        // Both records are kept (neither replaced the other).
        const listed = await send(gateway, "GET", "/v1/gateway/requests", { headers: asPlain });
        const clients = (listed.json as { data: ListedRecord[] }).data
          .filter((record) => record.id === sharedId)
          .map((record) => record.client);
        assert.deepEqual(clients, ["team-a", "team-b"]);
      }
    });
  }

  test("the dashboard: a busy client does not push another's requests out of its feed; each one's charts count its own", async (t) => {
    const { upstream, gateway } = await namedClientsScene(t, TEAMS_AND_PLAIN);
    upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const asA = { authorization: `Bearer ${TEAM_A_KEY}` };
    const asB = { authorization: `Bearer ${TEAM_A_NEW_KEY}` };
    const byA = await postChat(gateway, { model: "m" }, asA);
    assert.equal(byA.status, 200, byA.text);
    // More requests of team-b than the dashboard keeps lines for (50).
    const busy = 60;
    for (let index = 0; index < busy; index++) {
      assert.equal((await postChat(gateway, { model: "m" }, asB)).status, 200);
    }
    const state = async (headers: Record<string, string>) => {
      const response = await send(gateway, "GET", "/dashboard/api/state", { headers });
      assert.equal(response.status, 200, response.text);
      const body = response.json as { feed: { id: string; client: string | null }[]; series: { requests: number }[] };
      return {
        feed: body.feed,
        requests: body.series.reduce((sum, minute) => sum + minute.requests, 0),
      };
    };
    const ofA = await state(asA);
    assert.deepEqual(
      ofA.feed.map((entry) => entry.id),
      [byA.headers["x-request-id"]],
    );
    assert.equal(ofA.requests, 1, "team-a's charts count other clients' requests");
    const ofB = await state(asB);
    assert.equal(ofB.feed.length, 50);
    assert.ok(ofB.feed.every((entry) => entry.client === "team-b"));
    assert.equal(ofB.requests, busy);
    // An unnamed key sees the gateway's latest requests and counts them all.
    const ofPlain = await state({ authorization: `Bearer ${PLAIN_KEY}` });
    assert.equal(ofPlain.feed.length, 50);
    assert.equal(ofPlain.requests, busy + 1);
    // team-a's line opens its route although the gateway's memory has dropped it (from the request log).
    const route = await send(gateway, "GET", `/dashboard/api/requests/${byA.headers["x-request-id"]}`, {
      headers: asA,
    });
    assert.equal(route.status, 200, route.text);
  });

  test("/stats shows a named client its own budgets only; /metrics, which names every client, is for unnamed and admin keys", async (t) => {
    const adminKey = "admin-secret-key-1";
    const { upstream, gateway } = await namedClientsScene(
      t,
      [
        `{ key: ${TEAM_A_KEY}, name: team-a, limits: { rpm: 5 } }`,
        `{ key: ${TEAM_A_NEW_KEY}, name: team-b, limits: { rpm: 7 } }`,
        PLAIN_KEY,
      ],
      { adminKeys: [adminKey] },
    );
    upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const asA = { authorization: `Bearer ${TEAM_A_KEY}` };
    const asB = { authorization: `Bearer ${TEAM_A_NEW_KEY}` };
    const asPlain = { authorization: `Bearer ${PLAIN_KEY}` };
    assert.equal((await postChat(gateway, { model: "m" }, asA)).status, 200);
    assert.equal((await postChat(gateway, { model: "m" }, asB)).status, 200);

    const statsClients = async (headers: Record<string, string>) => {
      const stats = await send(gateway, "GET", "/stats", { headers });
      assert.equal(stats.status, 200, stats.text);
      const clients = (stats.json as { clients: Record<string, { budgets: { limit: number; used: number }[] }> })
        .clients;
      return Object.fromEntries(
        Object.entries(clients).map(([name, client]) => [name, client.budgets.map((w) => [w.used, w.limit])]),
      );
    };
    assert.deepEqual(await statsClients(asA), { "team-a": [[1, 5]] });
    assert.deepEqual(await statsClients(asB), { "team-b": [[1, 7]] });
    assert.deepEqual(await statsClients(asPlain), { "team-a": [[1, 5]], "team-b": [[1, 7]] });
    // /health names no client at all.
    const health = await send(gateway, "GET", "/health", { headers: asA });
    assert.equal(health.status, 200, health.text);
    assert.ok(!health.text.includes("team-"), health.text);

    // /metrics: a named client's key is refused (in any header), without a word of the others.
    for (const headers of [asA, { "x-api-key": TEAM_A_NEW_KEY }]) {
      const refused = await send(gateway, "GET", "/metrics", { headers });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(errorOf(refused).code, "permission_denied");
      assert.ok(!refused.text.includes("team-"), refused.text);
    }
    // An unnamed client key and an admin key scrape it; no key or a wrong one is still a 401.
    for (const headers of [asPlain, { authorization: `Bearer ${adminKey}` }]) {
      const scraped = await send(gateway, "GET", "/metrics", { headers });
      assert.equal(scraped.status, 200, scraped.text);
      const metrics = parsePrometheusText(scraped.text);
      assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team-b", status_class: "2xx" }), 1);
    }
    assert.equal((await send(gateway, "GET", "/metrics")).status, 401);
    const wrong = await send(gateway, "GET", "/metrics", { headers: { authorization: "Bearer not-a-key" } });
    assert.equal(wrong.status, 401);
    assert.equal(errorOf(wrong).message, "Invalid API key.");
  });

  test("kept Responses answers are their client's: another named client cannot read, continue from or delete them", async (t) => {
    const { upstream, gateway } = await namedClientsScene(t, TEAMS_AND_PLAIN);
    upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const sdk = (key: string) => new OpenAI({ baseURL: gateway.baseUrl, apiKey: key, maxRetries: 0 });
    const teamA = sdk(TEAM_A_KEY);
    const teamB = sdk(TEAM_A_NEW_KEY);
    const kept = await teamA.responses.create({ model: "m", input: "remember this" });
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => "ok",
        (error: unknown) => (error instanceof OpenAI.APIError ? error.status : String(error)),
      );
    // Its own client reads it and continues from it; an unnamed key reads it too.
    assert.equal(await outcome(teamA.responses.retrieve(kept.id)), "ok");
    assert.equal(
      await outcome(teamA.responses.create({ model: "m", previous_response_id: kept.id, input: "and?" })),
      "ok",
    );
    assert.equal(await outcome(sdk(PLAIN_KEY).responses.retrieve(kept.id)), "ok");
    // Another named client: not found, whatever it tries, and it deletes nothing.
    assert.equal(await outcome(teamB.responses.retrieve(kept.id)), 404);
    assert.equal(await outcome(teamB.responses.inputItems.list(kept.id)), 404);
    // Continuing from it is OpenAI's 400 previous_response_not_found, as for any id not found.
    assert.equal(await outcome(teamB.responses.create({ model: "m", previous_response_id: kept.id, input: "x" })), 400);
    const itemId = kept.output[0]?.id ?? "";
    assert.equal(
      await outcome(teamB.responses.create({ model: "m", input: [{ type: "item_reference", id: itemId }] })),
      404,
    );
    assert.equal(await outcome(teamB.responses.delete(kept.id)), 404);
    assert.equal(await outcome(teamA.responses.retrieve(kept.id)), "ok", "another client deleted it");
  });

  test("the Messages door records the client too; a wrong key is still refused", async (t) => {
    const { upstream, gateway } = await namedClientsScene(t, [`{ key: ${TEAM_A_KEY}, name: team-a }`]);
    upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const anthropic = new Anthropic({
      baseURL: gateway.baseUrl.replace(/\/v1$/, ""),
      apiKey: TEAM_A_KEY,
      maxRetries: 0,
    });
    const message = await anthropic.messages.create({
      model: "m",
      max_tokens: 50,
      messages: [{ role: "user", content: "hello" }],
    });
    assert.equal(message.content[0]?.type, "text");
    const wrong = await postChat(gateway, { model: "m" }, { authorization: "Bearer not-a-key" });
    assert.equal(wrong.status, 401);

    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10", {
      headers: { authorization: `Bearer ${TEAM_A_KEY}` },
    });
    const records = (listed.json as { data: (ListedRecord & { endpoint: string })[] }).data;
    assert.deepEqual(
      records.map((record) => [record.endpoint, record.client]),
      [["messages", "team-a"]],
    );
  });

  test("a client cannot guess the id another client's request gets, nor shadow that request's record with it", async (t) => {
    const { upstream, gateway } = await namedClientsScene(t, [
      `{ key: ${TEAM_A_KEY}, name: team-a }`,
      "{ key: team-b-secret-key, name: team-b }",
    ]);
    const asA = { authorization: `Bearer ${TEAM_A_KEY}` };
    const asB = { authorization: "Bearer team-b-secret-key" };
    upstream.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const ownId = (await postChat(gateway, { model: "m" }, asA)).headers["x-request-id"] ?? "";
    const othersId = (await postChat(gateway, { model: "m" }, asB)).headers["x-request-id"] ?? "";
    // What team-a could derive from its own id: the same id with the next counters (`req-<pid>-<start>-<n>[-...]`).
    const [, pid, start, counter] = /^req-([0-9a-z]+)-([0-9a-z]+)-([0-9a-z]+)/.exec(ownId) ?? [];
    assert.ok(counter !== undefined, ownId);
    const guesses = [1, 2, 3].map(
      (step) => `req-${pid}-${start}-${(Number.parseInt(counter, 36) + step).toString(36)}`,
    );
    assert.ok(!guesses.includes(othersId), `team-a can guess team-b's request id ${othersId}`);
    for (const guess of guesses) {
      assert.equal((await postChat(gateway, { model: "m" }, { ...asA, "x-request-id": guess })).status, 200);
    }
    // team-b still finds its own request by its id (the request log answers for its record after team-a's).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const own = await send(gateway, "GET", `/v1/gateway/requests/${othersId}`, { headers: asB });
    assert.equal(own.status, 200, own.text);
    assert.equal((own.json as { client: string }).client, "team-b");
  });
});
