// Issue 13, client side: what one hostile client can make the gateway do is bounded in time and memory, every
// answer keeps the OpenAI error shape, and nothing a client names (prototype names, huge lists, deep JSON) gets
// past the request bounds (src/config/request-bounds.ts). Each test reproduces a finding over loopback.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { request } from "undici";
import {
  MAX_JSON_DEPTH,
  MAX_JSON_OBJECT_MEMBERS,
  MAX_MODEL_NAME_CHARS,
  MAX_REQUESTED_MODELS,
} from "../../src/config/request-bounds.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  HELLO,
  modelOf,
  postChat,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";
import { longestCpuHold, threadCpuMsWhile } from "../helpers/thread-cpu.ts";

function providerYaml(baseUrl: string, models = "      chat-model: { id: alpha-chat-v1, context: 4000000 }\n"): string {
  return `providers:
  - name: alpha
    base_url: ${baseUrl}
    api_key: sk-secret-alpha-123
    models:
${models}`;
}

async function oneProvider(t: TestContext, models?: string, server = "") {
  const alpha = await useMock(t);
  const gateway = await useGateway(t, `${server}${providerYaml(alpha.baseUrl, models)}`);
  return { alpha, gateway };
}

describe("finding 1: token counting is linear", () => {
  test("a 1 MB message without a space answers within 1 s while /ok stays under 50 ms (median)", async (t) => {
    const alpha = await useMock(t);
    // A separate process: a blocked event loop there shows as slow /ok answers here.
    const gateway = await startGatewayProcess(t, providerYaml(alpha.baseUrl));
    // Warm up (first requests compile routes and open connections), then measure.
    for (let round = 0; round < 5; round++) await (await request(`${gateway.url}/ok`)).body.text();
    const warm = await request(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "chat-model", messages: HELLO }),
    });
    assert.equal(warm.statusCode, 200, await warm.body.text());
    // The probes run in a worker thread: this thread also runs the mock upstream, which parses the big bodies.
    // A baseline first: on a shared, loaded runner /ok is slow even when the gateway is idle.
    const baselineProbe = startOkProbe(`${gateway.url}/ok`);
    await baselineProbe.ready;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const baselineMs = median(await baselineProbe.stop());
    const probe = startOkProbe(`${gateway.url}/ok`);
    await probe.ready;
    for (const unit of ["a", "模", "7"]) {
      const content = unit.repeat(1_000_000 / Buffer.byteLength(unit));
      const startedAt = performance.now();
      const response = await request(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "chat-model", messages: [{ role: "user", content }] }),
      });
      const text = await response.body.text();
      const elapsedMs = performance.now() - startedAt;
      assert.equal(response.statusCode, 200, text.slice(0, 300));
      assert.ok(elapsedMs < 1000, `${JSON.stringify(unit)} × 1 MB answered after ${elapsedMs.toFixed(0)} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const okLatenciesMs = await probe.stop();
    assert.ok(okLatenciesMs.length >= 5, `only ${okLatenciesMs.length} /ok probes`);
    // Before the fix one 200 KB message blocked the loop 12.8 s (1 MB: > 300 s). Now the estimate costs a few ms
    // per MB (token-estimate.test.ts); what remains is reading, parsing and re-sending 1 MB and its garbage. On an
    // idle machine every probe stays under 50 ms; on a loaded shared runner scheduling adds delay to every probe,
    // idle or not, so the bound is 50 ms over the idle baseline for the median, and 1 s for the slowest.
    const slowest = Math.max(...okLatenciesMs);
    const shown = `baseline ${baselineMs.toFixed(0)} ms; during: ${okLatenciesMs.map(Math.round).join(" ")}`;
    assert.ok(median(okLatenciesMs) < baselineMs + 50, `/ok median over baseline + 50 ms: ${shown}`);
    assert.ok(slowest < 1000, `/ok took ${slowest.toFixed(0)} ms while the big messages were handled: ${shown}`);
    assert.equal(chatRequests(alpha).length, 4);
  });
});

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.POSITIVE_INFINITY;
}

/** Polls `url` from a worker thread (its own event loop) until stopped; resolves with every latency in ms. */
function startOkProbe(url: string): { ready: Promise<void>; stop(): Promise<number[]> } {
  const worker = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
    let isDone = false;
    const latencies = [];
    parentPort.on("message", () => { isDone = true; });
    (async () => {
      for (let round = 0; round < 5; round++) await (await fetch(workerData.url)).text(); // warm-up
      parentPort.postMessage("ready");
      while (!isDone) {
        const startedAt = performance.now();
        const response = await fetch(workerData.url);
        await response.text();
        latencies.push(performance.now() - startedAt);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      parentPort.postMessage(latencies);
    })();`,
    { eval: true, workerData: { url } },
  );
  const ready = new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
  });
  const result = ready.then(
    () =>
      new Promise<number[]>((resolve, reject) => {
        worker.once("message", (latencies: number[]) => resolve(latencies));
        worker.once("error", reject);
      }),
  );
  return {
    ready,
    stop: async () => {
      worker.postMessage("stop");
      const latencies = await result;
      await worker.terminate();
      return latencies;
    },
  };
}

