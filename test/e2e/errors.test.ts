// Bad input, bad keys and unknown routes: every one is an OpenAI-shaped error with the right status, type, code
// and param, no stack trace, and no upstream call.
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:net";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import { Agent, request } from "undici";
import { chatRequests, errorOf, HELLO, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

/** `server` (a YAML `server:` block) and `env` are for the auth tests; without them no client key is needed. */
async function oneProvider(t: TestContext, server = "", env: Record<string, string> = {}) {
  const alpha = await useMock(t);
  const gateway = await useGateway(
    t,
    `${server}providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-secret-alpha-123
    models:
      chat-model: { id: alpha-chat-v1 }
      text-embedding-3-small: {}
`,
    { env },
  );
  return { alpha, gateway };
}

describe("malformed requests are 400 invalid_request_error", () => {
  test("a body that is not valid JSON", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const response = await send(gateway, "POST", "/v1/chat/completions", {
      body: '{"model": "chat-model", "messages": [',
    });
    assert.equal(response.status, 400, response.text);
    const error = errorOf(response);
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.code, "invalid_json");
    assert.equal(alpha.requests.length, 0);
  });

  test("an empty JSON body, and JSON that is not an object", async (t) => {
    const { gateway } = await oneProvider(t);
    for (const body of ["", "[1,2]", '"text"', "null"]) {
      const response = await send(gateway, "POST", "/v1/chat/completions", {
        body,
        headers: { "content-type": "application/json" },
      });
      assert.equal(response.status, 400, `${JSON.stringify(body)}: ${response.text}`);
      assert.equal(errorOf(response).type, "invalid_request_error");
    }
  });

  test("a content type other than JSON", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const payload = JSON.stringify({ model: "chat-model", messages: HELLO });
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
      const response = await send(gateway, "POST", "/v1/chat/completions", {
        body: payload,
        headers: { "content-type": contentType },
      });
      assert.equal(response.status, 400, `${contentType}: ${response.text}`);
      assert.equal(errorOf(response).type, "invalid_request_error");
      // text/plain once went through Fastify's default string parser and came out as `invalid_body`.
      assert.equal(errorOf(response).code, "invalid_content_type", `${contentType}: ${response.text}`);
    }
    assert.equal(alpha.requests.length, 0);
  });

  const FIELD_CASES: readonly { path: string; body: Record<string, unknown>; param: string }[] = [
    { path: "/v1/chat/completions", body: { messages: HELLO }, param: "model" },
    { path: "/v1/chat/completions", body: { model: 42, messages: HELLO }, param: "model" },
    { path: "/v1/chat/completions", body: { model: "", messages: HELLO }, param: "model" },
    { path: "/v1/chat/completions", body: { model: "chat-model" }, param: "messages" },
    { path: "/v1/chat/completions", body: { model: "chat-model", messages: "hello" }, param: "messages" },
    { path: "/v1/chat/completions", body: { model: "chat-model", messages: [] }, param: "messages" },
    {
      path: "/v1/chat/completions",
      body: { model: "chat-model", messages: [{ content: "hi" }] },
      param: "messages[0].role",
    },
    { path: "/v1/chat/completions", body: { model: "chat-model", messages: HELLO, stream: "yes" }, param: "stream" },
    {
      path: "/v1/chat/completions",
      body: { model: "chat-model", messages: HELLO, max_tokens: -5 },
      param: "max_tokens",
    },
    { path: "/v1/chat/completions", body: { model: "chat-model", messages: HELLO, tools: {} }, param: "tools" },
    { path: "/v1/chat/completions", body: { model: "chat-model", messages: HELLO, models: "other" }, param: "models" },
    { path: "/v1/completions", body: { model: "chat-model" }, param: "prompt" },
    { path: "/v1/embeddings", body: { model: "text-embedding-3-small" }, param: "input" },
    { path: "/v1/embeddings", body: { model: "text-embedding-3-small", input: 7 }, param: "input" },
  ];

  test("missing or mistyped fields name the field in `param`", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    for (const { path, body, param } of FIELD_CASES) {
      const response = await send(gateway, "POST", path, { body });
      const label = `${path} ${JSON.stringify(body)}`;
      assert.equal(response.status, 400, `${label}: ${response.text}`);
      const error = errorOf(response);
      assert.equal(error.type, "invalid_request_error", label);
      assert.equal(error.param, param, label);
      assert.ok(error.message.length > 0, label);
    }
    assert.equal(alpha.requests.length, 0, "an invalid request must not reach any upstream");
  });

  test("the SDK sees a validation error as a BadRequestError with its param", async (t) => {
    const { gateway } = await oneProvider(t);
    await assert.rejects(
      openAiClient(gateway).chat.completions.create({ model: "chat-model", messages: [] }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.param, "messages");
        return true;
      },
    );
  });
});

