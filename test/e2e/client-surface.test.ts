// What clients other than the OpenAI SDK's chat need around the endpoints: client keys in the headers other SDKs
// use, CORS for browser pages on another origin (preflight without a key, headers on streams too), and
// GET /v1/models/{id}.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { chromium } from "playwright-core";
import { errorOf, HELLO, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatStream } from "../helpers/mock-upstream.ts";

const CLIENT_KEY = "client-key-surface-1";

async function keyedGateway(t: Parameters<typeof useMock>[0], extraServer = "") {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
${extraServer}providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      llama-3.3-70b: { id: meta-llama/Llama-3.3-70B-Instruct }
`,
  );
  return { mock, gateway };
}

const chatBody = { model: "llama-3.3-70b", messages: [{ role: "user", content: "hi" }] };

describe("client keys", () => {
  test("a key is accepted as Authorization: Bearer, x-api-key and api-key; a wrong one in any is 401", async (t) => {
    const { gateway } = await keyedGateway(t);
    for (const headers of [
      { authorization: `Bearer ${CLIENT_KEY}` },
      { "x-api-key": CLIENT_KEY },
      { "api-key": CLIENT_KEY },
    ]) {
      const response = await send(gateway, "POST", "/v1/chat/completions", { body: chatBody, headers });
      assert.equal(response.status, 200, `${JSON.stringify(headers)}: ${response.text}`);
    }
    const wrong = await send(gateway, "POST", "/v1/chat/completions", {
      body: chatBody,
      headers: { "x-api-key": "nope" },
    });
    assert.equal(wrong.status, 401);
    assert.equal(errorOf(wrong).message, "Invalid API key.");
    const missing = await send(gateway, "POST", "/v1/chat/completions", { body: chatBody });
    assert.equal(missing.status, 401);
    assert.match(errorOf(missing).message, /x-api-key/);
  });

  test("on /v1/messages a missing key is a 401 in Anthropic's error shape", async (t) => {
    const { gateway } = await keyedGateway(t);
    const response = await send(gateway, "POST", "/v1/messages", { body: {} });
    assert.equal(response.status, 401);
    const body = response.json as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error?.type, "authentication_error");
    assert.match(body.error?.message ?? "", /Missing API key/);
  });
});

describe("GET /v1/models/{id}", () => {
  test("retrieves a model (ids with / included) in OpenAI's shape, with the endpoints it serves; unknown is 404", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      meta-llama/Llama-3.3-70B-Instruct: {}
`,
    );
    const client = openAiClient(gateway);
    const model = await client.models.retrieve("meta-llama/Llama-3.3-70B-Instruct");
    assert.equal(model.id, "meta-llama/Llama-3.3-70B-Instruct");
    assert.equal(model.object, "model");
    assert.equal(model.owned_by, "alpha");
    assert.deepEqual((model as unknown as { endpoints: string[] }).endpoints, [
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/responses",
      "/v1/messages",
    ]);
    const unknown = await send(gateway, "GET", "/v1/models/nope%2Fmissing");
    assert.equal(unknown.status, 404);
    const error = errorOf(unknown);
    assert.equal(error.code, "model_not_found");
    assert.match(error.message, /nope\/missing/);
    // A path of kilobytes is not quoted whole (no model name is longer than 256 characters).
    const long = await send(gateway, "GET", `/v1/models/org/${"x".repeat(8_000)}`);
    assert.equal(long.status, 404);
    assert.ok(errorOf(long).message.length < 200, `a ${errorOf(long).message.length}-character message`);
    // The cut (64 UTF-16 units) between an emoji's two halves: the quoted id is cut before it, not into a lone
    // surrogate that strict JSON readers (serde_json) refuse.
    const emoji = await send(
      gateway,
      "GET",
      `/v1/models/${"e".repeat(63)}${encodeURIComponent("\u{1F600}".repeat(200))}`,
    );
    assert.equal(emoji.status, 404);
    assert.ok(errorOf(emoji).message.isWellFormed(), errorOf(emoji).message);
    assert.match(errorOf(emoji).message, /`e{63}…`/);
  });

  test("the id is decoded once: ids with `%` are retrieved as the SDK sends them; a stray `%` is never a 500", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      "m%20x": { id: vendor/m }
      "50%off": { id: vendor/m2 }
`,
    );
    const client = openAiClient(gateway);
    // The SDK sends `m%2520x` and `50%25off`: one decoding gives the ids back.
    assert.equal((await client.models.retrieve("m%20x")).id, "m%20x");
    assert.equal((await client.models.retrieve("50%off")).id, "50%off");
    // Decoded twice, `a%252Fb` would be `a/b` and `foo%25` a URIError (500).
    for (const [path, id] of [
      ["/v1/models/a%252Fb", "a%2Fb"],
      ["/v1/models/foo%25", "foo%"],
      ["/v1/models/m%20x", "m x"],
    ] as const) {
      const response = await send(gateway, "GET", path);
      assert.equal(response.status, 404, `${path}: ${response.text}`);
      assert.equal(errorOf(response).code, "model_not_found");
      assert.ok(errorOf(response).message.includes(`\`${id}\``), errorOf(response).message);
    }
    const malformed = await send(gateway, "GET", "/v1/models/50%off");
    assert.equal(malformed.status, 400, malformed.text);
    assert.equal(errorOf(malformed).code, "invalid_request");
  });

  test("any name a request accepts is retrieved: `provider/name`, the upstream id, a normalised name", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: vendor/m-instruct }
      embed: { kind: embedding }
