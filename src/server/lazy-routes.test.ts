// Lazily loaded routes (lazy-routes.ts): one load for concurrent first requests, a failed load answered as a 500 in
// the route's protocol and tried again, and the Responses and Messages doors' list of routes held equal to what their
// module registers. Over loopback: a Fastify server with the gateway's own error handler, and the real gateway.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Fastify, { type FastifyInstance } from "fastify";
import {
  CHAT_ROUTE,
  chatRequests,
  logCollector,
  oneProviderScene,
  oneProviderYaml,
  send,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../../test/helpers/e2e.ts";
import { holdImport } from "../../test/helpers/held-import.ts";
import { chatCompletion } from "../../test/helpers/mock-upstream.ts";
import type { RequestRecord } from "../observability/request-record.ts";
import { BatchBooks } from "../pipeline/batch-books.ts";
import { MemoryBatchRows } from "../state/batch-rows.ts";
import { batchRouteShapes } from "./batch-route-shapes.ts";
import { batchDoors } from "./batch-routes.ts";
import { errorHandler } from "./error-handler.ts";
import { type RouteHandler, RouteRecorder, type RouteShape, registerLazyRoutes, sharedLoad } from "./lazy-routes.ts";
import { PROTOCOL_ROUTES } from "./protocol-route-shapes.ts";
import { protocolDoors } from "./protocol-routes.ts";

const SHAPES = [
  { method: "POST", url: "/v1/messages" },
  { method: "POST", url: "/v1/responses" },
  { method: "GET", url: "/v1/responses/:id" },
] as const;

/** A server whose routes load through `load`, answering errors as the gateway does; its URL. */
async function lazyServer(
  t: { after: (fn: () => Promise<unknown>) => void },
  load: () => Promise<ReadonlyMap<string, RouteHandler>>,
): Promise<string> {
  const app: FastifyInstance = Fastify();
  app.setErrorHandler(errorHandler(1024 * 1024));
  registerLazyRoutes(app, SHAPES, load, "test");
  t.after(() => app.close());
  return app.listen({ port: 0, host: "127.0.0.1" });
}

function handlers(): Map<string, RouteHandler> {
  const recorder = new RouteRecorder();
  recorder.post("/v1/messages", async () => ({ door: "messages" }));
  recorder.post("/v1/responses", async () => ({ door: "responses" }));
  recorder.get("/v1/responses/:id", async (request) => ({ id: (request.params as { id: string }).id }));
  return recorder.handlers;
}

test("concurrent first requests share one load; later ones call the handler without loading", async (t) => {
  let loads = 0;
  let release = (): void => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const url = await lazyServer(t, async () => {
    loads++;
    await gate;
    return handlers();
  });
  const first = [
    fetch(`${url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
    fetch(`${url}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
    fetch(`${url}/v1/responses/resp_1`),
  ];
  // Every request is waiting on the one load before it is let through.
  await new Promise((resolve) => setTimeout(resolve, 50));
  release();
  const answers = await Promise.all(
    (await Promise.all(first)).map(async (response) => [response.status, await response.json()]),
  );
  assert.deepEqual(answers, [
    [200, { door: "messages" }],
    [200, { door: "responses" }],
    [200, { id: "resp_1" }],
  ]);
  const again = await fetch(`${url}/v1/responses/resp_2`);
  assert.deepEqual(await again.json(), { id: "resp_2" });
  assert.equal(loads, 1);
  // Registered as routes: another method on a lazy path is Fastify's 404, not a load.
  assert.equal((await fetch(`${url}/v1/messages`)).status, 404);
  assert.equal(loads, 1);
});

test("a load that fails is a 500 in the route's protocol, with no trace of the cause, and is tried again", async (t) => {
  let loads = 0;
  const url = await lazyServer(t, async () => {
    loads++;
    if (loads === 1) throw new Error("Cannot find module '/secret/place/protocol-routes-X.js'");
    return handlers();
  });
  const post = (path: string) =>
    fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const messages = await post("/v1/messages");
  assert.equal(messages.status, 500);
  const anthropic = (await messages.json()) as { type?: string; error?: { type?: string; message?: string } };
  // Anthropic's shape on the Messages route.
  assert.equal(anthropic.type, "error");
  assert.equal(anthropic.error?.type, "api_error");
  assert.match(anthropic.error?.message ?? "", /The test routes could not be loaded; retry the request/);
  assert.doesNotMatch(JSON.stringify(anthropic), /secret\/place/);
  // Loaded now (the failure was not kept): served.
  const responses = await post("/v1/responses");
  assert.equal(responses.status, 200);
  assert.deepEqual(await responses.json(), { door: "responses" });
  assert.equal(loads, 2);
});

test("a failed load on an OpenAI route answers OpenAI's error shape", async (t) => {
  const url = await lazyServer(t, async () => {
    throw new Error("broken chunk");
  });
  const answer = await fetch(`${url}/v1/responses/resp_1`);
  assert.equal(answer.status, 500);
  const body = (await answer.json()) as { error?: { type?: string; code?: string } };
  assert.equal(body.error?.type, "server_error");
  assert.equal(body.error?.code, "internal_error");
});

test("a load without a handler for a registered route is a 500, not a hang", async (t) => {
  const url = await lazyServer(t, async () => new Map<string, RouteHandler>());
  const answer = await fetch(`${url}/v1/responses/resp_1`);
  assert.equal(answer.status, 500);
  assert.match(await answer.text(), /loaded without a handler for POST \/v1\/messages, POST \/v1\/responses/);
});

test("sharedLoad: one promise while pending, forgotten after a failure, kept after a success", async () => {
  let calls = 0;
  const load = sharedLoad(async () => {
    calls++;
    if (calls === 1) throw new Error("first");
    return calls;
  });
  const [a, b] = await Promise.allSettled([load(), load()]);
  assert.equal(a.status, "rejected");
  assert.equal(b.status, "rejected");
  assert.equal(calls, 1);
  assert.equal(await load(), 2);
  assert.equal(await load(), 2);
  assert.equal(calls, 2);
});

const keyOf = (shape: RouteShape): string => JSON.stringify([shape.method, shape.url, shape.bodyLimit ?? null]);

test("the lists registered at start are exactly the routes the lazy doors register, with their body limits", async (t) => {
  const { gateway, mock } = await oneProviderScene(t);
  const protocols = protocolDoors(gateway.runtime);
  const listed = PROTOCOL_ROUTES.map(keyOf).sort();
  assert.deepEqual(protocols.shapes.map(keyOf).sort(), listed);
  assert.equal(new Set(listed).size, listed.length);
  const books = new BatchBooks(
    new MemoryBatchRows(),
    gateway.runtime.clock,
    () => gateway.runtime.snapshot.config.batches,
  );
  const batches = batchDoors(gateway.runtime, { books }, async () => protocols.responses, gateway.app.log);
  t.after(() => batches.runner.close());
  const maxFileBytes = gateway.runtime.snapshot.config.batches.maxFileBytes;
  assert.deepEqual(batches.shapes.map(keyOf).sort(), batchRouteShapes(maxFileBytes).map(keyOf).sort());
  assert.ok(batches.shapes.some((shape) => shape.url === "/v1/files" && shape.bodyLimit === maxFileBytes + 64 * 1024));
  // And the gateway serves them through the lazy routes: a Messages request and a Responses one, sent at once.
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("One.", VENDOR_MODEL_ID) });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Two.", VENDOR_MODEL_ID) });
  const [messages, responses, files] = await Promise.all([
    send(gateway, "POST", "/v1/messages", {
      body: { model: "m", max_tokens: 16, messages: [{ role: "user", content: "Hi" }] },
    }),
    send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "Hi" } }),
    send(gateway, "GET", "/v1/files"),
  ]);
  assert.equal(messages.status, 200, messages.text);
  assert.equal(responses.status, 200, responses.text);
  assert.equal(files.status, 200, files.text);
  assert.deepEqual((files.json as { data?: unknown }).data, []);
  const texts = [JSON.stringify(messages.json), JSON.stringify(responses.json)].join(" ");
  assert.match(texts, /One\./);
  assert.match(texts, /Two\./);
});

