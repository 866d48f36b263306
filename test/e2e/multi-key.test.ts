// Several keys for one provider (`api_key_env_var: [A, B]`) are separate budgets: config loading expands the entry
// into providers `groq` and `groq.2`, one key each, so a key that is rejected, over its budget or out of its
// daily quota is left alone while the other key serves the same model.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { groq } from "../fixtures/provider-fixtures.ts";
import { CHAT_ROUTE, chatRequests, errorOf, postChat, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type RecordedRequest } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
const MODEL = "llama-3.3-70b";
const UPSTREAM_ID = "llama-3.3-70b-versatile";
const KEYS = { GROQ_KEY_1: "gsk-one", GROQ_KEY_2: "gsk-two" };

/** Upstream answers by key: `refuse` scripts what key 1 gets; key 2 always succeeds. */
async function twoKeys(t: TestContext, options: { refuse?: MockStep; entry?: string } = {}) {
  const clock = new ManualClock(START_MS);
  const mock = await useMock(t, { models: [{ id: UPSTREAM_ID }] });
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) =>
    request.headers.authorization === "Bearer gsk-one" && options.refuse !== undefined
      ? options.refuse
      : { kind: "json", body: chatCompletion("hi", UPSTREAM_ID) },
  );
  const gateway = await useGateway(
    t,
    `providers:
  - preset: groq
    base_url: ${mock.baseUrl}
    api_key_env_var: [GROQ_KEY_1, GROQ_KEY_2]
    retries: 0
${options.entry ?? ""}
routing:
  max_wait_for_better_ms: 0
`,
    { env: KEYS, clock },
  );
  return { mock, gateway, clock };
}

function keyOf(request: RecordedRequest | undefined): string | undefined {
  return request?.headers.authorization?.replace("Bearer ", "");
}

describe("several keys for one provider", () => {
  test("each key is a provider of its own, discovering with its own key, serving the same public model", async (t) => {
    const { mock, gateway } = await twoKeys(t);
    const discovery = mock.requests.filter((recorded) => recorded.method === "GET").map(keyOf);
    assert.deepEqual(discovery.sort(), ["gsk-one", "gsk-two"]);
    const listed = (await send(gateway, "GET", "/v1/models")).json as { data: { id: string; owned_by: string }[] };
    assert.equal(listed.data.find((entry) => entry.id === MODEL)?.owned_by, "groq,groq.2");
    const stats = await statsOf(gateway);
    assert.ok(stats.has(`groq/${MODEL}`) && stats.has(`groq.2/${MODEL}`));
  });

  test("key 1 answers 401: key 2 serves, and key 1 gets no more traffic", async (t) => {
    const invalidKey: MockStep = {
      kind: "json",
      status: 401,
      body: { error: { message: "Invalid API Key", type: "invalid_request_error", code: "invalid_api_key" } },
    };
    const { mock, gateway } = await twoKeys(t, { refuse: invalidKey });

    const first = await postChat(gateway, { model: MODEL });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "groq.2");
    assert.deepEqual(chatRequests(mock).map(keyOf), ["gsk-one", "gsk-two"]);

    const second = await postChat(gateway, { model: MODEL });
    assert.equal(second.headers["x-gateway-provider"], "groq.2");
    assert.deepEqual(chatRequests(mock).map(keyOf), ["gsk-one", "gsk-two", "gsk-two"]);
    assert.equal((await statsOf(gateway)).get(`groq/${MODEL}`)?.cooldown?.cause, "invalid_key");
    assert.equal((await statsOf(gateway)).get(`groq.2/${MODEL}`)?.cooldown, null);
  });

  test("key 1 out of its daily requests (Groq's RPD 429): key 2 serves until key 1's window resets", async (t) => {
    const perDay = groq.requestsPerDay429;
    const refuse: MockStep = {
      kind: "text",
      status: perDay.status,
      body: perDay.bodyText,
      headers: { "content-type": "application/json", ...perDay.headers },
    };
    const { mock, gateway, clock } = await twoKeys(t, { refuse });
    const first = await postChat(gateway, { model: MODEL });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "groq.2");
    const cooldown = (await statsOf(gateway)).get(`groq/${MODEL}`)?.cooldown;
    assert.equal(cooldown?.cause, "daily_quota");
    const second = await postChat(gateway, { model: MODEL });
    assert.equal(second.headers["x-gateway-provider"], "groq.2");
    assert.deepEqual(chatRequests(mock).map(keyOf), ["gsk-one", "gsk-two", "gsk-two"]);

    // Once key 1's window has reset (the 429 said when), key 1 is tried first again.
    clock.advance(cooldown?.remaining_ms ?? 0);
    await postChat(gateway, { model: MODEL });
    assert.equal(keyOf(chatRequests(mock)[3]), "gsk-one");
  });

  test("each key has its own budget: over key 1's rpd the request goes to key 2 without touching key 1", async (t) => {
    const { mock, gateway } = await twoKeys(t, {
      entry: `    known_models:\n      ${UPSTREAM_ID}: { limits: { rpd: 1 } }`,
    });
    const served: (string | undefined)[] = [];
    for (let index = 0; index < 2; index++) {
      const answer = await postChat(gateway, { model: MODEL });
      assert.equal(answer.status, 200, answer.text);
      served.push(answer.headers["x-gateway-provider"]);
    }
    assert.deepEqual(served, ["groq", "groq.2"]);
    assert.deepEqual(chatRequests(mock).map(keyOf), ["gsk-one", "gsk-two"]);

    // Both keys have used their one request today: the gateway refuses without calling the provider.
    const third = await postChat(gateway, { model: MODEL });
    assert.equal(third.status, 429);
    assert.equal(errorOf(third).code, "rate_limit_exceeded");
    assert.equal(chatRequests(mock).length, 2);
  });
});
