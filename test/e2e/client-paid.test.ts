// A client's own `paid` (`server.api_keys` entries `{ key, name, paid }`): a CI key that must never cost money
// gets `paid: never` while everyone else keeps `routing.paid: last_resort`. Over loopback: the paid upstream is
// never called for that client, whatever the free one does; another client falls back to it as usual.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chatRequests, errorOf, postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT = "POST /v1/chat/completions";
const CI_KEY = "ci-secret-key";
const TEAM_KEY = "team-secret-key";
const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe("a client's own paid policy", () => {
  test("paid: never for one client: its requests never reach a paid upstream; other clients fall back to it", async (t) => {
    const free = await useMock(t);
    const paid = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${CI_KEY}, name: ci, paid: never }
    - { key: ${TEAM_KEY}, name: team }
providers:
  - name: free
    base_url: ${free.baseUrl}
    api_key: sk-free-secret
    cost: free
    retries: 0
    models:
      m: { id: free-m, priority: 10 }
  - name: paid
    base_url: ${paid.baseUrl}
    api_key: sk-paid-secret
    cost: paid
    models:
      m: { id: paid-m }
      only-paid: { id: paid-only }
routing:
  max_wait_for_better_ms: 0
`,
    );
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
});
