// The read-only routes: the model list clients pick from, /health for operators and load balancers, /stats
// counters after real traffic.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { CHAT_ROUTE, openAiClient, postChat, rowOf, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

async function setUp(t: TestContext, options: { clock?: ManualClock } = {}) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-a
    retries: 0
    models:
      shared-model: { id: alpha/shared-v1, priority: 10 }
      alpha-only: { id: alpha/only-v1, priority: 5 }
      text-embedding-3-small: {}
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-b
    retries: 0
    models:
      shared-model: { id: beta/shared-v1, priority: 1 }
  - name: gamma
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: GAMMA_KEY_NOT_SET
    models:
      gamma-model: {}
meta_models:
  smart: [shared-model, alpha-only]
routing:
  max_wait_for_better_ms: 0
`,
    options.clock === undefined ? {} : { clock: options.clock },
  );
  return { alpha, beta, gateway };
}

interface ModelEntry {
  id: string;
  object: string;
  owned_by: string;
  kind?: string;
}

describe("GET /v1/models and /models", () => {
  test("list every public name once, the meta models and priority-auto", async (t) => {
    const { gateway } = await setUp(t);
    const response = await send(gateway, "GET", "/v1/models");
    assert.equal(response.status, 200, response.text);
    const body = response.json as { object: string; data: ModelEntry[] };
    assert.equal(body.object, "list");
    const ids = body.data.map((entry) => entry.id);
    assert.deepEqual(ids, ["alpha-only", "shared-model", "text-embedding-3-small", "smart", "priority-auto"]);
    for (const entry of body.data) assert.equal(entry.object, "model");
    const byId = new Map(body.data.map((entry) => [entry.id, entry]));
    assert.equal(byId.get("shared-model")?.owned_by, "alpha,beta");
    assert.equal(byId.get("text-embedding-3-small")?.kind, "embedding");
    assert.equal(byId.get("shared-model")?.kind, "chat");
    assert.ok(!ids.includes("gamma-model"), "a skipped provider's models are not listed");

    const unprefixed = await send(gateway, "GET", "/models");
    assert.equal(unprefixed.status, 200);
    assert.deepEqual(unprefixed.json, response.json);
  });

  test("the SDK lists them, and every listed chat name can be requested", async (t) => {
    const { gateway } = await setUp(t);
    const client = openAiClient(gateway);
    const page = await client.models.list();
    const chatIds = page.data
      .filter((model) => (model as unknown as ModelEntry).kind === "chat")
      .map((model) => model.id);
    assert.deepEqual(chatIds.sort(), ["alpha-only", "priority-auto", "shared-model", "smart"]);
    for (const id of chatIds) {
      const completion = await client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content: "hi" }],
      });
      assert.match(completion.model, /^(alpha|beta)\//, id);
    }
  });

  test("a meta model is listed under the kind it serves: embedding members only make an embedding model", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-a
    models:
      chat-model: {}
      text-embedding-3-small: {}
meta_models:
  embeds: [text-embedding-3-small]
  mixed: [chat-model, text-embedding-3-small]
  talk: [chat-model]
`,
    );
    const client = openAiClient(gateway);
    const kinds = new Map(
      (await client.models.list()).data.map((model) => [model.id, (model as unknown as ModelEntry).kind]),
    );
    assert.deepEqual(
      [...kinds],
      [
        ["chat-model", "chat"],
        ["text-embedding-3-small", "embedding"],
        ["embeds", "embedding"],
        ["mixed", "chat"],
        ["talk", "chat"],
        ["priority-auto", "chat"],
      ],
    );
    const embeds = (await client.models.retrieve("embeds")) as unknown as ModelEntry & { endpoints: string[] };
    assert.equal(embeds.kind, "embedding");
    assert.deepEqual(embeds.endpoints, ["/v1/embeddings"]);
    // Listed means usable: the embeddings endpoint serves it.
    const embedding = await client.embeddings.create({ model: "embeds", input: "x", encoding_format: "float" });
    assert.equal(embedding.data.length, 1);
  });
});