test("a client that leaves while its door's modules are still being imported: nothing is sent upstream, no error logged", async (t) => {
  // The first Responses request waits in the lazy route for the door's import. Its client closed then: the response
  // had already emitted `close` when the door's handler asked for the client-gone signal, which listened for a
  // `close` that never came again, so the request was planned and sent upstream for nobody.
  const held = holdImport("/src/server/build-server.ts", "./protocol-routes.ts");
  t.after(() => {
    held.release();
    held.deregister();
  });
  const log = logCollector();
  const mock = await useMock(t);
  const gateway = await useGateway(t, oneProviderYaml(mock), { logLevel: "info", logStream: log.stream });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Nobody reads this.", VENDOR_MODEL_ID) });
  const records: RequestRecord[] = [];
  gateway.runtime.onRecord((record) => records.push(record));
  const body = JSON.stringify({ model: "m", input: "Hi" });
  const socket = connect(gateway.port, "127.0.0.1");
  socket.on("error", () => {});
  socket.write(
    `POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  await held.reached;
  socket.destroy();
  // The server has seen the client go (its connection closed) before the import goes on.
  const connections = (): Promise<number> =>
    new Promise((resolve, reject) =>
      gateway.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
  for (const deadline = Date.now() + 5_000; (await connections()) > 0; await sleep(10)) {
    assert.ok(Date.now() < deadline, "the server still holds the client's connection");
  }
  held.release();
  for (const deadline = Date.now() + 5_000; records.length === 0; await sleep(10)) {
    assert.ok(Date.now() < deadline, "no record of the request");
  }
  const [record] = records;
  assert.equal(record?.endpoint, "responses");
  assert.equal(record?.outcome, "client_aborted", JSON.stringify(record));
  assert.deepEqual(record?.attempts, []);
  assert.equal(chatRequests(mock).length, 0, "the request was sent upstream for a client that had left");
  const lines = log.lines
    .join("")
    .split("\n")
    .filter((line) => line !== "");
  assert.ok(
    lines.some((line) => line.includes('"status":499')),
    "the request's routed line",
  );
  const errors = lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
  assert.deepEqual(errors, []);
});