describe("finding 4: model lists and names are bounded", () => {
  test("100,000 comma-separated names: 400 naming the limit, at once, no upstream call", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const model = Array.from({ length: 100_000 }, (_, index) => `m${index}`).join(",");
    // This thread's CPU (the gateway runs in it): a loaded machine's other processes are not the refusal's cost.
    const { value: response, ms: usedMs } = await threadCpuMsWhile(() => postChat(gateway, { model }));
    assert.ok(usedMs < 1000, `${Math.round(usedMs)} ms of CPU`);
    assert.equal(response.status, 400, response.text.slice(0, 300));
    const error = errorOf(response);
    assert.equal(error.code, "invalid_value");
    assert.equal(error.param, "model");
    assert.match(error.message, new RegExp(`${MAX_REQUESTED_MODELS} names`));
    assert.ok(response.text.length < 2000, "the error does not echo the list");
    assert.equal(chatRequests(alpha).length, 0);
  });

  test(`more than ${MAX_REQUESTED_MODELS} distinct names, in \`model\` or \`models\`: 400 naming the limit`, async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const names = Array.from({ length: MAX_REQUESTED_MODELS + 1 }, (_, index) => `m${index}`);
    const inList = await postChat(gateway, { model: names.join(",") });
    assert.equal(inList.status, 400, inList.text);
    assert.match(errorOf(inList).message, new RegExp(`at most ${MAX_REQUESTED_MODELS}`));
    const huge = await postChat(gateway, { model: "chat-model", models: Array.from({ length: 100_000 }, () => "x") });
    assert.equal(huge.status, 400, huge.text.slice(0, 300));
    assert.equal(errorOf(huge).param, "models");
    assert.match(errorOf(huge).message, new RegExp(String(MAX_REQUESTED_MODELS)));
    assert.equal(chatRequests(alpha).length, 0);
  });

  test("duplicates count once: 1,000 copies of one name route normally", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const response = await postChat(gateway, {
      model: Array.from({ length: 1000 }, () => "chat-model").join(","),
      models: Array.from({ length: 10 }, () => "chat-model"),
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(modelOf(chatRequests(alpha)[0]), "alpha-chat-v1");
  });

  test("a 2 MB model name: 400 at once (it used to hang in a normalisation regex)", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    for (const model of ["a".repeat(2_000_000), `${"a".repeat(MAX_MODEL_NAME_CHARS + 1)}`]) {
      const { value: response, ms: usedMs } = await threadCpuMsWhile(() => postChat(gateway, { model }));
      assert.ok(usedMs < 1000, `${Math.round(usedMs)} ms of CPU`);
      assert.equal(response.status, 400, response.text.slice(0, 300));
      assert.equal(errorOf(response).code, "invalid_value");
    }
    const explained = await send(gateway, "GET", `/v1/gateway/route?model=${"a".repeat(MAX_MODEL_NAME_CHARS + 1)}`);
    assert.equal(explained.status, 400, explained.text.slice(0, 300));
    // A repeated query parameter arrives as an array: a 400, not a 500 in code that expects a string.
    const repeated = await send(gateway, "GET", "/v1/gateway/route?model=chat-model&model=chat-model");
    assert.equal(repeated.status, 400, repeated.text);
    assert.equal(errorOf(repeated).param, "model");
    assert.equal(chatRequests(alpha).length, 0);
  });
});

