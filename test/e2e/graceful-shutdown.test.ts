// SIGTERM on a real `llm-gateway serve` process: in-flight streams finish, new connections are refused, and the
// process exits within server.shutdown_timeout_ms. A second signal exits at once, the state file written first.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { handleShutdownSignals } from "../../src/cli/start-gateway.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { chatLine, createBatch, upload } from "../helpers/batches-scene.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import {
  chatChunk,
  chatCompletion,
  chatStream,
  type MockStep,
  type MockUpstream,
  startMockUpstream,
} from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, type RedisServer, useRedisServer } from "../helpers/redis-server.ts";
import { postJson, strictSseData, waitUntil } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const MAIN = resolve(import.meta.dirname, "../../src/main.ts");

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly atMs: number;
}

interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  readonly exited: Promise<Exit>;
  /** The process's working directory: its config, and its state file at the default `data/state.db`. */
  readonly dir: string;
  /** stdout and stderr so far (the JSON log). */
  output(): string;
}

/** Resolves true if a TCP connection to the port is refused, false if it is accepted. */
function isRefused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED"));
  });
}

async function startGatewayProcess(
  t: TestContext,
  mock: MockUpstream,
  shutdownTimeoutMs: number,
  extra: {
    readonly model?: Record<string, unknown>;
    readonly provider?: Record<string, unknown>;
    readonly routing?: Record<string, unknown>;
    readonly state?: Record<string, unknown>;
  } = {},
): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-shutdown-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(
    configPath,
    stringify({
      // Port 0, read back from the "listening" line: a port picked free beforehand can be taken before the
      // gateway binds it (by any outgoing connection: it is in the ephemeral range).
      server: { port: 0, host: "127.0.0.1", shutdown_timeout_ms: shutdownTimeoutMs, log_level: "info" },
      providers: [
        {
          name: "alpha",
          base_url: mock.baseUrl,
          api_key: "sk-alpha",
          retries: 0,
          models: { m: extra.model ?? null },
          ...extra.provider,
        },
      ],
      discovery: { cache_dir: join(dir, "cache") },
      ...(extra.routing === undefined ? {} : { routing: extra.routing }),
      ...(extra.state === undefined ? {} : { state: extra.state }),
    }),
  );
  // cwd is the temp dir, so no `.env` of the developer's is read.
  const child = spawn(process.execPath, [MAIN, "serve", "--config", configPath], {
    cwd: dir,
    env: { ...process.env, LLM_GATEWAY_CONFIG: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  const exited = new Promise<Exit>((done) => {
    child.once("exit", (code, signal) => done({ code, signal, atMs: performance.now() }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  t.after(() => {
    if (!hasExited) child.kill("SIGKILL");
  });
  // Generous: a start takes half a second on a quiet machine, and a loaded CI machine (load 17 on 2 cores) has taken
  // over 15 s; only a gateway that never listens waits all of it.
  const deadlineMs = performance.now() + 60_000;
  let port = 0;
  for (;;) {
    if (hasExited) throw new Error(`the gateway exited at startup:\n${output}`);
    if (performance.now() > deadlineMs) throw new Error(`the gateway did not start:\n${output}`);
    port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(output)?.[1] ?? 0);
    if (port === 0) {
      await new Promise((done) => setTimeout(done, 20));
      continue;
    }
    try {
      const answer = await request(`http://127.0.0.1:${port}/ok`, { reset: true });
      await answer.body.dump();
      if (answer.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  return { child, port, baseUrl: `http://127.0.0.1:${port}`, exited, dir, output: () => output };
}

/** A mock upstream and a connection pool of the test's own, both closed when the test ends. */
async function useMockWithAgent(t: TestContext): Promise<{ mock: MockUpstream; agent: Agent }> {
  const mock = await startMockUpstream();
  const agent = new Agent();
  t.after(async () => {
    await agent.destroy();
    await mock.close();
  });
  return { mock, agent };
}

/** Long words: the text delivered before a cut is worth far more tokens than the prompt. */
function longWord(index: number): string {
  return ` w${index}-${"lorem ipsum dolor sit amet ".repeat(10)}`;
}

/** A chat stream of `count` words (` w0`, ` w1`, ...), one every 150 ms: still running when the signal comes. */
function slowWords(count: number, word = (index: number) => ` w${index}`): MockStep {
  return {
    kind: "sse",
    events: chatStream(
      Array.from({ length: count }, (_, index) => word(index)),
      "m",
      { delayMs: 150 },
    ),
  };
}

/** Reads an answer's body in the background: `text()` is what came so far, `done` settles at its end. */
function readInBackground(body: AsyncIterable<unknown>): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = (async () => {
    for await (const chunk of body) text += (chunk as Buffer).toString("utf8");
  })();
  return { text: () => text, done };
}

/** The first signal (SIGTERM), once the process says its shutdown began: the next signal is a second one. */
async function beginShutdown(gateway: GatewayProcess): Promise<void> {
  gateway.child.kill("SIGTERM");
  await waitUntil(() => gateway.output().includes("shutting down"), "the shutdown to start");
}

async function setUp(
  t: TestContext,
  shutdownTimeoutMs: number,
  words: number,
  extra: Parameters<typeof startGatewayProcess>[3] = {},
) {
  const { mock, agent } = await useMockWithAgent(t);
  mock.enqueue(CHAT_ROUTE, slowWords(words));
  const gateway = await startGatewayProcess(t, mock, shutdownTimeoutMs, extra);
  const answer = await postJson(
    `${gateway.baseUrl}/v1/chat/completions`,
    { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
    { dispatcher: agent },
  );
  assert.equal(answer.statusCode, 200);
  const reader = answer.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const stream = { text: "", hasEnded: false, endedAtMs: 0, error: undefined as unknown };
  const decoder = new TextDecoder();
  // Reads the answer in the background; `untilText` resolves once the text so far contains it.
  const finished = (async () => {
    try {
      for (;;) {
        const next = await reader.next();
        if (next.done === true) break;
        stream.text += decoder.decode(next.value, { stream: true });
      }
    } catch (error) {
      stream.error = error;
    } finally {
      stream.hasEnded = true;
      stream.endedAtMs = performance.now();
    }
  })();
  await waitUntil(() => stream.text.includes('" w0"'), "the first content chunk");
  return { mock, gateway, stream, finished };
}

describe("graceful shutdown", () => {
  test("SIGTERM: the in-flight stream completes with [DONE], new connections are refused, exit 0", async (t) => {
    // Far above the 1.5 s stream: a gateway that sat out the bound fails the checks below by seconds, not by a loaded
    // machine's slowness.
    const shutdownTimeoutMs = 30_000;
    const { gateway, stream, finished } = await setUp(t, shutdownTimeoutMs, 10);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGTERM");

    let isRefusedWhileStreaming = false;
    // Polled while the stream runs (an ordering: refused before it ended), not for a fixed time.
    while (!stream.hasEnded) {
      if (await isRefused(gateway.port)) {
        isRefusedWhileStreaming = !stream.hasEnded;
        break;
      }
      await new Promise((done) => setTimeout(done, 20));
    }
    assert.ok(isRefusedWhileStreaming, "new connections were still accepted while the stream was finishing");

    await finished;
    assert.equal(stream.error, undefined);
    const data = strictSseData(stream.text);
    assert.equal(data.at(-1), "[DONE]");
    const content = data
      .slice(0, -1)
      .map((payload) => (JSON.parse(payload) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta)
      .map((delta) => delta?.content ?? "")
      .join("");
    assert.equal(content, Array.from({ length: 10 }, (_, index) => ` w${index}`).join(""));

    const exit = await gateway.exited;
    assert.deepEqual([exit.code, exit.signal], [0, null], gateway.output());
    assert.ok(exit.atMs >= stream.endedAtMs - 50, "the process exited before the stream had finished");
    assert.ok(exit.atMs - signalledAtMs < shutdownTimeoutMs, "the process waited for the shutdown timeout");
    // Nothing else is in flight once the stream is done: the process should not sit out the timeout.
    assert.ok(
      exit.atMs - stream.endedAtMs < shutdownTimeoutMs / 2,
      `exited ${Math.round(exit.atMs - stream.endedAtMs)} ms after the stream ended`,
    );
    assert.match(gateway.output(), /shutting down/);
  });

  test("a stream that outlives server.shutdown_timeout_ms is cut at the bound and the process exits", async (t) => {
    const shutdownTimeoutMs = 700;
    // 60 s of words: a gateway that waited for the stream instead of the bound exits a minute on, far past the bound's
    // check below (15 s of room for a loaded machine's exit).
    const { gateway, stream, finished } = await setUp(t, shutdownTimeoutMs, 400);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGTERM");
    const exit = await gateway.exited;
    const elapsedMs = exit.atMs - signalledAtMs;
    assert.ok(elapsedMs >= shutdownTimeoutMs - 50, `exited after ${Math.round(elapsedMs)} ms, before the bound`);
    assert.ok(elapsedMs < shutdownTimeoutMs + 15_000, `exited only after ${Math.round(elapsedMs)} ms`);
    assert.equal(exit.code, 0);
    await finished;
    assert.ok(!stream.text.includes("[DONE]"), "a cut stream must not look complete");
    // Ended through the pipeline, the client still reading is told why (before, its socket was cut mid-stream).
    const last = JSON.parse(strictSseData(stream.text).at(-1) ?? "{}") as { error?: { code?: string } };
    assert.equal(last.error?.code, "service_unavailable", stream.text);
    assert.match(gateway.output(), /shutdown timeout/);
    // The cut stream still left its record (its routed line): the exit waited for it and the flush.
    assert.match(gateway.output(), /"msg":"routed"/, "the cut stream's record was lost");
  });

  test("a request queued when the shutdown begins gets a 503 at once and does not hold the exit", async (t) => {
    const mock = await startMockUpstream();
    t.after(() => mock.close());
    // A queued request the shutdown did not end would wait out the 60 s shutdown timeout: the bounds below are a
    // third of it, room for a loaded machine.
    const gateway = await startGatewayProcess(t, mock, 60_000, {
      model: { limits: { rpm: 1 } },
      routing: { queue_timeout_ms: 120_000 },
    });
    const chat = () =>
      request(`${gateway.baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
    const first = await chat();
    assert.equal(first.statusCode, 200);
    await first.body.dump();
    const queued = chat();
    for (let tries = 0; ; tries++) {
      const stats = await request(`${gateway.baseUrl}/stats`);
      if (((await stats.body.json()) as { queued_requests: number }).queued_requests === 1) break;
      assert.ok(tries < 1_000, "the second request never queued");
      await new Promise((done) => setTimeout(done, 20));
    }
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGTERM");
    const answer = await queued;
    const answeredAfterMs = performance.now() - signalledAtMs;
    const body = (await answer.body.json()) as { error: { code: string } };
    assert.equal(answer.statusCode, 503);
    assert.equal(body.error.code, "service_unavailable");
    assert.ok(answeredAfterMs < 20_000, `answered ${Math.round(answeredAfterMs)} ms after SIGTERM`);
    const exit = await gateway.exited;
    assert.equal(exit.code, 0);
    assert.ok(exit.atMs - signalledAtMs < 20_000, `exited ${Math.round(exit.atMs - signalledAtMs)} ms after SIGTERM`);
    assert.equal(mock.requests.length, 1, "nothing was sent for the queued request");
  });

  test("a second signal exits at once with code 1", async (t) => {
    // A minute of stream and of shutdown bound: a gateway deaf to the second signal sits out either.
    const { gateway } = await setUp(t, 60_000, 400);
    await beginShutdown(gateway);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGTERM");
    const exit = await gateway.exited;
    assert.equal(exit.code, 1);
    // A third of what a gateway deaf to the second signal would sit out: room for a loaded machine.
    assert.ok(exit.atMs - signalledAtMs < 20_000);
  });

  test("a second signal writes the state file before it exits: the budget counts since the last flush are kept", async (t) => {
    // No timed flush during the test: only a write at exit can put the counts in the file.
    const { gateway } = await setUp(t, 60_000, 400, {
      model: { limits: { rpd: 100 } },
      state: { flush_interval_ms: 3_600_000 },
    });
    for (let index = 0; index < 3; index++) {
      const answer = await request(`${gateway.baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(answer.statusCode, 200);
      await answer.body.dump();
    }
    await beginShutdown(gateway);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGINT");
    const exit = await gateway.exited;
    assert.equal(exit.code, 1, gateway.output());
    // A third of the minute a gateway deaf to the second signal would sit out (the stream's, or the bound's).
    assert.ok(exit.atMs - signalledAtMs < 20_000, `exited ${Math.round(exit.atMs - signalledAtMs)} ms after it`);
    const db = new DatabaseSync(join(gateway.dir, "data", "state.db"), { readOnly: true });
    t.after(() => db.close());
    const row = db.prepare("SELECT state FROM budget_scopes WHERE scope_id = ?").get("deployment:alpha/m");
    assert.ok(row !== undefined, "the budget counts were not written before the exit");
    const persisted = JSON.parse(String(row.state)) as { day: { requests: number } };
    // The stream still in flight and the three answered requests.
    assert.equal(persisted.day.requests, 4);
  });

  test("a second signal ends the stream in flight through the pipeline: error event, record, reservation settled", async (t) => {
    const { mock, agent } = await useMockWithAgent(t);
    mock.enqueue(CHAT_ROUTE, slowWords(400, longWord));
    // A day's token budget, charged only the prompt up front (count_max_tokens: false). A stream that breaks
    // without a usage report is settled at the prompt plus the text it delivered (docs/limits.md "Streams"): only
    // that settlement puts the delivered text in the count. No timed flush: only the exit's write fills the file.
    const gateway = await startGatewayProcess(t, mock, 60_000, {
      model: { limits: { tpd: 1_000_000 } },
      provider: { count_max_tokens: false },
      state: { flush_interval_ms: 3_600_000 },
    });
    const answer = await request(`${gateway.baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "cut-at-exit" },
      body: JSON.stringify({ model: "m", stream: true, max_tokens: 8000, messages: [{ role: "user", content: "hi" }] }),
      dispatcher: agent,
    });
    assert.equal(answer.statusCode, 200);
    const read = readInBackground(answer.body);
    // A stream cut with its socket (the old exit) rejects: what matters is the text read until then.
    const readEnd = read.done.catch(() => {});
    await waitUntil(() => read.text().includes(" w1-"), "the first content chunks");
    await beginShutdown(gateway);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGINT");
    const exit = await gateway.exited;
    assert.equal(exit.code, 1, gateway.output());
    // A third of the minute a gateway deaf to the second signal would sit out (the stream's, or the bound's).
    assert.ok(exit.atMs - signalledAtMs < 20_000, `exited ${Math.round(exit.atMs - signalledAtMs)} ms after it`);
    await readEnd;

    // The client still reading was told, in its protocol, why its stream ends here.
    const data = strictSseData(read.text());
    assert.ok(!data.includes("[DONE]"), "a cut stream must not look complete");
    const last = JSON.parse(data.at(-1) ?? "{}") as { error?: { code?: string; message?: string } };
    assert.equal(last.error?.code, "service_unavailable", read.text());
    assert.match(last.error?.message ?? "", /shutting down/);

    // Its record reached the request log before the exit, with what happened.
    const logPath = join(gateway.dir, "data", "state.db.requests");
    assert.ok(existsSync(logPath), "no request log was written");
    const line = readFileSync(logPath, "utf8")
      .split("\n")
      .find((entry) => entry.includes('"cut-at-exit"'));
    assert.ok(line !== undefined, "the cut stream left no record in the request log");
    const record = JSON.parse(line.slice(line.indexOf("{"))) as {
      status: number;
      outcome: string;
      errorCode?: string;
      attempts: { outcome: string }[];
    };
    assert.deepEqual([record.status, record.outcome, record.errorCode], [503, "client_aborted", "service_unavailable"]);
    assert.equal(record.attempts.at(-1)?.outcome, "client_aborted");

    // Its reservation was settled before the state file was written: the day counts the text it delivered (at least
    // two long words, ~60 tokens each), not only the prompt's few tokens it reserved.
    const db = new DatabaseSync(join(gateway.dir, "data", "state.db"), { readOnly: true });
    t.after(() => db.close());
    const row = db.prepare("SELECT state FROM budget_scopes WHERE scope_id = ?").get("deployment:alpha/m");
    assert.ok(row !== undefined, "the budget counts were not written before the exit");
    const persisted = JSON.parse(String(row.state)) as { day: { requests: number; tokens: number } };
    assert.equal(persisted.day.requests, 1);
    assert.ok(persisted.day.tokens >= 100, `day tokens ${persisted.day.tokens}`);
  });

  test("a second signal ends a Messages stream and a JSON request in flight with errors in their protocols", async (t) => {
    // In process: the records are read from the runtime, the signals come from an emitter of the test's own.
    const mock = await startMockUpstream();
    t.after(() => mock.close());
    mock.enqueue(CHAT_ROUTE, slowWords(40));
    mock.enqueue(CHAT_ROUTE, { kind: "hang" });
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    retries: 0\n    models: { m: null }\nstate:\n  path: ":memory:"\n`,
    );
    t.after(async () => {
      await mock.close();
      await gateway.close().catch(() => {});
    });
    const records: {
      id: string;
      status: number;
      outcome: string;
      errorCode?: string;
      attempts: readonly { outcome: string; reason: string }[];
    }[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    const signals = new EventEmitter();
    const exits: { code: number; records: number }[] = [];
    handleShutdownSignals(gateway, 10_000, (code) => exits.push({ code, records: records.length }), signals);

    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const stream = anthropic.messages.stream(
      { model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] },
      { headers: { "x-request-id": "messages-cut" } },
    );
    const deltas: string[] = [];
    stream.on("text", (delta) => deltas.push(delta));
    const streamEnd = stream.finalMessage().then(
      () => undefined,
      (error: unknown) => error,
    );
    await waitUntil(() => deltas.length >= 2, "the first text deltas");
    const json = request(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "json-cut" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    await mock.waitForRequests(2);
    signals.emit("SIGTERM");
    signals.emit("SIGINT");
    await waitUntil(() => exits.length > 0, "the exit after the second signal");
    assert.equal(exits[0]?.code, 1);

    // The SDK reads the in-stream error event as the overloaded error it is, not as a cut connection.
    const error = await streamEnd;
    assert.ok(error instanceof Anthropic.APIError, `not an API error: ${String(error)}`);
    assert.match(error.message, /overloaded_error.*shutting down/);
    const answer = await json;
    assert.equal(answer.statusCode, 503);
    const body = (await answer.body.json()) as { error: { code: string } };
    assert.equal(body.error.code, "service_unavailable");

    // Both were recorded before the exit's writes began.
    const byId = new Map(records.map((record) => [record.id, record]));
    for (const id of ["messages-cut", "json-cut"]) {
      const record = byId.get(id);
      assert.ok(record !== undefined, `${id} left no record`);
      assert.deepEqual(
        [record.status, record.outcome, record.errorCode],
        [503, "client_aborted", "service_unavailable"],
      );
      // The attempt says why it ended: not a client that left.
      assert.equal(record.attempts.at(-1)?.outcome, "client_aborted");
      assert.match(record.attempts.at(-1)?.reason ?? "", /shutting down/, id);
    }
    assert.equal(exits[0]?.records, records.length, "a record was published after the exit");
  });

  test("a second signal records a stream whose client reads nothing (held by backpressure) before it exits", async (t) => {
    const mock = await startMockUpstream();
    t.after(() => mock.close());
    const frame = `data: ${JSON.stringify(chatChunk("x".repeat(64 * 1024), "m"))}\n\n`;
    const progress = { writtenBytes: 0 };
    mock.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        for (let index = 0; index < 1024; index++) {
          progress.writtenBytes += frame.length;
          if (response.write(frame)) continue;
          const isOpen = await new Promise<boolean>((resolve) => {
            response.once("drain", () => resolve(true));
            response.once("close", () => resolve(false));
          });
          if (!isOpen) return;
        }
        response.end("data: [DONE]\n\n");
      },
    });
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    retries: 0\n    models: { m: null }\nstate:\n  path: ":memory:"\n`,
    );
    t.after(async () => {
      await mock.close();
      await gateway.close().catch(() => {});
    });
    const records: { id: string; status: number; outcome: string }[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    const signals = new EventEmitter();
    const exits: { code: number; records: number; atMs: number }[] = [];
    handleShutdownSignals(
      gateway,
      10_000,
      (code) => exits.push({ code, records: records.length, atMs: performance.now() }),
      signals,
    );
    const agent = new Agent();
    t.after(() => agent.destroy());
    const answer = await request(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "never-read" },
      body: JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] }),
      dispatcher: agent,
    });
    answer.body.on("error", () => {}); // cut at the exit; never read
    // Not reading: the upstream's writes stall once the socket buffers on both hops are full.
    let lastWrittenBytes = -1;
    let stableSinceMs = performance.now();
    await waitUntil(
      () => {
        if (progress.writtenBytes !== lastWrittenBytes) {
          lastWrittenBytes = progress.writtenBytes;
          stableSinceMs = performance.now();
        }
        return performance.now() - stableSinceMs >= 300;
      },
      "the upstream's writes to stall",
      10_000,
    );
    signals.emit("SIGTERM");
    const signalledAtMs = performance.now();
    signals.emit("SIGINT");
    await waitUntil(() => exits.length > 0, "the exit after the second signal", 5_000);
    assert.equal(exits[0]?.code, 1);
    assert.ok((exits[0]?.atMs ?? 0) - signalledAtMs < 2_000, "the exit waited past its bound");
    const record = records.find((candidate) => candidate.id === "never-read");
    assert.ok(record !== undefined, "the stream held by a client that reads nothing left no record");
    assert.deepEqual([record.status, record.outcome], [503, "client_aborted"]);
    assert.ok((exits[0]?.records ?? 0) >= records.indexOf(record) + 1, "its record came after the exit's writes");
  });

  test("a second signal writes the request log's pending records before it exits", async (t) => {
    // In process, so that the second signal comes in the same tick as the last record (in a child process the
    // request log's 500 ms timer could write it in between); the signals come from an emitter of the test's own.
    const mock = await startMockUpstream();
    t.after(() => mock.close());
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["a", "b", "c"], "m", { delayMs: 2_000 }),
    });
    const dir = mkdtempSync(join(tmpdir(), "llm-gateway-second-signal-"));
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    retries: 0\n    models: { m: null }\nstate:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`,
    );
    t.after(async () => {
      // Normally closed by the first signal's shutdown below; this is for a test that failed before it.
      await mock.close();
      await gateway.close().catch(() => {});
    });
    const segment = join(dir, "state.db.requests");
    const signals = new EventEmitter();
    const exits: { code: number; linesAtExit: string }[] = [];
    handleShutdownSignals(
      gateway,
      10_000,
      (code) => {
        exits.push({ code, linesAtExit: existsSync(segment) ? readFileSync(segment, "utf8") : "" });
      },
      signals,
    );
    // A stream in flight holds the first shutdown open; a JSON request is answered while it drains, when the test
    // says.
    let answer: () => void = () => {};
    const answered = new Promise<void>((done) => {
      answer = done;
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await answered;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("late answer", "m")));
      },
    });
    const agent = new Agent();
    t.after(() => agent.destroy());
    const stream = postJson(
      `${gateway.baseUrl}/chat/completions`,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      { dispatcher: agent },
    );
    const late = request(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "answered-while-draining" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      dispatcher: agent,
    });
    await mock.waitForRequests(2);
    signals.emit("SIGTERM");
    // The second signal in the very tick the late request's record is published (after the request log took it).
    gateway.runtime.onRecord((record) => {
      if (record.id === "answered-while-draining") signals.emit("SIGINT");
    });
    answer();
    await (await late).body.dump();
    await waitUntil(() => exits.length > 0, "the exit after the second signal");
    assert.equal(exits[0]?.code, 1);
    assert.match(
      exits[0]?.linesAtExit ?? "",
      /answered-while-draining/,
      "the record published just before the second signal was not written before the exit",
    );
    // An injected exit does not end the process: the second signal's bound calls it again, and the first shutdown,
    // which finishes once the stream is ended, does not call it with its own code (0).
    await mock.close();
    await (await stream).body.dump().catch(() => {});
    await waitUntil(() => exits.length === 2, "the second signal's bound", 10_000);
    await gateway.close();
    assert.deepEqual(
      exits.map((exit) => exit.code),
      [1, 1],
    );
  });

  test("a second signal whose writes hang (a hung disk or Redis) still exits at its bound", async (t) => {
    const mock = await startMockUpstream();
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    models: { m: null }\n`,
    );
    t.after(async () => {
      await gateway.close();
      await mock.close();
    });
    const signals = new EventEmitter();
    const exits: { code: number; atMs: number }[] = [];
    const never = new Promise<void>(() => {});
    handleShutdownSignals(
      { ...gateway, close: () => never, writeBeforeExit: () => never },
      60_000,
      (code) => exits.push({ code, atMs: performance.now() }),
      signals,
    );
    signals.emit("SIGTERM");
    const signalledAtMs = performance.now();
    signals.emit("SIGTERM");
    signals.emit("SIGINT"); // a third signal neither exits earlier nor starts the writes again
    await waitUntil(() => exits.length > 0, "the exit", 5_000);
    const elapsedMs = (exits[0]?.atMs ?? 0) - signalledAtMs;
    assert.equal(exits[0]?.code, 1);
    assert.ok(elapsedMs >= 900 && elapsedMs < 2_000, `exited ${Math.round(elapsedMs)} ms after the second signal`);
  });

  test("past the shutdown timeout, a close still under way at the 3 s bound: the last writes are made (no wait) before the exit", async (t) => {
    const mock = await startMockUpstream();
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    models: { m: null }\n`,
    );
    t.after(async () => {
      await gateway.close();
      await mock.close();
    });
    const signals = new EventEmitter();
    const exits: { code: number; atMs: number; writes: readonly number[] }[] = [];
    const writes: number[] = [];
    // A close that does not finish (a background run's final save retrying, a store slower than the bound).
    const never = new Promise<void>(() => {});
    handleShutdownSignals(
      {
        ...gateway,
        close: () => never,
        writeBeforeExit: async (stateWaitMs) => {
          writes.push(stateWaitMs);
        },
      },
      100,
      (code) => exits.push({ code, atMs: performance.now(), writes: [...writes] }),
      signals,
    );
    const signalledAtMs = performance.now();
    signals.emit("SIGTERM");
    await waitUntil(() => exits.length > 0, "the exit", 6_000);
    const elapsedMs = (exits[0]?.atMs ?? 0) - signalledAtMs;
    assert.equal(exits[0]?.code, 0);
    // The old code exited there without them: a store's lock wait cut before it said what it lost.
    assert.deepEqual(exits[0]?.writes, [0], "the last writes (without a wait for the lock) came before the exit");
    assert.ok(elapsedMs >= 3_000 && elapsedMs < 4_500, `exited ${Math.round(elapsedMs)} ms after the signal`);
  });

  test("a second signal with the state file locked by another process: the write gives up at its bound, exit 1", async (t) => {
    const { gateway } = await setUp(t, 60_000, 400, {
      model: { limits: { rpd: 100 } },
      state: { flush_interval_ms: 3_600_000 },
    });
    const other = new DatabaseSync(join(gateway.dir, "data", "state.db"));
    other.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
    t.after(() => {
      other.exec("ROLLBACK");
      other.close();
    });
    await beginShutdown(gateway);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGTERM");
    const exit = await gateway.exited;
    const elapsedMs = exit.atMs - signalledAtMs;
    assert.equal(exit.code, 1, gateway.output());
    // It waited for the lock (up to 1 s), then exited without hanging.
    assert.ok(elapsedMs >= 900 && elapsedMs < 3000, `exited ${Math.round(elapsedMs)} ms after the second signal`);
    // Said as lost at the exit, as the close says it (not "written when it works again": there is no again).
    assert.match(
      gateway.output(),
      /state file: the last write before the exit was not saved \(database is locked, after 1000 ms waiting/,
    );
  });

  test("a second signal ends a batch's line in flight through the pipeline: its record is written before the exit", async (t) => {
    const { mock, agent } = await useMockWithAgent(t);
    // The live stream holds the first shutdown open; the batch's line waits on an upstream that never answers.
    mock.enqueue(CHAT_ROUTE, slowWords(40));
    mock.setDefault(CHAT_ROUTE, { kind: "hang" });
    const gateway = await startGatewayProcess(t, mock, 10_000);
    const stream = await postJson(
      `${gateway.baseUrl}/v1/chat/completions`,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      { dispatcher: agent },
    );
    const read = readInBackground(stream.body);
    const readEnd = read.done.catch(() => {});
    await waitUntil(() => read.text().includes('" w0"'), "the first content chunk");
    const client = new OpenAI({ baseURL: `${gateway.baseUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const file = await upload(client, `${chatLine("line-1", "hello")}\n`);
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(2);
    await beginShutdown(gateway);
    const signalledAtMs = performance.now();
    gateway.child.kill("SIGINT");
    const exit = await gateway.exited;
    await readEnd;
    assert.equal(exit.code, 1, gateway.output());
    assert.ok(exit.atMs - signalledAtMs < 3_000, `exited ${Math.round(exit.atMs - signalledAtMs)} ms after it`);

    // The line's request left its record, as the live stream's did: cut by the exit, not answered.
    const lines = readFileSync(join(gateway.dir, "data", "state.db.requests"), "utf8").split("\n");
    const line = lines.find((entry) => entry.includes(`"batchId":"${batch.id}"`));
    assert.ok(line !== undefined, `the batch's line left no record:\n${lines.join("\n")}`);
    const record = JSON.parse(line.slice(line.indexOf("{"))) as { status: number; outcome: string };
    assert.deepEqual([record.status, record.outcome], [503, "client_aborted"]);
    // Its result was not written: it runs again after a restart.
    const db = new DatabaseSync(join(gateway.dir, "data", "state.db"), { readOnly: true });
    t.after(() => db.close());
    assert.equal(db.prepare("SELECT COUNT(*) AS count FROM batch_results").get()?.count, 0);
  });
});

/**
 * What Redis counts today for the deployment `alpha/m` (its day window's hash, summed over the day keys: one unless
 * the test crosses a day reset), as another replica sharing the Redis reads it.
 */
/** A Redis server and a connection of the test's own to read what it holds, closed when the test ends. */
async function useRedisWithAdmin(t: TestContext): Promise<{ redis: RedisServer; admin: Redis }> {
  const redis = await useRedisServer(t);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  return { redis, admin };
}

async function sharedDayCount(admin: Redis, prefix: string): Promise<{ requests: number; tokens: number }> {
  const keys = await admin.keys(`${prefix}budget:{alpha}:deployment:alpha/m:day:*`);
  let requests = 0;
  let tokens = 0;
  for (const key of keys) {
    const day = await admin.hgetall(key);
    requests += Number(day.requests ?? 0);
    tokens += Number(day.tokens ?? 0);
  }
  return { requests, tokens };
}

describe("graceful shutdown with Redis", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  // A day's token budget charged only the prompt up front (count_max_tokens: false): only the reconcile at the
  // request's end puts its answer's tokens in the shared count.
  const limited = { model: { limits: { tpd: 1_000_000 } }, provider: { count_max_tokens: false } };

  test("SIGTERM with a stream in flight: its reconcile reaches Redis before the process exits", async (t) => {
    const { redis, admin } = await useRedisWithAdmin(t);
    const { mock, agent } = await useMockWithAgent(t);
    const usage = { prompt_tokens: 1_000, completion_tokens: 2_345 };
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["a", "b", "c", "d", "e", "f"], "m", { delayMs: 150, usage }),
    });
    const gateway = await startGatewayProcess(t, mock, 10_000, {
      ...limited,
      state: { redis_url: redis.url, redis_key_prefix: "shutdown:" },
    });
    const answer = await postJson(
      `${gateway.baseUrl}/v1/chat/completions`,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      { dispatcher: agent },
    );
    assert.equal(answer.statusCode, 200);
    const read = readInBackground(answer.body);
    await waitUntil(() => read.text().includes('"a"'), "the first content chunk");
    gateway.child.kill("SIGTERM");
    const exit = await gateway.exited;
    await read.done;
    assert.equal(exit.code, 0, gateway.output());
    assert.ok(read.text().includes("[DONE]"), "the stream in flight did not complete");
    // The fleet's count holds what the provider reported, not the prompt estimate the reserve charged.
    assert.deepEqual(await sharedDayCount(admin, "shutdown:"), { requests: 1, tokens: 3_345 });
  });

  test("SIGTERM while a budget lease lives: its unused part is given back before the process exits", async (t) => {
    const { redis, admin } = await useRedisWithAdmin(t);
    const mock = await startMockUpstream();
    t.after(() => mock.close());
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("hello", "m") });
    // A high daily limit: the reserve takes a lease of 1/64 of it (docs/limits.md "Budget leases (high limits)"),
    // counted in Redis at once and given back when it ends, here at the exit (it lives up to 1 s).
    const gateway = await startGatewayProcess(t, mock, 10_000, {
      model: { limits: { rpd: 1_000_000 } },
      state: { redis_url: redis.url, redis_key_prefix: "shutdown:" },
    });
    // Until a lease is seen live in Redis (on a loaded machine the first one may end before it is read).
    let sent = 0;
    for (;;) {
      const answer = await request(`${gateway.baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(answer.statusCode, 200);
      await answer.body.dump();
      sent++;
      if ((await sharedDayCount(admin, "shutdown:")).requests > sent) break;
      assert.ok(sent < 5, "no lease seen live after five requests: the test proves nothing");
    }
    gateway.child.kill("SIGTERM");
    const exit = await gateway.exited;
    assert.equal(exit.code, 0, gateway.output());
    // Another replica sees the requests sent, not the lease's units this process can no longer spend.
    assert.equal((await sharedDayCount(admin, "shutdown:")).requests, sent);
  });

  test("a second signal: the reconcile of the stream it ends reaches Redis before the process exits", async (t) => {
    const { redis, admin } = await useRedisWithAdmin(t);
    const { mock, agent } = await useMockWithAgent(t);
    mock.enqueue(CHAT_ROUTE, slowWords(400, longWord));
    // And a high daily request limit: the reserve takes a lease (it lives up to 1 s), to be given back at the exit.
    const gateway = await startGatewayProcess(t, mock, 10_000, {
      ...limited,
      model: { limits: { tpd: 1_000_000, rpd: 1_000_000 } },
      state: { redis_url: redis.url, redis_key_prefix: "shutdown:" },
    });
    const answer = await postJson(
      `${gateway.baseUrl}/v1/chat/completions`,
      { model: "m", stream: true, max_tokens: 8000, messages: [{ role: "user", content: "hi" }] },
      { dispatcher: agent },
    );
    assert.equal(answer.statusCode, 200);
    const read = readInBackground(answer.body);
    const readEnd = read.done.catch(() => {});
    await waitUntil(() => read.text().includes(" w1-"), "the first content chunks");
    // The lease is live here unless the machine is slow (it lives 1 s): the SIGTERM test above proves the give-back.
    await beginShutdown(gateway);
    gateway.child.kill("SIGINT");
    const exit = await gateway.exited;
    await readEnd;
    assert.equal(exit.code, 1, gateway.output());
    // Settled at the prompt plus the text it delivered (at least two long words, ~60 tokens each), in Redis; the
    // lease's unused requests given back.
    const day = await sharedDayCount(admin, "shutdown:");
    assert.equal(day.requests, 1);
    assert.ok(day.tokens >= 100, `the shared day counts ${day.tokens} tokens`);
  });
});

describe("graceful shutdown: a request still in its door's translation", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, () => {
  test("a second signal while a Responses request looks up its previous_response_id: answered and recorded as cut before the exit", async (t) => {
    const redis = await useRedisServer(t);
    const mock = await startMockUpstream();
    const gateway = await startTestGateway(
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    retries: 0\n    models: { m: null }\nstate:\n  redis_url: ${redis.url}\n  redis_key_prefix: "cut-begin:"\n`,
    );
    t.after(async () => {
      redis.resume();
      await mock.close();
      await gateway.close().catch(() => {});
    });
    const records: RequestRecord[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    const signals = new EventEmitter();
    const exits: { code: number; recordsAtExit: RequestRecord[] }[] = [];
    handleShutdownSignals(gateway, 10_000, (code) => exits.push({ code, recordsAtExit: [...records] }), signals);
    // The kept answers live in Redis, which stops answering: the door's lookup of previous_response_id waits (up to
    // its 200 ms command timeout), before the pipeline's request is open.
    redis.pause();
    const answer = request(`${gateway.baseUrl}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "cut-in-begin" },
      body: JSON.stringify({ model: "m", input: "again", previous_response_id: "resp_earlier" }),
    });
    await waitUntil(() => gateway.runtime.openRequests.size === 1, "the request in translation counted as open", 2_000);
    signals.emit("SIGTERM");
    signals.emit("SIGTERM");
    const answered = await answer;
    const body = (await answered.body.json()) as { error?: { code?: string; message?: string } };
    // Told in its protocol why, as every request the exit ends (not the kept store's own failure, which comes later).
    assert.equal(answered.statusCode, 503);
    assert.equal(body.error?.code, "service_unavailable");
    assert.match(body.error?.message ?? "", /shutting down/);
    await waitUntil(() => exits.length > 0, "the exit after the second signal", 5_000);
    assert.equal(exits[0]?.code, 1);
    const record = exits[0]?.recordsAtExit.find((entry) => entry.id === "cut-in-begin");
    assert.ok(record !== undefined, "the request in translation left no record before the exit");
    assert.deepEqual([record.status, record.outcome, record.errorCode], [503, "client_aborted", "service_unavailable"]);
    assert.equal(mock.requests.length, 0);
  });
});
