// Non-streaming requests end to end: what reaches the upstream (key, model id, untouched fields), what comes
// back (body, gateway headers), every proxied endpoint, and every form of the `model` field.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import {
  CHAT_ROUTE,
  chatRequests,
  HELLO,
  modelOf,
  openAiClient,
  postChat,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

const ALPHA_KEY = "sk-secret-alpha-123";
const BETA_KEY = "sk-secret-beta-456";
const CLIENT_KEY = "client-key-789";

/** One mock provider `alpha` (ALPHA_KEY) serving `models` (its entries, YAML, one a line), the gateway in front. */
async function alphaScene(
  t: TestContext,
  models: readonly string[] = ["small-model: { id: vendor/small-model-v1 }"],
): Promise<{ alpha: MockUpstream; gateway: TestGateway }> {
  const alpha = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${ALPHA_KEY}
    models:
${models.map((entry) => `      ${entry}\n`).join("")}`,
  );
  return { alpha, gateway };
}

describe("chat completions (JSON)", () => {
  test("the upstream gets the provider's key and the upstream id; the client gets the answer and gateway headers", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key_env_var: ALPHA_API_KEY
    models:
      llama-3.3-70b: { id: meta-llama/Llama-3.3-70B-Instruct }
`,
      { env: { ALPHA_API_KEY: ALPHA_KEY } },
    );
    const client = openAiClient(gateway, CLIENT_KEY);
    const { data, response } = await client.chat.completions
      .create({ model: "llama-3.3-70b", messages: [{ role: "user", content: "Say hello" }] })
      .withResponse();

    assert.equal(data.model, "meta-llama/Llama-3.3-70B-Instruct");
    assert.equal(data.choices[0]?.message.content, "echo from meta-llama/Llama-3.3-70B-Instruct");
    assert.deepEqual(data.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
    assert.equal(response.headers.get("x-gateway-provider"), "alpha");
    assert.equal(response.headers.get("x-gateway-model"), "meta-llama/Llama-3.3-70B-Instruct");
    assert.equal(response.headers.get("x-gateway-attempts"), "1");

    const [upstream] = chatRequests(alpha);
    assert.equal(chatRequests(alpha).length, 1);
    assert.equal(upstream?.headers.authorization, `Bearer ${ALPHA_KEY}`);
    assert.equal(modelOf(upstream), "meta-llama/Llama-3.3-70B-Instruct");
    assert.deepEqual((upstream?.body as { messages?: unknown } | undefined)?.messages, [
      { role: "user", content: "Say hello" },
    ]);
    for (const [name, value] of Object.entries(upstream?.headers ?? {})) {
      assert.ok(!String(value).includes(CLIENT_KEY), `the client's key reached the upstream in ${name}`);
    }
  });

  test("/chat/completions without the /v1 prefix is the same endpoint", async (t) => {
    const { alpha, gateway } = await alphaScene(t);
    const response = await send(gateway, "POST", "/chat/completions", {
      body: { model: "small-model", messages: HELLO },
    });
    assert.equal(response.status, 200, response.text);
    assert.equal((response.json as { model: string }).model, "vendor/small-model-v1");
    assert.equal(response.headers["x-gateway-provider"], "alpha");
    assert.equal(chatRequests(alpha)[0]?.path, "/v1/chat/completions");
  });

  test("unknown request fields reach the upstream untouched; only `model` is rewritten and `models` dropped", async (t) => {
    const { alpha, gateway } = await alphaScene(t);
    const passThrough = {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "What's the weather?" }] },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Weather for a city",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        },
      ],
      tool_choice: "auto",
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", strict: true, schema: { type: "object" } },
      },
      temperature: 0.25,
      seed: 42,
      logit_bias: { "50256": -100 },
      user: "user-1",
      vendor_extension: { nested: [1, { deep: null }], flag: false },
    };
    const response = await postChat(gateway, { model: "small-model", models: ["small-model"], ...passThrough });
    assert.equal(response.status, 200, response.text);

    const upstreamBody = chatRequests(alpha)[0]?.body as Record<string, unknown>;
    assert.deepEqual(upstreamBody, { model: "vendor/small-model-v1", ...passThrough });
    assert.ok(!("models" in upstreamBody), "the gateway-only `models` field must not reach the upstream");
  });

  test("the response's `model` names the upstream model when the upstream left it out", async (t) => {
    const { alpha, gateway } = await alphaScene(t);
    const { model: _dropped, ...withoutModel } = chatCompletion("hi", "ignored");
    alpha.enqueue(CHAT_ROUTE, { kind: "json", body: withoutModel });
    const completion = await openAiClient(gateway).chat.completions.create({ model: "small-model", messages: HELLO });
    assert.equal(completion.model, "vendor/small-model-v1");
    assert.equal(completion.choices[0]?.message.content, "hi");
  });
});