`,
    );
    const client = openAiClient(gateway);
    // Each is served by `POST /v1/chat/completions` (or embeddings): a client checking it first must not be told 404.
    for (const [id, kind] of [
      ["alpha/m", "chat"],
      ["vendor/m-instruct", "chat"],
      ["M", "chat"],
      ["alpha/embed", "embedding"],
    ] as const) {
      const model = await client.models.retrieve(id);
      assert.equal(model.id, id);
      assert.equal(model.owned_by, "alpha");
      assert.equal((model as unknown as { kind: string }).kind, kind);
    }
    const served = await client.chat.completions.create({ model: "alpha/m", messages: HELLO });
    assert.equal(served.choices[0]?.message.content, "echo from vendor/m-instruct");
    // A name nothing serves, a provider's name with a model it does not serve, and a comma list are still 404s.
    for (const path of ["/v1/models/nope", "/v1/models/alpha/nope", "/v1/models/m,embed"]) {
      const response = await send(gateway, "GET", path);
      assert.equal(response.status, 404, `${path}: ${response.text}`);
      assert.equal(errorOf(response).code, "model_not_found");
    }
  });
});

describe("CORS", () => {
  test("a preflight is answered without a key, naming the headers explicitly; answers carry the origin", async (t) => {
    const { gateway } = await keyedGateway(t);
    const origin = "http://localhost:5173";
    const preflight = await send(gateway, "OPTIONS", "/v1/chat/completions", {
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
      },
    });
    assert.equal(preflight.status, 204, preflight.text);
    assert.equal(preflight.headers["access-control-allow-origin"], origin);
    const allowed = (preflight.headers["access-control-allow-headers"] ?? "").split(", ");
    for (const name of [
      "authorization",
      "content-type",
      "x-api-key",
      "api-key",
      "anthropic-version",
      "anthropic-beta",
      "x-stainless-os",
    ]) {
      assert.ok(allowed.includes(name), `${name} in ${allowed.join(", ")}`);
    }
    assert.match(preflight.headers["access-control-allow-methods"] ?? "", /POST/);

    const stranger = await send(gateway, "OPTIONS", "/v1/chat/completions", {
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    assert.equal(stranger.headers["access-control-allow-origin"], undefined, "an origin not configured gets no CORS");
  });

  test("streamed answers carry the CORS headers too", async (t) => {
    const { mock, gateway } = await keyedGateway(t);
    mock.enqueue("POST /v1/chat/completions", {
      kind: "sse",
      events: chatStream(["Hi"], "meta-llama/Llama-3.3-70B-Instruct"),
    });
    const response = await send(gateway, "POST", "/v1/chat/completions", {
      body: { ...chatBody, stream: true },
      headers: { authorization: `Bearer ${CLIENT_KEY}`, origin: "http://127.0.0.1:3000" },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers["content-type"] ?? "", /text\/event-stream/);
    assert.equal(response.headers["access-control-allow-origin"], "http://127.0.0.1:3000");
    assert.match(response.headers["access-control-expose-headers"] ?? "", /x-gateway-provider/);
    // Anthropic's SDK reads `request-id` (sent on the Messages routes): a browser client must be allowed to.
    assert.match(response.headers["access-control-expose-headers"] ?? "", /(?:^|, )request-id(?:,|$)/);
  });

  test("configured origins replace the local default", async (t) => {
    const { gateway } = await keyedGateway(t, "  cors_origins: [https://app.example.com]\n");
    const allowed = await send(gateway, "GET", "/ok", { headers: { origin: "https://app.example.com" } });
    assert.equal(allowed.headers["access-control-allow-origin"], "https://app.example.com");
    const local = await send(gateway, "GET", "/ok", { headers: { origin: "http://localhost:5173" } });
    assert.equal(local.headers["access-control-allow-origin"], undefined);
  });

  test("a page in headless Chromium on another origin calls /v1/chat/completions with fetch", async (t) => {
    const browserPath = "/usr/bin/chromium";
    if (!existsSync(browserPath)) {
      t.skip("no chromium at /usr/bin/chromium");
      return;
    }
    const { gateway } = await keyedGateway(t);
    const page = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html" });
      response.end("<!doctype html><title>client</title>");
    });
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    t.after(() => page.close());
    const pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
    const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    t.after(() => browser.close());
    const tab = await browser.newPage();
    await tab.goto(pageUrl);
    const answer = await tab.evaluate(
      async ({ url, key, body }) => {
        const response = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const json = (await response.json()) as { choices: { message: { content: string } }[] };
        return {
          status: response.status,
          content: json.choices[0]?.message.content,
          provider: response.headers.get("x-gateway-provider"),
        };
      },
      { url: `${gateway.url}/v1/chat/completions`, key: CLIENT_KEY, body: chatBody },
    );
    assert.deepEqual(answer, {
      status: 200,
      content: "echo from meta-llama/Llama-3.3-70B-Instruct",
      provider: "alpha",
    });
  });
});