describe("finding 7: JSON depth is capped before any work", () => {
  const nested = (depth: number): unknown => {
    let value: unknown = 1;
    for (let level = 0; level < depth; level++) value = [value];
    return value;
  };

  test("10,000 levels in the body or inside `tools`: 400 invalid_value naming the limit; the provider stays healthy", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const bodies = [
      `{"model":"chat-model","messages":[{"role":"user","content":"hi"}],"extra":${deep}}`,
      `{"model":"chat-model","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deep}}}]}`,
      deep,
    ];
    for (const body of bodies) {
      const response = await send(gateway, "POST", "/v1/chat/completions", { body });
      assert.equal(response.status, 400, response.text.slice(0, 300));
      const error = errorOf(response);
      assert.equal(error.code, "invalid_value");
      assert.match(error.message, new RegExp(`${MAX_JSON_DEPTH} levels`));
    }
    assert.equal(chatRequests(alpha).length, 0);
    const after = await postChat(gateway, { model: "chat-model" });
    assert.equal(after.status, 200, after.text);
  });

  test(`nesting up to ${MAX_JSON_DEPTH} levels is accepted (a deep tool schema)`, async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    // Body -> tools -> [0] -> function -> parameters: 4 levels before the schema.
    const response = await postChat(gateway, {
      model: "chat-model",
      tools: [{ type: "function", function: { name: "f", parameters: nested(MAX_JSON_DEPTH - 5) } }],
    });
    assert.equal(response.status, 200, response.text.slice(0, 300));
    assert.equal(chatRequests(alpha).length, 1);
  });
});

describe("one JSON object's members are capped before any work", () => {
  test(`an object of more than ${MAX_JSON_OBJECT_MEMBERS} members: 400 invalid_value at once, the event loop free`, async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    // 1.4 million members in 17 MB, within the 20 MB body limit: parsing them (V8's dictionary objects) and copying
    // them (the schema, each attempt's body) held the event loop, and so every other request, for 10 s and more.
    const members = Array.from({ length: 1_400_000 }, (_, index) => `"k${index}":1`).join(",");
    const bodies = [
      `{"model":"chat-model","messages":[{"role":"user","content":"hi"}],${members}}`,
      `{"model":"chat-model","messages":[{"role":"user","content":"hi"}],"metadata":{${members}}}`,
    ];
    for (const body of bodies) {
      // The longest step's CPU on this thread (the gateway runs in it), not the clock a loaded machine stretches.
      const hold = longestCpuHold();
      const response = await send(gateway, "POST", "/v1/chat/completions", { body });
      const heldMs = hold.stop();
      assert.equal(response.status, 400, response.text.slice(0, 300));
      const error = errorOf(response);
      assert.equal(error.code, "invalid_value");
      assert.match(error.message, new RegExp(`more than ${MAX_JSON_OBJECT_MEMBERS} members`));
      assert.ok(heldMs < 2_000, `the event loop was held ${Math.round(heldMs)} ms of CPU`);
    }
    assert.equal(chatRequests(alpha).length, 0);
  });

  test(`${MAX_JSON_OBJECT_MEMBERS} members in one object are accepted (a large tool schema)`, async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const properties = Object.fromEntries(
      Array.from({ length: MAX_JSON_OBJECT_MEMBERS }, (_, index) => [`p${index}`, 1]),
    );
    const response = await postChat(gateway, {
      model: "chat-model",
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties } } }],
    });
    assert.equal(response.status, 200, response.text.slice(0, 300));
    assert.equal(chatRequests(alpha).length, 1);
  });
});