describe("other endpoints", () => {
  test("/v1/completions is forwarded to the upstream's /completions with the upstream id", async (t) => {
    const { alpha, gateway } = await alphaScene(t);
    const { data, response } = await openAiClient(gateway)
      .completions.create({ model: "small-model", prompt: "Once upon a time" })
      .withResponse();
    assert.equal(data.choices[0]?.text, "echo from vendor/small-model-v1");
    assert.equal(data.model, "vendor/small-model-v1");
    assert.equal(response.headers.get("x-gateway-provider"), "alpha");
    const upstream = alpha.requests.find((recorded) => recorded.path === "/v1/completions");
    assert.equal(upstream?.headers.authorization, `Bearer ${ALPHA_KEY}`);
    assert.deepEqual(upstream?.body, { model: "vendor/small-model-v1", prompt: "Once upon a time" });
  });

  test("/completions and /embeddings without the /v1 prefix are the same endpoints", async (t) => {
    const { alpha, gateway } = await alphaScene(t, [
      "small-model: { id: vendor/small-model-v1 }",
      "text-embedding-3-small: {}",
    ]);
    const completion = await send(gateway, "POST", "/completions", { body: { model: "small-model", prompt: "Once" } });
    assert.equal(completion.status, 200, completion.text);
    assert.equal((completion.json as { object: string }).object, "text_completion");
    const embedding = await send(gateway, "POST", "/embeddings", {
      body: { model: "text-embedding-3-small", input: "one" },
    });
    assert.equal(embedding.status, 200, embedding.text);
    assert.equal((embedding.json as { object: string }).object, "list");
    assert.deepEqual(
      alpha.requests.map((recorded) => recorded.path),
      ["/v1/completions", "/v1/embeddings"],
    );
  });

  test("`stream: null` (the SDK's types allow it) is a JSON answer on chat and completions; no null goes upstream", async (t) => {
    const { alpha, gateway } = await alphaScene(t);
    const client = openAiClient(gateway);
    const chat = await client.chat.completions.create({ model: "small-model", messages: HELLO, stream: null });
    assert.equal(chat.object, "chat.completion");
    const completion = await client.completions.create({ model: "small-model", prompt: "Once", stream: null });
    assert.equal(completion.object, "text_completion");
    assert.deepEqual(
      alpha.requests.map((recorded) => [recorded.path, recorded.body]),
      [
        ["/v1/chat/completions", { model: "vendor/small-model-v1", messages: HELLO }],
        ["/v1/completions", { model: "vendor/small-model-v1", prompt: "Once" }],
      ],
    );
  });

  test("/v1/embeddings is served by embedding models only, which chat routing never uses", async (t) => {
    const { alpha, gateway } = await alphaScene(t, [
      "text-embedding-3-small: { priority: 100 }",
      "small-model: { id: vendor/small-model-v1, priority: 1 }",
    ]);
    const client = openAiClient(gateway);
    const { data, response } = await client.embeddings
      .create({ model: "text-embedding-3-small", input: ["one", "two"], encoding_format: "float" })
      .withResponse();
    assert.equal(data.data.length, 2);
    assert.equal(data.data[0]?.embedding.length, 8);
    assert.equal(response.headers.get("x-gateway-model"), "text-embedding-3-small");
    const upstream = alpha.requests.find((recorded) => recorded.path === "/v1/embeddings");
    assert.deepEqual(upstream?.body, {
      model: "text-embedding-3-small",
      input: ["one", "two"],
      encoding_format: "float",
    });

    // `stream: true` is refused at once (an upstream would refuse it, or stream an answer nobody can pass on).
    const embeddingsBefore = alpha.requests.filter((recorded) => recorded.path === "/v1/embeddings").length;
    const streamed = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "text-embedding-3-small", input: "one", stream: true },
    });
    assert.equal(streamed.status, 400, streamed.text);
    assert.equal((streamed.json as { error: { param: string } }).error.param, "stream");
    const unstreamed = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "text-embedding-3-small", input: "one", stream: false },
    });
    assert.equal(unstreamed.status, 200, unstreamed.text);
    assert.equal(alpha.requests.filter((recorded) => recorded.path === "/v1/embeddings").length, embeddingsBefore + 1);

    // priority-auto picks the best chat model, never the (higher-priority) embedding model.
    const auto = await postChat(gateway, { model: "priority-auto" });
    assert.equal(auto.status, 200, auto.text);
    assert.equal(auto.headers["x-gateway-model"], "vendor/small-model-v1");

    // An embedding model asked for on the chat endpoint is refused before any upstream call.
    const before = chatRequests(alpha).length;
    const wrongKind = await postChat(gateway, { model: "text-embedding-3-small" });
    assert.equal(wrongKind.status, 400);
    assert.equal((wrongKind.json as { error: { param: string } }).error.param, "model");
    assert.equal(chatRequests(alpha).length, before);

    // And a chat model on the embeddings endpoint likewise.
    const chatOnEmbeddings = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "small-model", input: "x" },
    });
    assert.equal(chatOnEmbeddings.status, 400);
  });
});

