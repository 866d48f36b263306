// A client's allowed models (`server.api_keys` entries `{ key, name, models }`): its requests reach only what those
// names resolve to — however it names a model (a comma list, a fallback array, `priority-auto`) — and /v1/models
// lists only those. Over loopback, with the OpenAI SDK as the client.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { chatRequests, errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT = "POST /v1/chat/completions";
const CI_KEY = "ci-secret-key";
const TEAM_KEY = "team-secret-key";
const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe("a client's allowed models", () => {
  test("only the deployments its names resolve to, whatever the request names; /v1/models lists only those", async (t) => {
    const small = await useMock(t);
    const large = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${CI_KEY}, name: ci, models: [fast] }
    - { key: ${TEAM_KEY}, name: team }
providers:
  - name: small
    base_url: ${small.baseUrl}
    api_key: sk-small-secret
    retries: 0
    models:
      small-m: { id: small-id, priority: 1 }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large-secret
    models:
      large-m: { id: large-id, priority: 10 }
meta_models:
  fast: [small-m]
routing:
  max_wait_for_better_ms: 0
`,
    );
    small.enqueue(CHAT, { kind: "json", body: chatCompletion("small", "small-id") });
    small.enqueue(CHAT, { kind: "json", body: chatCompletion("small", "small-id") });
    assert.equal((await postChat(gateway, { model: "fast" }, as(CI_KEY))).status, 200);
    // The public name `fast` resolves to is allowed too; the best model (`priority-auto`) is the allowed one.
    const auto = await postChat(gateway, { model: "priority-auto" }, as(CI_KEY));
    assert.equal(auto.status, 200, auto.text);
    assert.equal(auto.headers["x-gateway-provider"], "small");

    const denied = await postChat(gateway, { model: "large-m" }, as(CI_KEY));
    assert.equal(denied.status, 403, denied.text);
    const error = errorOf(denied);
    assert.equal(error.code, "permission_denied");
    assert.match(error.message, /This client may not use `large-m`: its key allows `fast`/);

    // A comma list or a fallback array does not reach a model the client may not use, even with the allowed one cooling.
    small.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    const cooling = await postChat(gateway, { model: "small-m,large-m", models: ["large-m"] }, as(CI_KEY));
    assert.equal(cooling.status, 429, cooling.text);
    assert.equal(chatRequests(large).length, 0, "a model the client may not use was called");

    // Another client: every model.
    large.enqueue(CHAT, { kind: "json", body: chatCompletion("large", "large-id") });
    assert.equal((await postChat(gateway, { model: "large-m" }, as(TEAM_KEY))).status, 200);

    const listed = async (key: string) =>
      (await new OpenAI({ baseURL: gateway.baseUrl, apiKey: key, maxRetries: 0 }).models.list()).data
        .map((model) => model.id)
        .sort();
    assert.deepEqual(await listed(CI_KEY), ["fast", "priority-auto", "small-m"]);
    assert.deepEqual(await listed(TEAM_KEY), ["fast", "large-m", "priority-auto", "small-m"]);
    const retrieve = await new OpenAI({ baseURL: gateway.baseUrl, apiKey: CI_KEY, maxRetries: 0 }).models
      .retrieve("large-m")
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    assert.ok(retrieve instanceof OpenAI.NotFoundError, "a model the client may not use was retrievable");

    // The route explanation is the asking client's: the route its requests take, the same 403 for a name it may not use.
    const route = (model: string, key: string) =>
      send(gateway, "GET", `/v1/gateway/route?model=${model}`, { headers: as(key) });
    const autoRoute = await route("priority-auto", CI_KEY);
    assert.equal(autoRoute.status, 200, autoRoute.text);
    const providersOf = (json: unknown) => {
      const explained = json as { candidates: { provider: string }[]; skipped: { provider: string }[] };
      return [...explained.candidates, ...explained.skipped].map((entry) => entry.provider).sort();
    };
    assert.deepEqual(
      providersOf(autoRoute.json),
      ["small"],
      "the CI client's route explanation shows a model it may not use",
    );
    const deniedRoute = await route("large-m", CI_KEY);
    assert.equal(deniedRoute.status, 403, deniedRoute.text);
    assert.equal(errorOf(deniedRoute).code, "permission_denied");
    assert.deepEqual(providersOf((await route("priority-auto", TEAM_KEY)).json), ["large", "small"]);
  });

  test("Anthropic's token count refuses a model the client may not use with the 403 /v1/messages answers", async (t) => {
    const small = await useMock(t);
    const large = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${CI_KEY}, name: ci, models: [small-m] }
    - { key: ${TEAM_KEY}, name: team }
providers:
  - name: small
    base_url: ${small.baseUrl}
    api_key: sk-small-secret
    models:
      small-m: { id: small-id }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large-secret
    models:
      large-m: { id: large-id }
`,
    );
    const anthropic = (key: string) =>
      new Anthropic({ baseURL: gateway.baseUrl.replace(/\/v1$/, ""), apiKey: key, maxRetries: 0 });
    const params = (model: string) => ({ model, messages: [{ role: "user" as const, content: "How many tokens?" }] });
    const countError = (key: string, model: string) =>
      anthropic(key)
        .messages.countTokens(params(model))
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );

    // A model it may use is counted; so is any model for a client without `models`.
    assert.ok((await anthropic(CI_KEY).messages.countTokens(params("small-m"))).input_tokens > 0);
    assert.ok((await anthropic(TEAM_KEY).messages.countTokens(params("large-m"))).input_tokens > 0);

    // A model it may not use: the same refusal, in the same (Anthropic) shape, as /v1/messages gives it.
    const counted = await countError(CI_KEY, "large-m");
    assert.ok(counted instanceof Anthropic.PermissionDeniedError, `counted: ${String(counted)}`);
    const sent = await anthropic(CI_KEY)
      .messages.create({ ...params("large-m"), max_tokens: 10 })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    assert.ok(sent instanceof Anthropic.PermissionDeniedError, `sent: ${String(sent)}`);
    assert.deepEqual(
      { type: (counted.error as { type?: string }).type, error: (counted.error as { error?: object }).error },
      { type: (sent.error as { type?: string }).type, error: (sent.error as { error?: object }).error },
    );
    const raw = await send(gateway, "POST", "/v1/messages/count_tokens", {
      body: params("large-m"),
      headers: { "x-api-key": CI_KEY },
    });
    assert.equal(raw.status, 403, raw.text);
    const body = raw.json as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error?.type, "permission_error");
    assert.match(body.error?.message ?? "", /This client may not use `large-m`: its key allows `small-m`/);
    // The Responses door's count too, in OpenAI's shape.
    const inputTokens = await send(gateway, "POST", "/v1/responses/input_tokens", {
      body: { model: "large-m", input: "Hi" },
      headers: { authorization: `Bearer ${CI_KEY}` },
    });
    assert.equal(inputTokens.status, 403, inputTokens.text);
    assert.equal(errorOf(inputTokens).code, "permission_denied");
    const allowed = await send(gateway, "POST", "/v1/responses/input_tokens", {
      body: { model: "small-m", input: "Hi" },
      headers: { authorization: `Bearer ${CI_KEY}` },
    });
    assert.equal(allowed.status, 200, allowed.text);
    // Nothing was sent upstream for any of it.
    assert.equal(chatRequests(large).length + chatRequests(small).length, 0);
  });

  test("a pin to a provider that is skipped allows nothing, not the model on every other provider", async (t) => {
    const large = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${CI_KEY}, name: ci, models: [groq/large-m] }
providers:
  - name: groq
    enabled: false
    base_url: http://127.0.0.1:9/v1
    api_key: sk-groq-secret
    models:
      large-m: { id: large-id }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large-secret
    models:
      large-m: { id: large-id }
`,
    );
    // groq is disabled (as when its key is unset): the client's only allowed model is gone, and `large-m` on
    // another provider is no substitute (the old code resolved `groq/large-m` to it, as a request's name would be).
    large.enqueue(CHAT, { kind: "json", body: chatCompletion("large", "large-id") });
    const denied = await postChat(gateway, { model: "large-m" }, as(CI_KEY));
    assert.equal(denied.status, 403, denied.text);
    assert.equal(errorOf(denied).code, "permission_denied");
    assert.equal(chatRequests(large).length, 0, "the client reached a provider its pin does not name");
    const models = await send(gateway, "GET", "/v1/models", { headers: as(CI_KEY) });
    assert.deepEqual((models.json as { data: unknown[] }).data, []);
  });

  test("a client named like an Object property (constructor, toString) has no rules it did not state", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${CI_KEY}, name: constructor }
    - { key: ${TEAM_KEY}, name: toString }
providers:
  - name: small
    base_url: ${upstream.baseUrl}
    api_key: sk-small-secret
    models:
      small-m: { id: small-id }
`,
    );
    for (const key of [CI_KEY, TEAM_KEY]) {
      upstream.enqueue(CHAT, { kind: "json", body: chatCompletion("small", "small-id") });
      const answer = await postChat(gateway, { model: "small-m" }, as(key));
      assert.equal(answer.status, 200, answer.text);
      const models = await send(gateway, "GET", "/v1/models", { headers: as(key) });
      assert.equal(models.status, 200, models.text);
      const route = await send(gateway, "GET", "/v1/gateway/route?model=small-m", { headers: as(key) });
      assert.equal(route.status, 200, route.text);
    }
  });
});