describe("finding 8: prototype names are plain names", () => {
  test("`constructor`, `__proto__`, `toString`, `ok,hasOwnProperty` as model, in models and in ?model=: 404, never 500", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    for (const model of ["constructor", "__proto__", "toString", "ok,hasOwnProperty", "valueOf,__defineGetter__"]) {
      const response = await postChat(gateway, { model });
      assert.equal(response.status, 404, `${model}: ${response.text}`);
      assert.equal(errorOf(response).code, "model_not_found");
      const explained = await send(gateway, "GET", `/v1/gateway/route?model=${encodeURIComponent(model)}`);
      assert.equal(explained.status, 404, `?model=${model}: ${explained.text}`);
    }
    const withFallbacks = await postChat(gateway, { model: "constructor", models: ["__proto__", "chat-model"] });
    assert.equal(withFallbacks.status, 200, withFallbacks.text);
    assert.equal(chatRequests(alpha).length, 1);
  });

  test("a configured model named `constructor` and a meta model named `toString` are usable", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `${providerYaml(alpha.baseUrl, "      constructor: { id: upstream-constructor }\n      hasOwnProperty: {}\n")}
meta_models:
  toString: [hasOwnProperty]
`,
    );
    const direct = await postChat(gateway, { model: "constructor" });
    assert.equal(direct.status, 200, direct.text);
    assert.equal(modelOf(chatRequests(alpha)[0]), "upstream-constructor");
    const viaMeta = await postChat(gateway, { model: "toString" });
    assert.equal(viaMeta.status, 200, viaMeta.text);
    assert.equal(modelOf(chatRequests(alpha)[1]), "hasOwnProperty");
    const listed = await send(gateway, "GET", "/v1/models");
    const ids = (listed.json as { data: { id: string }[] }).data.map((entry) => entry.id);
    assert.ok(ids.includes("constructor") && ids.includes("toString"), ids.join(", "));
  });
});

describe("finding 6 (headers): a model id outside Latin-1 never makes a header throw", () => {
  test("JSON answers: x-gateway-model is percent-encoded, the answer is 200", async (t) => {
    const { gateway } = await oneProvider(t, '      uni: { id: 模型-unicode }\n      ctl: { id: "ctl\\u0001id" }\n');
    const response = await postChat(gateway, { model: "uni" });
    assert.equal(response.status, 200, response.text);
    assert.equal(decodeURIComponent(response.headers["x-gateway-model"] ?? ""), "模型-unicode");
    const control = await postChat(gateway, { model: "ctl" });
    assert.equal(control.status, 200, control.text);
    assert.equal(control.headers["x-gateway-model"], "ctl%01id");
  });

  test("streams: headers written, the stream answered, the slot released", async (t) => {
    const { gateway } = await oneProvider(t, "      uni: { id: 模型-unicode, limits: { concurrency: 1 } }\n");
    for (let round = 0; round < 2; round++) {
      // Before the fix the stream got no response at all: give up after 3 s instead of hanging the suite.
      const response = await request(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "uni", messages: HELLO, stream: true }),
        headersTimeout: 3000,
        bodyTimeout: 3000,
      });
      const text = await response.body.text();
      assert.equal(response.statusCode, 200, text);
      assert.match(text, /data: \[DONE\]/);
    }
  });

  test("a client's x-request-id is echoed only when it is a short plain token", async (t) => {
    const { gateway } = await oneProvider(t);
    const plain = await send(gateway, "GET", "/ok", { headers: { "x-request-id": "client-id-1" } });
    assert.equal(plain.headers["x-request-id"], "client-id-1");
    const long = await send(gateway, "GET", "/ok", { headers: { "x-request-id": "x".repeat(5000) } });
    assert.match(long.headers["x-request-id"] ?? "", /^req-/);
  });
});

/** A raw TCP exchange: what the server wrote and when it closed the connection. */
interface RawExchange {
  readonly socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves with ms since connect when the server ends or resets the connection. */
  readonly closed: Promise<number>;
}