test("a model of a kind no route serves (audio chat, video, OCR) is listed without endpoints, not with the chat routes; transcription, speech, image, rerank and moderation models with their routes", async (t) => {
  const alpha = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-a
    models:
      chat-model: {}
      whisper-large-v3: {}
      playai-tts: {}
      gpt-4o-audio-preview: {}
      ranker: { kind: rerank }
      dall-e-3: {}
      veo-3.0-generate-001: {}
      mistral-ocr-latest: {}
      omni-moderation-latest: {}
`,
  );
  const models = (await openAiClient(gateway).models.list()).data as unknown as (ModelEntry & {
    endpoints: string[];
  })[];
  const byId = new Map(models.map((model) => [model.id, model]));
  assert.equal(byId.get("whisper-large-v3")?.kind, "transcription");
  assert.deepEqual(byId.get("whisper-large-v3")?.endpoints, ["/v1/audio/transcriptions", "/v1/audio/translations"]);
  assert.equal(byId.get("playai-tts")?.kind, "speech");
  assert.deepEqual(byId.get("playai-tts")?.endpoints, ["/v1/audio/speech"]);
  assert.equal(byId.get("gpt-4o-audio-preview")?.kind, "audio");
  assert.deepEqual(byId.get("gpt-4o-audio-preview")?.endpoints, []);
  assert.equal(byId.get("ranker")?.kind, "rerank");
  assert.deepEqual(byId.get("ranker")?.endpoints, ["/v1/rerank"]);
  assert.equal(byId.get("dall-e-3")?.kind, "image");
  assert.deepEqual(byId.get("dall-e-3")?.endpoints, [
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/images/variations",
  ]);
  assert.equal(byId.get("veo-3.0-generate-001")?.kind, "video");
  assert.deepEqual(byId.get("veo-3.0-generate-001")?.endpoints, []);
  assert.equal(byId.get("mistral-ocr-latest")?.kind, "ocr");
  assert.deepEqual(byId.get("mistral-ocr-latest")?.endpoints, []);
  // Moderation models were listed without endpoints while no route served them.
  assert.equal(byId.get("omni-moderation-latest")?.kind, "moderation");
  assert.deepEqual(byId.get("omni-moderation-latest")?.endpoints, ["/v1/moderations"]);
  assert.equal(byId.get("chat-model")?.endpoints.includes("/v1/chat/completions"), true);
});

describe("GET /health and /ok", () => {
  test("/ok answers without touching any upstream", async (t) => {
    const { alpha, gateway } = await setUp(t);
    const response = await send(gateway, "GET", "/ok");
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { status: "ok" });
    assert.equal(alpha.requests.length, 0);
  });

  test("/health lists providers up, cooling and skipped (with the reason)", async (t) => {
    const clock = new ManualClock();
    const { alpha, beta, gateway } = await setUp(t, { clock });
    const healthy = await send(gateway, "GET", "/health");
    assert.equal(healthy.status, 200, healthy.text);
    const initial = healthy.json as {
      status: string;
      providers: {
        up: string[];
        cooling: { name: string; until: string; reason: string }[];
        failed: unknown[];
        skipped: { name: string; reason: string }[];
      };
      models: number;
    };
    assert.equal(initial.status, "ok");
    assert.deepEqual(initial.providers.up, ["alpha", "beta"]);
    assert.equal(initial.models, 4);
    assert.equal(initial.providers.skipped.length, 1);
    assert.equal(initial.providers.skipped[0]?.name, "gamma");
    assert.match(initial.providers.skipped[0]?.reason ?? "", /GAMMA_KEY_NOT_SET/);

    // beta's only model is rate-limited for 60 s: beta is cooling until then.
    beta.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "60" }));
    await postChat(gateway, { model: "beta/shared-model" });
    const cooling = (await send(gateway, "GET", "/health")).json as typeof initial;
    assert.equal(cooling.status, "ok");
    assert.deepEqual(cooling.providers.up, ["alpha"]);
    assert.equal(cooling.providers.cooling[0]?.name, "beta");
    assert.equal(cooling.providers.cooling[0]?.until, new Date(clock.now() + 60_000).toISOString());

    // Every alpha model cooling too: nothing is up, the gateway is degraded but still 200.
    alpha.setDefault(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    alpha.setDefault("POST /v1/embeddings", rateLimited({ retryAfter: "30" }));
    for (const model of ["alpha-only", "alpha/shared-model"]) await postChat(gateway, { model });
    await send(gateway, "POST", "/v1/embeddings", { body: { model: "text-embedding-3-small", input: "x" } });
    const degraded = await send(gateway, "GET", "/health");
    assert.equal(degraded.status, 200, degraded.text);
    assert.equal((degraded.json as typeof initial).status, "degraded");
    assert.deepEqual((degraded.json as typeof initial).providers.up, []);
  });

  test("/health is 503 down when every provider's key was rejected", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    const rejected = { kind: "json" as const, status: 401, body: { error: { message: "invalid api key" } } };
    alpha.enqueue(CHAT_ROUTE, rejected);
    beta.enqueue(CHAT_ROUTE, rejected);
    const chat = await postChat(gateway, { model: "shared-model" });
    assert.equal(chat.status, 502, chat.text);
    const health = await send(gateway, "GET", "/health");
    assert.equal(health.status, 503, health.text);
    const body = health.json as { status: string; providers: { failed: { name: string }[] } };
    assert.equal(body.status, "down");
    assert.deepEqual(body.providers.failed.map((entry) => entry.name).sort(), ["alpha", "beta"]);
  });
});

describe("GET /stats", () => {
  test("counts successes, failures, tokens and latency per provider and model", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    alpha.enqueue(
      CHAT_ROUTE,
      {
        kind: "json",
        delayMs: 60,
        body: chatCompletion("one", "alpha/shared-v1", { prompt_tokens: 11, completion_tokens: 4 }),
      },
      { kind: "json", body: chatCompletion("two", "alpha/shared-v1", { prompt_tokens: 20, completion_tokens: 6 }) },
      { kind: "json", status: 500, body: { error: { message: "boom" } } },
    );
    beta.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("three", "beta/shared-v1", { prompt_tokens: 7, completion_tokens: 2 }),
    });
    for (let index = 0; index < 3; index++) {
      const response = await postChat(gateway, { model: "shared-model" });
      assert.equal(response.status, 200, response.text);
    }

    const stats = await statsOf(gateway);
    const alphaRow = rowOf(stats, "alpha/shared-model");
    assert.equal(alphaRow.upstream_id, "alpha/shared-v1");
    assert.equal(alphaRow.kind, "chat");
    assert.equal(alphaRow.successes, 2);
    assert.equal(alphaRow.failures, 1);
    assert.equal(alphaRow.tokens_in, 31);
    assert.equal(alphaRow.tokens_out, 10);
    assert.ok(alphaRow.latency_ms !== null);
    // Lower bounds only: the mock waited 60 ms before its first answer.
    assert.ok(alphaRow.latency_ms.max >= 55, `max latency ${alphaRow.latency_ms.max}`);
    assert.ok(alphaRow.latency_ms.min <= alphaRow.latency_ms.mean);
    assert.ok(alphaRow.latency_ms.mean <= alphaRow.latency_ms.max);

    const betaRow = rowOf(stats, "beta/shared-model");
    assert.deepEqual([betaRow.successes, betaRow.failures, betaRow.tokens_in, betaRow.tokens_out], [1, 0, 7, 2]);
    const untouched = rowOf(stats, "alpha/alpha-only");
    assert.deepEqual([untouched.successes, untouched.failures, untouched.latency_ms], [0, 0, null]);
    assert.equal(untouched.circuit, "closed");
    assert.equal(untouched.cooldown, null);
  });
});
