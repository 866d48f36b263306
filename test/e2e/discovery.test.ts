// Model discovery for providers that list no models: every list shape providers answer with, names normalised
// so one public name reaches the same model everywhere, non-chat models kept apart, and the on-disk cache that
// keeps a provider usable when its /models is down.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  MODELS_ROUTE,
  modelOf,
  postChat,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

function discoveryRequests(mock: MockUpstream) {
  return mock.requests.filter((recorded) => recorded.method === "GET" && recorded.path === "/v1/models");
}

function cacheDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-discovery-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The provider's cache files: `models-<name>-<16 hex>.json`. */
function cacheFiles(dir: string, name: string): string[] {
  return readdirSync(dir).filter((file) => new RegExp(`^models-${name}-[0-9a-f]{16}\\.json$`).test(file));
}

function providerYaml(name: string, mock: MockUpstream): string {
  return `  - name: ${name}
    base_url: ${mock.baseUrl}
    api_key: sk-${name}-key
`;
}

interface ModelEntry {
  id: string;
  owned_by: string;
  kind: string;
}

describe("discovery", () => {
  test("reads {data:[...]}, {models:[...]} and bare lists; normalised names are shared across providers", async (t) => {
    const openAiStyle = await useMock(t, {
      models: [
        { id: "meta-llama/Llama-3.3-70B-Instruct", context_length: 131072 },
        { id: "text-embedding-3-small" },
        { id: "whisper-large-v3" },
      ],
    });
    const googleStyle = await useMock(t);
    googleStyle.enqueue(MODELS_ROUTE, {
      kind: "json",
      body: { models: [{ name: "llama-3.3-70b-versatile", context_window: 8192 }, { name: "gemma2-9b-it" }] },
    });
    const bareList = await useMock(t);
    bareList.enqueue(MODELS_ROUTE, { kind: "json", body: [{ id: "qwen/qwen3-32b" }, "mistral-small-2506"] });

    const gateway = await useGateway(
      t,
      `providers:
${providerYaml("one", openAiStyle)}${providerYaml("two", googleStyle)}${providerYaml("three", bareList)}`,
    );

    // Discovery asked each provider once, with its own key.
    for (const [mock, key] of [
      [openAiStyle, "sk-one-key"],
      [googleStyle, "sk-two-key"],
      [bareList, "sk-three-key"],
    ] as const) {
      const requests = discoveryRequests(mock);
      assert.equal(requests.length, 1);
      assert.equal(requests[0]?.headers.authorization, `Bearer ${key}`);
    }

    const listed = (await send(gateway, "GET", "/v1/models")).json as { data: ModelEntry[] };
    const byId = new Map(listed.data.map((entry) => [entry.id, entry]));
    assert.equal(byId.get("llama-3.3-70b")?.owned_by, "one,two");
    assert.equal(byId.get("text-embedding-3-small")?.kind, "embedding");
    assert.equal(byId.get("whisper-large-v3")?.kind, "transcription");
    assert.equal(byId.get("gemma-2-9b")?.kind, "chat");
    assert.equal(byId.get("qwen-3-32b")?.owned_by, "three");
    assert.equal(byId.get("mistral-small-2506")?.owned_by, "three");

    // One public name, each provider's own upstream id.
    const viaOne = await postChat(gateway, { model: "one/llama-3.3-70b" });
    assert.equal(viaOne.status, 200, viaOne.text);
    assert.equal(modelOf(chatRequests(openAiStyle)[0]), "meta-llama/Llama-3.3-70B-Instruct");
    const viaTwo = await postChat(gateway, { model: "two/llama-3.3-70b" });
    assert.equal(viaTwo.status, 200, viaTwo.text);
    assert.equal(modelOf(chatRequests(googleStyle)[0]), "llama-3.3-70b-versatile");
    assert.equal(viaTwo.headers["x-gateway-model"], "llama-3.3-70b-versatile");

    // The upstream id of one provider also reaches the shared name.
    const byUpstreamId = await postChat(gateway, { model: "llama-3.3-70b-versatile" });
    assert.equal(byUpstreamId.status, 200, byUpstreamId.text);
    assert.equal(byUpstreamId.headers["x-gateway-provider"], "two");
    const byString = await postChat(gateway, { model: "mistral-small-2506" });
    assert.equal(byString.headers["x-gateway-provider"], "three");
  });

  test("non-chat models stay out of chat routing but serve /v1/embeddings", async (t) => {
    const mock = await useMock(t, {
      models: [{ id: "text-embedding-3-small" }, { id: "whisper-large-v3" }, { id: "llama-3.1-8b-instant" }],
    });
    const gateway = await useGateway(t, `providers:\n${providerYaml("one", mock)}`);

    for (const model of ["text-embedding-3-small", "whisper-large-v3"]) {
      const response = await postChat(gateway, { model });
      assert.equal(response.status, 400, response.text);
      assert.equal(errorOf(response).param, "model");
    }
    // priority-auto never picks a non-chat model, whatever the order.
    for (let index = 0; index < 3; index++) {
      const auto = await postChat(gateway, { model: "priority-auto" });
      assert.equal(auto.headers["x-gateway-model"], "llama-3.1-8b-instant");
    }
    assert.deepEqual(chatRequests(mock).map(modelOf), Array(3).fill("llama-3.1-8b-instant"));

    const embedding = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "text-embedding-3-small", input: "hello" },
    });
    assert.equal(embedding.status, 200, embedding.text);
    assert.equal((embedding.json as { data: unknown[] }).data.length, 1);
    assert.equal(embedding.headers["x-gateway-model"], "text-embedding-3-small");
  });

  test("a discovered context_length steers context-length failover", async (t) => {
    // A made-up family, so that no shipped model metadata knows its context: only discovery says it.
    const small = await useMock(t, { models: [{ id: "zorblax-9.1-33b-versatile", context_length: 8192 }] });
    const unknown = await useMock(t, { models: [{ id: "zorblax-labs/zorblax-9.1-33b-instruct" }] });
    const large = await useMock(t);
    large.enqueue(MODELS_ROUTE, {
      kind: "json",
      body: { models: [{ name: "Zorblax-9.1-33B-Instruct", context_window: 131072 }] },
    });
    const gateway = await useGateway(
      t,
      `providers:
${providerYaml("small", small)}${providerYaml("unknown", unknown)}${providerYaml("large", large)}`,
    );
    small.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "Please reduce the length of the messages.", code: "context_length_exceeded" } },
    });
    // A comma list fixes the order: the small model first, then the unknown one, then the large one.
    const response = await postChat(gateway, {
      model: "small/zorblax-9.1-33b,unknown/zorblax-9.1-33b,large/zorblax-9.1-33b",
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "large");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.equal(
      chatRequests(unknown).length,
      0,
      "a model of unknown context is no better bet than the one that failed",
    );
  });

  test("a kind the provider's list states (Together's `type`) beats the guess from the id, also from the cache", async (t) => {
    const dir = cacheDir(t);
    const mock = await useMock(t, {
      models: [
        { id: "kwaivgI/kling-2.1-master", type: "video" },
        { id: "hexgrad/Kokoro-82M", type: "audio" },
        { id: "acme/plain-name", type: "embedding" },
        { id: "meta-llama/Llama-3.3-70B-Instruct-Turbo", type: "chat" },
        { id: "acme/base-model", type: "language" },
      ],
    });
    const yaml = `providers:
${providerYaml("one", mock)}discovery:
  cache_dir: ${JSON.stringify(dir)}
`;
    const kinds = async (gateway: Awaited<ReturnType<typeof startTestGateway>>) => {
      const listed = (await send(gateway, "GET", "/v1/models")).json as { data: ModelEntry[] };
      return Object.fromEntries(
        listed.data.filter((entry) => entry.id !== "priority-auto").map((entry) => [entry.id, entry.kind]),
      );
    };
    const expected = {
      "kling-2.1-master": "video",
      "kokoro-82m": "speech",
      "plain-name": "embedding",
      "llama-3.3-70b": "chat",
      "base-model": "chat",
    };
    const first = await startTestGateway(yaml);
    try {
      assert.deepEqual(await kinds(first), expected);
      // A video model is no chat candidate: a chat request for it is refused before any upstream call.
      const chat = await postChat(first, { model: "kling-2.1-master" });
      assert.equal(chat.status, 400, chat.text);
      assert.equal(chatRequests(mock).length, 0);
    } finally {
      await first.close();
    }
    // From the cache file (no second /models call): the same kinds.
    const second = await useGateway(t, yaml);
    assert.equal(discoveryRequests(mock).length, 1);
    assert.deepEqual(await kinds(second), expected);
  });

  test("the model list is cached on disk and reused when /models is down", async (t) => {
    const dir = cacheDir(t);
    const mock = await useMock(t, { models: [{ id: "cached-model-v1" }] });
    const yaml = (maxAge: string) => `providers:
${providerYaml("one", mock)}discovery:
  cache_dir: ${JSON.stringify(dir)}
${maxAge}`;

    const first = await startTestGateway(yaml(""));
    await first.close();
    assert.equal(discoveryRequests(mock).length, 1);
    assert.equal(cacheFiles(dir, "one").length, 1, "the discovered list was not written to the cache");

    // A fresh cache: no /models call at all.
    const second = await startTestGateway(yaml(""));
    try {
      assert.equal(discoveryRequests(mock).length, 1);
      assert.equal((await postChat(second, { model: "cached-model-v1" })).status, 200);
    } finally {
      await second.close();
    }

    // A stale cache and /models failing: the cached list still serves.
    mock.setDefault(MODELS_ROUTE, { kind: "json", status: 503, body: { error: { message: "down" } } });
    const third = await useGateway(t, yaml("  max_age_ms: 1\n"));
    assert.equal(discoveryRequests(mock).length, 2, "a stale cache must be refreshed first");
    const response = await postChat(third, { model: "cached-model-v1" });
    assert.equal(response.status, 200, response.text);
    assert.equal(modelOf(chatRequests(mock).at(-1)), "cached-model-v1");
  });

  test("the cache is keyed by provider, base_url and a hash of the key: a changed key or endpoint is refetched", async (t) => {
    const dir = cacheDir(t);
    const first = await useMock(t, { models: [{ id: "first-endpoint-model" }] });
    const second = await useMock(t, { models: [{ id: "second-endpoint-model" }] });
    const yaml = (mock: MockUpstream, key: string) => `providers:
  - name: one
    base_url: ${mock.baseUrl}
    api_key: ${key}
discovery:
  cache_dir: ${JSON.stringify(dir)}
`;
    const start = async (mock: MockUpstream, key: string) => (await startTestGateway(yaml(mock, key))).close();

    await start(first, "sk-key-alpha");
    await start(first, "sk-key-alpha");
    assert.equal(discoveryRequests(first).length, 1, "same provider, URL and key: the fresh cache serves");

    // Another key may see other models: asked again, with the new key.
    await start(first, "sk-key-beta");
    assert.equal(discoveryRequests(first).length, 2, "a changed key must be refetched");
    assert.equal(discoveryRequests(first)[1]?.headers.authorization, "Bearer sk-key-beta");

    // Same name, another endpoint: its own list, not the first endpoint's.
    const moved = await useGateway(t, yaml(second, "sk-key-beta"));
    assert.equal(discoveryRequests(second).length, 1, "a changed base_url must be refetched");
    assert.equal((await postChat(moved, { model: "second-endpoint-model" })).status, 200);
    assert.equal((await postChat(moved, { model: "first-endpoint-model" })).status, 404);

    // One file per provider (older ones replaced), and no key in any of them.
    const files = cacheFiles(dir, "one");
    assert.equal(files.length, 1, files.join(", "));
    for (const file of readdirSync(dir)) {
      const text = readFileSync(join(dir, file), "utf8");
      assert.doesNotMatch(text, /sk-key-/, `${file} holds a key`);
    }
    assert.match(readFileSync(join(dir, files[0] ?? ""), "utf8"), /second-endpoint-model/);
  });

  test("without a cache, a provider whose /models fails serves nothing and shows as failed in /health", async (t) => {
    const broken = await useMock(t);
    broken.setDefault(MODELS_ROUTE, { kind: "reset" });
    const working = await useMock(t, { models: [{ id: "working-model" }] });
    const gateway = await useGateway(
      t,
      `providers:
${providerYaml("broken", broken)}${providerYaml("working", working)}`,
    );
    const health = (await send(gateway, "GET", "/health")).json as {
      status: string;
      providers: { up: string[]; failed: { name: string; reason: string }[] };
    };
    assert.equal(health.status, "ok");
    assert.deepEqual(health.providers.up, ["working"]);
    assert.equal(health.providers.failed[0]?.name, "broken");
    assert.match(health.providers.failed[0]?.reason ?? "", /GET \/models failed/);
    assert.equal((await postChat(gateway, { model: "working-model" })).status, 200);
  });

  test("a /models list streamed without end stops at upstream_limits.max_response_bytes, not at the timeout", async (t) => {
    const endless = await useMock(t);
    let sentBytes = 0;
    endless.setDefault(MODELS_ROUTE, {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        const chunk = Buffer.from(`{"id":"${"m".repeat(1_000)}"},`);
        response.write('{"data":[');
        const pump = (): void => {
          while (!response.destroyed && response.write(chunk)) sentBytes += chunk.length;
          if (!response.destroyed) response.once("drain", pump);
        };
        pump();
      },
    });
    const working = await useMock(t, { models: [{ id: "working-model" }] });
    const startedMs = Date.now();
    const gateway = await useGateway(
      t,
      `providers:
${providerYaml("endless", endless)}${providerYaml("working", working)}upstream_limits:
  max_response_bytes: 1048576
discovery:
  timeout_ms: 20000
`,
    );
    // Before: read until the 20 s timeout, holding everything the upstream sent.
    assert.ok(Date.now() - startedMs < 10_000, `the start took ${Date.now() - startedMs} ms`);
    const health = (await send(gateway, "GET", "/health")).json as {
      providers: { up: string[]; failed: { name: string; reason: string }[] };
    };
    assert.deepEqual(health.providers.up, ["working"]);
    assert.match(
      health.providers.failed[0]?.reason ?? "",
      /larger than upstream_limits\.max_response_bytes \(1048576 bytes\)/,
    );
    // The download stopped near the bound (socket buffers aside), not at link speed for the timeout's length.
    assert.ok(sentBytes < 64 * 1_048_576, `${sentBytes} bytes sent`);
  });
});