function rawConnect(gateway: TestGateway, firstBytes: string): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let text = "";
    const socket = connect(gateway.port, "127.0.0.1", () => {
      socket.write(firstBytes);
      resolve({ socket, received: () => text, closed });
    });
    const closed = new Promise<number>((resolveClosed) => {
      socket.on("close", () => resolveClosed(performance.now() - startedAt));
    });
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });
    socket.on("error", () => {});
    socket.once("error", reject);
  });
}

/** Status and OpenAI error of a raw HTTP answer. */
function parseRaw(text: string): { status: number; headers: string; error: { code: string; type: string } } {
  const [head = "", body = ""] = text.split("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const parsed = JSON.parse(body) as { error: { code: string; type: string; message: string; param: unknown } };
  assert.ok("param" in parsed.error && typeof parsed.error.message === "string", body);
  return { status, headers: head.toLowerCase(), error: parsed.error };
}

function trickle(socket: Socket, intervalMs: number): () => void {
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write("a");
  }, intervalMs);
  return () => clearInterval(timer);
}

describe("finding 10: slow clients and connection count", () => {
  // A gateway without these bounds keeps a trickling client's connection as long as it trickles (forever here): the
  // bounds below (CLOSED_WITHIN_MS) are far above the timeouts so that a loaded machine's delays stay inside them.
  const CLOSED_WITHIN_MS = 10_000;
  const SERVER = `server:
  port: 0
  host: 127.0.0.1
  request_timeout_ms: 1000
  headers_timeout_ms: 500
  max_connections: 4
`;

  test("a body trickled byte by byte is cut after request_timeout_ms with a 408 in the OpenAI shape", async (t) => {
    const { alpha, gateway } = await oneProvider(t, undefined, SERVER);
    const exchange = await rawConnect(
      gateway,
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
    const stop = trickle(exchange.socket, 50);
    t.after(stop);
    const closedAfterMs = await exchange.closed;
    stop();
    assert.ok(closedAfterMs < CLOSED_WITHIN_MS, `open for ${closedAfterMs.toFixed(0)} ms`);
    const answer = parseRaw(exchange.received());
    assert.equal(answer.status, 408);
    assert.equal(answer.error.code, "request_timeout");
    assert.equal(chatRequests(alpha).length, 0);
  });

  test("headers trickled: cut after headers_timeout_ms", async (t) => {
    const { gateway } = await oneProvider(t, undefined, SERVER);
    const exchange = await rawConnect(gateway, "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    const stop = trickle(exchange.socket, 50);
    t.after(stop);
    const closedAfterMs = await exchange.closed;
    stop();
    assert.ok(closedAfterMs < CLOSED_WITHIN_MS, `open for ${closedAfterMs.toFixed(0)} ms`);
    assert.equal(parseRaw(exchange.received()).status, 408);
  });

  test("an unauthenticated client gets its 401 and the connection closes although it keeps trickling", async (t) => {
    const { gateway } = await oneProvider(t, undefined, `${SERVER}  api_keys: [gateway-key]\n`);
    const exchange = await rawConnect(
      gateway,
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
    const stop = trickle(exchange.socket, 50);
    t.after(stop);
    const closedAfterMs = await exchange.closed;
    stop();
    assert.ok(closedAfterMs < CLOSED_WITHIN_MS, `open for ${closedAfterMs.toFixed(0)} ms`);
    const answer = parseRaw(exchange.received());
    assert.equal(answer.status, 401);
    assert.match(answer.headers, /connection: close/);
  });

  test("request_timeout_ms bounds receiving the request only: a slower answer or stream is not cut", async (t) => {
    const { alpha, gateway } = await oneProvider(t, undefined, SERVER);
    alpha.enqueue(
      CHAT_ROUTE,
      { kind: "json", body: chatCompletion("late", "alpha-chat-v1"), delayMs: 1500 },
      { kind: "sse", events: chatStream(["slow", " but", " fine"], "alpha-chat-v1", { delayMs: 600 }) },
    );
    const late = await postChat(gateway, { model: "chat-model" });
    assert.equal(late.status, 200, late.text);
    const stream = await postChat(gateway, { model: "chat-model", stream: true });
    assert.equal(stream.status, 200, stream.text);
    assert.match(stream.text, /data: \[DONE\]/);
  });

  test("connections over max_connections are closed on accept; freed slots are usable again", async (t) => {
    const { gateway } = await oneProvider(t, undefined, SERVER);
    const held: RawExchange[] = [];
    for (let index = 0; index < 4; index++) held.push(await rawConnect(gateway, ""));
    // Node counts a connection once it is accepted: give the server a moment to see all four.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const extra = await rawConnect(gateway, "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const closedAfterMs = await extra.closed;
    assert.ok(closedAfterMs < CLOSED_WITHIN_MS, `open for ${closedAfterMs.toFixed(0)} ms`);
    assert.equal(extra.received(), "", "the fifth connection got no answer");
    for (const exchange of held) exchange.socket.destroy();
    await Promise.all(held.map((exchange) => exchange.closed));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const response = await send(gateway, "GET", "/ok");
    assert.equal(response.status, 200);
  });
});

describe("finding 11: HTTP-layer errors in the OpenAI shape; Host checked", () => {
  test("bad URL, oversized headers, Expect, malformed request line: OpenAI JSON, never Fastify's or Node's body", async (t) => {
    const { gateway } = await oneProvider(t);
    const cases: { request: string; status: number; code: string }[] = [
      { request: "GET /v1/models/%E0%A4%A HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", status: 400, code: "invalid_request" },
      { request: "GET /% HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", status: 400, code: "invalid_request" },
      {
        request: `GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`,
        status: 431,
        code: "headers_too_large",
      },
      {
        request: "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: teapot\r\n\r\n",
        status: 417,
        code: "expectation_failed",
      },
      { request: "NOT-HTTP\r\n\r\n", status: 400, code: "invalid_request" },
    ];
    for (const { request: raw, status, code } of cases) {
      const exchange = await rawConnect(gateway, raw);
      const timer = setTimeout(() => exchange.socket.destroy(), 2000);
      await new Promise((resolve) => {
        const check = setInterval(() => {
          if (exchange.received().includes("}}")) {
            clearInterval(check);
            resolve(undefined);
          }
        }, 10);
        void exchange.closed.then(() => {
          clearInterval(check);
          resolve(undefined);
        });
      });
      clearTimeout(timer);
      exchange.socket.destroy();
      const text = exchange.received();
      assert.doesNotMatch(text, /"statusCode"|FST_ERR|Client Error/, text);
      const answer = parseRaw(text);
      assert.equal(answer.status, status, `${raw.slice(0, 40)}: ${text}`);
      assert.equal(answer.error.code, code, text);
    }
  });

  test("bound to loopback, a foreign Host (DNS rebinding) gets 403 host_not_allowed; loopback names work", async (t) => {
    const { alpha, gateway } = await oneProvider(t);
    const foreign = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "chat-model", messages: HELLO },
      headers: { host: `rebind.attacker.example:${gateway.port}` },
    });
    assert.equal(foreign.status, 403, foreign.text);
    assert.equal(errorOf(foreign).code, "host_not_allowed");
    assert.equal(chatRequests(alpha).length, 0);
    for (const host of [`localhost:${gateway.port}`, `127.0.0.1:${gateway.port}`]) {
      const response = await send(gateway, "GET", "/ok", { headers: { host } });
      assert.equal(response.status, 200, host);
    }
  });

  test("server.allowed_hosts replaces the default", async (t) => {
    const { gateway } = await oneProvider(
      t,
      undefined,
      "server:\n  port: 0\n  host: 127.0.0.1\n  allowed_hosts: [gateway.internal]\n",
    );
    const loopback = await send(gateway, "GET", "/ok");
    assert.equal(loopback.status, 403);
    const named = await send(gateway, "GET", "/ok", { headers: { host: "gateway.internal:443" } });
    assert.equal(named.status, 200);
  });
});