describe("the `model` field", () => {
  // Two providers serving `shared-model` and two single-provider models. Scores: priorities far apart, so the
  // preferred candidate is unambiguous.
  async function setUp(t: Parameters<typeof useMock>[0]) {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${ALPHA_KEY}
    retries: 0
    models:
      small-model: { id: alpha/small-v1, priority: 1 }
      big-model: { id: alpha/big-v1, priority: 50 }
      shared-model: { id: alpha/shared-v1, priority: 40 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: ${BETA_KEY}
    retries: 0
    models:
      shared-model: { id: beta/shared-v1, priority: 5 }
      text-embedding-3-small: { priority: 1000 }
meta_models:
  smart: [small-model, big-model]
routing:
  max_wait_for_better_ms: 0
`,
    );
    return { alpha, beta, gateway };
  }

  test("a public name picks the best-scoring provider serving it", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    const response = await postChat(gateway, { model: "shared-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "alpha");
    assert.equal((response.json as { model: string }).model, "alpha/shared-v1");
    assert.equal(chatRequests(beta).length, 0);
    assert.equal(modelOf(chatRequests(alpha)[0]), "alpha/shared-v1");
  });

  test("`provider/public-name` pins the provider", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    const response = await postChat(gateway, { model: "beta/shared-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal(response.headers["x-gateway-model"], "beta/shared-v1");
    assert.equal(chatRequests(alpha).length, 0);
    assert.equal(chatRequests(beta)[0]?.headers.authorization, `Bearer ${BETA_KEY}`);
  });

  test("a pinned provider that fails is not replaced by another provider", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    beta.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const response = await postChat(gateway, { model: "beta/shared-model" });
    assert.equal(response.status, 502, response.text);
    assert.equal(chatRequests(alpha).length, 0);
  });

  test("a meta model routes to the best of its members", async (t) => {
    const { alpha, gateway } = await setUp(t);
    const response = await postChat(gateway, { model: "smart" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-model"], "alpha/big-v1");
    assert.equal(modelOf(chatRequests(alpha)[0]), "alpha/big-v1");
  });

  test("priority-auto routes to the best chat model of all", async (t) => {
    const { gateway } = await setUp(t);
    const response = await postChat(gateway, { model: "priority-auto" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-model"], "alpha/big-v1");
  });

  test("a comma-separated list is tried in the order given, not by score", async (t) => {
    const { alpha, gateway } = await setUp(t);
    const first = await postChat(gateway, { model: "small-model, big-model" });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-model"], "alpha/small-v1");

    alpha.enqueue(CHAT_ROUTE, { kind: "json", status: 503, body: { error: { message: "down" } } });
    const second = await postChat(gateway, { model: "small-model,big-model" });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.headers["x-gateway-model"], "alpha/big-v1");
    assert.equal(second.headers["x-gateway-attempts"], "2");
    assert.deepEqual(chatRequests(alpha).map(modelOf), ["alpha/small-v1", "alpha/small-v1", "alpha/big-v1"]);
  });

  test("body `models: [...]` are fallbacks tried after `model`", async (t) => {
    const { alpha, beta, gateway } = await setUp(t);
    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const response = await postChat(gateway, { model: "small-model", models: ["beta/shared-model"] });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.deepEqual(chatRequests(alpha).map(modelOf), ["alpha/small-v1"]);
    assert.deepEqual(chatRequests(beta).map(modelOf), ["beta/shared-v1"]);
    assert.ok(!("models" in ((chatRequests(beta)[0]?.body ?? {}) as object)));
  });

  test("an alias reaches every provider serving the model, also one whose public name is spelled otherwise", async (t) => {
    // The Python project's files key models by the provider's own id (`llama-3.3-70b-versatile`); another provider
    // serves the same model under the alias as its public name. Before, the alias matched that public name exactly
    // and stopped there: `llama-3.3-70b` never reached the Groq entry.
    const groq = await useMock(t);
    const openrouter = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: groq
    base_url: ${groq.baseUrl}
    api_key: ${ALPHA_KEY}
    models:
      llama-3.3-70b-versatile: { priority: 10 }
  - name: openrouter
    base_url: ${openrouter.baseUrl}
    api_key: ${BETA_KEY}
    models:
      llama-3.3-70b: { id: meta-llama/llama-3.3-70b-instruct:free }
`,
    );
    const candidates = async (model: string) => {
      const route = await send(gateway, "GET", `/v1/gateway/route?model=${encodeURIComponent(model)}`);
      assert.equal(route.status, 200, route.text);
      return (route.json as { candidates: { provider: string }[] }).candidates.map((candidate) => candidate.provider);
    };
    assert.deepEqual(await candidates("llama-3.3-70b"), ["groq", "openrouter"]);
    assert.deepEqual(await candidates("Llama-3.3-70B-Instruct"), ["groq", "openrouter"]);
    // A provider's own spelling, and a pin, still address only that provider.
    assert.deepEqual(await candidates("llama-3.3-70b-versatile"), ["groq"]);
    assert.deepEqual(await candidates("meta-llama/llama-3.3-70b-instruct:free"), ["openrouter"]);
    assert.deepEqual(await candidates("openrouter/llama-3.3-70b"), ["openrouter"]);
    const response = await postChat(gateway, { model: "llama-3.3-70b" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "groq");
  });

  test("the upstream id itself (with its '/') addresses the model too", async (t) => {
    const { gateway } = await setUp(t);
    const response = await postChat(gateway, { model: "alpha/big-v1" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-model"], "alpha/big-v1");
  });
});