describe("unknown models and routes are 404", () => {
  test("an unknown model is 404 model_not_found, on every endpoint", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const requests: [string, Record<string, unknown>][] = [
      ["/v1/chat/completions", { model: "no-such-model", messages: HELLO }],
      ["/v1/completions", { model: "no-such-model", prompt: "x" }],
      ["/v1/embeddings", { model: "no-such-model", input: "x" }],
      ["/v1/chat/completions", { model: "alpha/no-such-model", messages: HELLO }],
    ];
    for (const [path, body] of requests) {
      const response = await send(gateway, "POST", path, { body });
      assert.equal(response.status, 404, `${path}: ${response.text}`);
      const error = errorOf(response);
      assert.equal(error.code, "model_not_found");
      assert.equal(error.param, "model");
      assert.match(error.message, /does not exist|does not serve/);
    }
    assert.equal(alpha.requests.length, 0);
  });

  test("the SDK sees an unknown model as a NotFoundError", async (t) => {
    const { gateway } = await oneProvider(t);
    await assert.rejects(
      openAiClient(gateway).chat.completions.create({ model: "gpt-17", messages: [{ role: "user", content: "x" }] }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError, String(error));
        assert.equal(error.code, "model_not_found");
        return true;
      },
    );
  });

  test("an unknown route is an OpenAI-shaped 404", async (t) => {
    const { gateway } = await oneProvider(t);
    for (const [method, path] of [
      ["GET", "/v1/nothing-here"],
      ["POST", "/v1/chat/completion"],
      ["GET", "/v1/chat/completions"],
      ["POST", "/v2/chat/completions?x=1"],
    ] as const) {
      const response = await send(gateway, method, path, method === "POST" ? { body: { model: "chat-model" } } : {});
      assert.equal(response.status, 404, `${method} ${path}: ${response.text}`);
      const error = errorOf(response);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.code, "unknown_url");
    }
  });
});