describe("property: arbitrary request bodies", () => {
  test("no body shape makes the gateway answer 500 or an error outside the OpenAI shape", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `${providerYaml(alpha.baseUrl, "      chat-model: { id: alpha-chat-v1 }\n      text-embedding-3-small: {}\n")}
meta_models:
  best: [chat-model]
`,
    );
    const json = fc.jsonValue({ maxDepth: 4 });
    const name = fc.constantFrom(
      "chat-model",
      "best",
      "constructor",
      "__proto__",
      "priority-auto",
      "alpha/chat-model",
      "x/y",
      ",",
      "模型",
      "text-embedding-3-small",
      "toString,chat-model",
    );
    const part = fc.record({
      type: fc.constantFrom("text", "image_url", "input_image"),
      text: fc.oneof(fc.string(), json),
    });
    const message = fc.record(
      {
        role: fc.oneof(fc.constantFrom("user", "system", "assistant", "tool"), json),
        content: fc.oneof(fc.string(), json, fc.array(part, { maxLength: 3 })),
        name: fc.oneof(fc.string(), json),
        tool_calls: json,
      },
      { requiredKeys: [] },
    );
    const body = fc.record(
      {
        model: fc.oneof(name, json),
        models: fc.oneof(fc.array(name, { maxLength: 4 }), json),
        messages: fc.oneof(fc.array(message, { maxLength: 4 }), json),
        stream: fc.oneof(fc.boolean(), json),
        max_tokens: fc.oneof(fc.integer(), fc.double(), json),
        tools: json,
        n: fc.oneof(fc.integer(), json),
        user: json,
        response_format: json,
        prompt: json,
        input: json,
      },
      { requiredKeys: [] },
    );
    const path = fc.constantFrom("/v1/chat/completions", "/v1/completions", "/v1/embeddings");
    await fc.assert(
      fc.asyncProperty(path, body, async (route, payload) => {
        const response = await send(gateway, "POST", route, { body: payload });
        assert.ok(response.status < 500 || response.status === 502, `${response.status}: ${response.text}`);
        if (response.status >= 400) errorOf(response);
      }),
      { numRuns: 300 },
    );
  });
});

describe("property: arbitrary request lines and headers", () => {
  test("every answer is the gateway's own (OpenAI errors or route JSON), never Fastify's or Node's default body", async (t) => {
    const { gateway } = await oneProvider(t);
    const pathChar = fc.constantFrom("/", "%", "a", "0", "?", "&", "=", "#", "模", "\u0000", " ", "..", "%E0", "%zz");
    const path = fc.array(pathChar, { maxLength: 12 }).map((chars) => `/${chars.join("")}`);
    const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "BREW", "G\u00e9T");
    const header = fc.tuple(
      fc.constantFrom(
        "host",
        "content-type",
        "content-length",
        "expect",
        "transfer-encoding",
        "x-request-id",
        "bad name",
      ),
      fc.string({ maxLength: 30 }),
    );
    await fc.assert(
      fc.asyncProperty(method, path, fc.array(header, { maxLength: 3 }), async (verb, target, headers) => {
        const lines = [`${verb} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
        for (const [name, value] of headers) lines.push(`${name}: ${value}`);
        const exchange = await rawConnect(gateway, `${lines.join("\r\n")}\r\n\r\n`);
        const timer = setTimeout(() => exchange.socket.destroy(), 3000);
        await exchange.closed;
        clearTimeout(timer);
        const text = exchange.received();
        if (text === "" || verb === "HEAD") return; // closed without an answer (a body was still expected)
        assert.doesNotMatch(text, /"statusCode"|FST_ERR|Client Error/, text);
        const [head = "", ...rest] = text.split("\r\n\r\n");
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
        assert.ok(status >= 100 && status < 500, `${status}: ${text}`);
        if (status >= 400) {
          // The first response only: a malformed remainder may earn the connection a second (also OpenAI) one.
          const body = rest.join("\r\n\r\n");
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
          const first = /transfer-encoding: chunked/i.test(head) ? dechunk(body) : body.slice(0, length);
          const parsed = JSON.parse(first) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
          assert.equal(typeof parsed.error?.message, "string", text);
          assert.equal(typeof parsed.error?.code, "string", text);
        }
      }),
      { numRuns: 150 },
    );
  });
});

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!(size > 0)) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}