describe("client keys", () => {
  const SERVER = "server:\n  port: 0\n  host: 127.0.0.1\n  api_keys: [config-key-1]\n";
  const ENV = { ALLOWED_BEARER_TOKENS: "env-key-1, env-key-2" };

  test("a missing or wrong key is 401; keys from server.api_keys and ALLOWED_BEARER_TOKENS both work", async (t) => {
    const { alpha, gateway } = await oneProvider(t, SERVER, ENV);
    const body = { model: "chat-model", messages: HELLO };

    const missing = await send(gateway, "POST", "/v1/chat/completions", { body });
    assert.equal(missing.status, 401, missing.text);
    const missingError = errorOf(missing);
    assert.equal(missingError.type, "authentication_error");
    assert.equal(missingError.code, "invalid_api_key");

    for (const authorization of ["Bearer wrong-key", "Bearer config-key-1x", "Basic config-key-1", "config-key-1"]) {
      const wrong = await send(gateway, "POST", "/v1/chat/completions", { body, headers: { authorization } });
      assert.equal(wrong.status, 401, `${authorization}: ${wrong.text}`);
      assert.equal(errorOf(wrong).type, "authentication_error");
    }
    assert.equal(chatRequests(alpha).length, 0);

    for (const key of ["config-key-1", "env-key-1", "env-key-2"]) {
      const ok = await send(gateway, "POST", "/v1/chat/completions", {
        body,
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(ok.status, 200, `${key}: ${ok.text}`);
      // The client's key is the gateway's business; the upstream sees only the provider's key.
      assert.equal(chatRequests(alpha).at(-1)?.headers.authorization, "Bearer sk-secret-alpha-123");
    }
  });

  test("info routes need a key too, except /ok", async (t) => {
    const { gateway } = await oneProvider(t, SERVER, ENV);
    const ok = await send(gateway, "GET", "/ok");
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { status: "ok" });
    for (const path of ["/v1/models", "/models", "/health", "/stats"]) {
      const response = await send(gateway, "GET", path);
      assert.equal(response.status, 401, `${path}: ${response.text}`);
      errorOf(response);
      const authorised = await send(gateway, "GET", path, { headers: { authorization: "Bearer env-key-2" } });
      assert.equal(authorised.status, 200, `${path}: ${authorised.text}`);
    }
  });

  test("the SDK with a wrong key gets an AuthenticationError", async (t) => {
    const { gateway } = await oneProvider(t, SERVER, ENV);
    await assert.rejects(
      openAiClient(gateway, "not-a-key").chat.completions.create({ model: "chat-model", messages: HELLO }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
        return true;
      },
    );
    const models = await openAiClient(gateway, "config-key-1").models.list();
    assert.ok(models.data.some((model) => model.id === "chat-model"));
  });
});

describe("body size", () => {
  test("a body over server.body_limit_bytes is 413 payload_too_large and never forwarded", async (t) => {
    const { alpha, gateway } = await oneProvider(
      t,
      "server:\n  port: 0\n  host: 127.0.0.1\n  body_limit_bytes: 2048\n",
    );
    const big = { model: "chat-model", messages: [{ role: "user", content: "x".repeat(4096) }] };
    const response = await send(gateway, "POST", "/v1/chat/completions", { body: big });
    assert.equal(response.status, 413, response.text);
    const error = errorOf(response);
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.code, "payload_too_large");
    assert.match(error.message, /2048 bytes/);

    const small = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "chat-model", messages: HELLO },
    });
    assert.equal(small.status, 200, small.text);
    assert.equal(chatRequests(alpha).length, 1);
  });

  const SMALL_LIMIT = "server:\n  port: 0\n  host: 127.0.0.1\n  body_limit_bytes: 65536\n";

  test("a body megabytes over the limit, still being sent: the client receives its 413, not EPIPE or a reset", async (t) => {
    // A gateway process: in-process, client and server share one event loop and the race is hidden. 8 MB is more
    // than the loopback socket buffers hold, so the client is still writing when the 413 is sent; the connection
    // was then closed with the rest unread, the kernel reset it, and the client (undici, fetch) got EPIPE.
    const gateway = await startGatewayProcess(
      t,
      `${SMALL_LIMIT}  log_level: info\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n    models:\n      chat-model: {}\n`,
    );
    const body = JSON.stringify({ model: "chat-model", messages: [{ role: "user", content: "x".repeat(8 << 20) }] });
    const outcomes: string[] = [];
    for (let round = 0; round < 8; round++) {
      const agent = new Agent();
      try {
        const response = await request(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          dispatcher: agent,
        });
        const error = ((await response.body.json()) as { error: { code: string } }).error;
        outcomes.push(`${response.statusCode} ${error.code}`);
      } catch (error) {
        outcomes.push(`failed: ${(error as { code?: string }).code ?? String(error)}`);
      } finally {
        await agent.destroy();
      }
    }
    assert.deepEqual(outcomes, Array(8).fill("413 payload_too_large"));
  });

  /** Sends headers with `Expect: 100-continue` and waits for the first answer: `100 Continue` or a final one. */
  async function expectContinue(port: number, path: string, contentLength: number, headers = "") {
    const socket = connect(port, "127.0.0.1");
    const closed = once(socket, "close");
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
    });
    await once(socket, "connect");
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${contentLength}\r\n${headers}Expect: 100-continue\r\n\r\n`,
    );
    for (let waitedMs = 0; !received.includes("\r\n\r\n") && waitedMs < 3000; waitedMs += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { socket, closed, received: () => received };
  }

  test("Expect: 100-continue with a Content-Length over the limit: 413 at once, no 100 Continue", async (t) => {
    const { alpha, gateway } = await oneProvider(t, SMALL_LIMIT);
    for (const path of ["/v1/chat/completions", "/v1/messages"]) {
      const exchange = await expectContinue(gateway.port, path, 60 << 20);
      const startedMs = Date.now();
      await exchange.closed;
      // The client sends no body, but it may: the connection stays open a bounded while to read it.
      assert.ok(Date.now() - startedMs < 3000);
      const [head = "", body = ""] = exchange.received().split("\r\n\r\n");
      assert.match(head, /^HTTP\/1\.1 413 /, `${path}: ${exchange.received()}`);
      assert.match(head.toLowerCase(), /connection: close/);
      const parsed = JSON.parse(body) as { type?: string; error: { code?: string; type: string } };
      if (path === "/v1/messages") {
        assert.deepEqual([parsed.type, parsed.error.type], ["error", "request_too_large"]);
      } else {
        assert.deepEqual([parsed.error.code, parsed.error.type], ["payload_too_large", "invalid_request_error"]);
      }
    }
    // Under the limit: 100 Continue, then the request is served as usual.
    const payload = JSON.stringify({ model: "chat-model", messages: HELLO });
    const exchange = await expectContinue(gateway.port, "/v1/chat/completions", Buffer.byteLength(payload));
    t.after(() => exchange.socket.destroy());
    assert.match(exchange.received(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    exchange.socket.write(payload);
    for (let waitedMs = 0; !exchange.received().includes('"choices"') && waitedMs < 3000; waitedMs += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.match(exchange.received(), /HTTP\/1\.1 200 OK/);
    assert.equal(chatRequests(alpha).length, 1);
  });

  test("Expect: 100-continue over the limit is refused as an upload without Expect is: request id, key check, its record", async (t) => {
    // The 413 was written on the socket before Fastify saw the request: no x-request-id, and given before the key
    // check (an unauthenticated client got 413 where the same upload without Expect gets 401).
    const { alpha, gateway } = await oneProvider(t, `${SMALL_LIMIT}  api_keys: [client-key-1]\n`);
    const auth = { authorization: "Bearer client-key-1" };
    alpha.enqueue("POST /v1/chat/completions", { kind: "json", body: chatCompletion("hello", "alpha-chat-v1") });
    const served = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "chat-model", messages: HELLO },
      headers: auth,
    });
    assert.equal(served.status, 200, served.text);

    const withoutExpect = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "chat-model", messages: [{ role: "user", content: "x".repeat(70_000) }] },
      headers: { ...auth, "x-request-id": "client-id-0" },
    });
    assert.equal(withoutExpect.status, 413);
    assert.equal(withoutExpect.headers["x-request-id"], "client-id-0");

    const refusedIds = ["client-id-0"];
    for (const [index, path] of ["/v1/chat/completions", "/v1/messages"].entries()) {
      const requestId = `client-id-${index + 1}`;
      const headers = `Authorization: Bearer client-key-1\r\nx-request-id: ${requestId}\r\n`;
      const exchange = await expectContinue(gateway.port, path, 60 << 20, headers);
      await exchange.closed;
      const [head = "", body = ""] = exchange.received().split("\r\n\r\n");
      assert.match(head, /^HTTP\/1\.1 413 /, `${path}: ${exchange.received()}`);
      const lowerHead = head.toLowerCase();
      assert.match(lowerHead, /\r\nconnection: close\r\n/);
      assert.ok(lowerHead.includes(`\r\nx-request-id: ${requestId}\r\n`), head);
      const parsed = JSON.parse(body) as { type?: string; request_id?: string; error: { code?: string; type: string } };
      if (path === "/v1/messages") {
        assert.ok(lowerHead.includes(`\r\nrequest-id: ${requestId}\r\n`), head);
        assert.deepEqual(
          [parsed.type, parsed.error.type, parsed.request_id],
          ["error", "request_too_large", requestId],
        );
      } else {
        assert.deepEqual(parsed, JSON.parse(withoutExpect.text));
      }
      refusedIds.push(requestId);
    }
    // No plain x-request-id of its own: one generated by the gateway, as for any request.
    const anonymous = await expectContinue(
      gateway.port,
      "/v1/chat/completions",
      60 << 20,
      "x-api-key: client-key-1\r\n",
    );
    await anonymous.closed;
    assert.match(anonymous.received(), /^HTTP\/1\.1 413 [\s\S]*\r\nx-request-id: req-[^\r]+\r\n/i);

    const unauthenticated = await expectContinue(gateway.port, "/v1/chat/completions", 60 << 20);
    await unauthenticated.closed;
    assert.match(unauthenticated.received(), /^HTTP\/1\.1 401 /);
    assert.match(unauthenticated.received(), /"code":"invalid_api_key"/);

    // A body refused for its size leaves its record, a 413 `rejected`, Expect or not; the 401 none (docs/observability.md,
    // "Which requests leave a record"); the served request's is there.
    const anonymousId = /\r\nx-request-id: (req-[^\r]+)\r\n/i.exec(anonymous.received())?.[1] ?? "";
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100", { headers: auth });
    assert.equal(listed.status, 200, listed.text);
    const records = (listed.json as { data: { id: string; status: number; outcome: string }[] }).data;
    assert.deepEqual(
      records.map((record) => record.id).sort(),
      [served.headers["x-request-id"], ...refusedIds, anonymousId].sort(),
    );
    for (const record of records.filter((listedRecord) => listedRecord.id !== served.headers["x-request-id"])) {
      assert.deepEqual([record.status, record.outcome], [413, "rejected"], record.id);
    }
    assert.equal(chatRequests(alpha).length, 1);
  });
});
