// Issue 13, findings 2 and 11 (upstream part): an upstream may send anything, of any size, and it must never
// cost the gateway unbounded memory or time, nor pass for a success. Each case scripts the raw response with the
// mock's `handler` step and asserts the bound (upstream_limits in docs/configuration.md).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  postChat,
  rowOf,
  send,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { startScene } from "../helpers/limits-scene.ts";
import { chatChunk, chatCompletion, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, strictSseData, waitUntil } from "../helpers/sse-client.ts";

const MODEL = "m";
const KEY = "sk-alpha-limits-0123456789abcdef";

function oneProvider(mock: MockUpstream, extra = ""): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${KEY}
    retries: 0
    timeout_ms: 5000
    first_token_timeout_ms: 5000
    stream_idle_timeout_ms: 5000
    models:
      ${MODEL}: {}
${extra}`;
}

/** alpha (preferred; `alphaKeys`, YAML, one a line) and beta (the fallback) serving MODEL; `extra` after them. */
function twoProviders(primary: MockUpstream, backup: MockUpstream, extra: string, alphaKeys: readonly string[] = []) {
  return `providers:
  - name: alpha
    base_url: ${primary.baseUrl}
    api_key: ${KEY}
    retries: 0
${alphaKeys.map((line) => `    ${line}\n`).join("")}    models:
      ${MODEL}: { priority: 10 }
  - name: beta
    base_url: ${backup.baseUrl}
    api_key: sk-beta-0123456789abcdef
    retries: 0
    models:
      ${MODEL}: { priority: 1 }
${extra}`;
}

/** Writes `piece` until the client hangs up (respecting backpressure), or `maxBytes` went out. */
async function writeUntilClosed(response: ServerResponse, piece: string, maxBytes = Number.POSITIVE_INFINITY) {
  let sent = 0;
  while (!response.destroyed && !response.writableEnded && sent < maxBytes) {
    sent += piece.length;
    if (!response.write(piece)) {
      const isDrained = await new Promise<boolean>((resolve) => {
        const onDrain = (): void => done(true);
        const onClose = (): void => done(false);
        function done(value: boolean): void {
          response.off("drain", onDrain);
          response.off("close", onClose);
          resolve(value);
        }
        response.on("drain", onDrain);
        response.on("close", onClose);
      });
      if (!isDrained) return sent;
    }
  }
  return sent;
}

function sseHead(response: ServerResponse): void {
  response.writeHead(200, { "content-type": "text/event-stream" });
  response.flushHeaders();
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
}

/** Samples a process's RSS every 20 ms until stopped; returns the peak. */
function watchRss(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

interface InBandError {
  error: { code: string; type: string; message: string };
}

function lastEvent(text: string): unknown {
  const events = strictSseData(text);
  const last = events.at(-1);
  assert.ok(last !== undefined, "no event");
  return JSON.parse(last);
}

const MB = 1024 * 1024;
/** RSS is read from /proc. */
const rssSkip = process.platform === "linux" ? false : "reads RSS from /proc (Linux only)";

describe("hostile upstream: bounded memory (finding 2)", () => {
  test("one chunk then `data: ` and endless bytes without a newline: cut as stream_too_large, RSS growth < 50 MB", {
    skip: rssSkip,
  }, async (t) => {
    const mock = await useMock(t);
    let upstreamClosed = false;
    let sentBytes = 0;
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        response.write(`data: ${JSON.stringify(chatChunk("Hi", MODEL, { role: true }))}\n\n`);
        response.write("data: ");
        response.on("close", () => {
          upstreamClosed = true;
        });
        // 64 KiB per write, for at most 400 MB: without a line cap this grows the gateway by gigabytes.
        sentBytes = await writeUntilClosed(response, "a".repeat(64 * 1024), 400 * MB);
      },
    });
    const gateway = await startGatewayProcess(t, oneProvider(mock));
    assert.ok(gateway.pid !== undefined);
    // Warm up (JIT, pools) so that the baseline is not the idle heap of a fresh process.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("warm", MODEL) });
    await postJson(`${gateway.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    }).then((answer) => answer.body.text());
    const before = rssBytes(gateway.pid);
    const rss = watchRss(gateway.pid);
    const startedAt = performance.now();
    const answer = await postJson(`${gateway.url}/v1/chat/completions`, {
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const { text } = await readTimed(answer.body);
    const elapsedMs = performance.now() - startedAt;
    await sleep(100);
    const peak = rss.stop();
    const event = lastEvent(text) as InBandError;
    assert.equal(event.error.code, "stream_interrupted", text.slice(-300));
    assert.match(event.error.message, /max_stream_event_chars/);
    assert.ok(upstreamClosed, "the upstream call was hung up on");
    assert.ok(sentBytes < 100 * MB, `the upstream got to send ${sentBytes} bytes before the cut`);
    assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms`);
    assert.ok(peak - before < 50 * MB, `RSS grew by ${Math.round((peak - before) / MB)} MB`);
    assert.ok(!text.includes("aaaa"), "the oversized line never reaches the client");
  });

  test("bytes trickled into one endless line are not progress: stalled after stream_idle_timeout_ms", async (t) => {
    const mock = await useMock(t);
    let upstreamClosed = false;
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        response.write(`data: ${JSON.stringify(chatChunk("Hi", MODEL, { role: true }))}\n\n`);
        response.write("data: ");
        response.on("close", () => {
          upstreamClosed = true;
        });
        // One byte every 50 ms, far more often than the idle timeout, for up to a minute.
        for (let index = 0; index < 1200 && !response.destroyed; index++) {
          response.write("z");
          await sleep(50);
        }
      },
    });
    const gateway = await useGateway(
      t,
      oneProvider(mock).replace("stream_idle_timeout_ms: 5000", "stream_idle_timeout_ms: 400"),
    );
    const startedAt = performance.now();
    const answer = await postJson(`${gateway.baseUrl}/chat/completions`, {
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const { text } = await readTimed(answer.body);
    const event = lastEvent(text) as InBandError;
    assert.equal(event.error.code, "upstream_timeout", text);
    assert.match(event.error.message, /no complete line/);
    // Not at max_stream_duration_ms (10 minutes by default): a bound far above the 400 ms idle timeout, for a loaded
    // machine, is still far below it.
    assert.ok(performance.now() - startedAt < 20_000, "cut soon after the idle timeout, not at max_stream_duration_ms");
    await waitUntil(() => upstreamClosed, "the trickling upstream was hung up on");
  });

  // The bound is half the content sent (a relay that kept the delivered text would grow by more than 300 MB) and
  // leaves room for garbage the collector has not reclaimed yet, which on a loaded machine can be ~100 MB at peak.
  test("an endless well-formed stream: retained text stays capped (RSS growth < 150 MB over 300 MB of content)", {
    skip: rssSkip,
  }, async (t) => {
    const mock = await useMock(t);
    const content = "b".repeat(32 * 1024);
    const event = `data: ${JSON.stringify(chatChunk(content, MODEL))}\n\n`;
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        response.write(`data: ${JSON.stringify(chatChunk("", MODEL, { role: true }))}\n\n`);
        await writeUntilClosed(response, event, 300 * MB);
        // Then the upstream breaks: there is nothing to continue from (past the retained-text cap).
        response.socket?.destroy();
      },
    });
    const gateway = await startGatewayProcess(t, oneProvider(mock));
    assert.ok(gateway.pid !== undefined);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("warm", MODEL) });
    await postJson(`${gateway.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    }).then((answer) => answer.body.text());
    const before = rssBytes(gateway.pid);
    const rss = watchRss(gateway.pid);
    const answer = await postJson(`${gateway.url}/v1/chat/completions`, {
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let received = 0;
    let tail = "";
    for await (const bytes of answer.body as AsyncIterable<Buffer>) {
      received += bytes.byteLength;
      tail = (tail + bytes.toString("utf8")).slice(-2000);
    }
    await sleep(100);
    const peak = rss.stop();
    assert.ok(received > 295 * MB, `the client got ${Math.round(received / MB)} MB`);
    assert.match(tail, /"code":"stream_interrupted"/);
    assert.ok(peak - before < 150 * MB, `RSS grew by ${Math.round((peak - before) / MB)} MB`);
  });

  test("past max_retained_stream_chars a cut stream is not continued (the backup is never asked)", async (t) => {
    const primary = await useMock(t);
    const backup = await useMock(t);
    primary.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        for (let index = 0; index < 20; index++) {
          response.write(`data: ${JSON.stringify(chatChunk("0123456789", MODEL))}\n\n`);
        }
        await sleep(50);
        response.socket?.destroy();
      },
    });
    const gateway = await useGateway(
      t,
      twoProviders(primary, backup, "upstream_limits:\n  max_retained_stream_chars: 100\n"),
    );
    const answer = await postJson(`${gateway.baseUrl}/chat/completions`, {
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const { text } = await readTimed(answer.body);
    const event = lastEvent(text) as InBandError;
    assert.equal(event.error.code, "stream_interrupted");
    assert.equal(chatRequests(backup).length, 0, "no continuation was attempted past the cap");
    assert.equal((text.match(/0123456789/g) ?? []).length, 20, "everything the upstream sent was delivered");
  });

  test("role-only events before the first content are bounded: the attempt fails over instead of buffering", async (t) => {
    const primary = await useMock(t);
    const backup = await useMock(t);
    let primaryClosed = false;
    primary.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        response.on("close", () => {
          primaryClosed = true;
        });
        await writeUntilClosed(response, `data: ${JSON.stringify(chatChunk("", MODEL, { role: true }))}\n\n`, 200 * MB);
      },
    });
    const gateway = await useGateway(
      t,
      twoProviders(primary, backup, "upstream_limits:\n  max_stream_event_chars: 100000\n", [
        "first_token_timeout_ms: 60000",
      ]),
    );
    const startedAt = performance.now();
    const answer = await postChat(gateway, { model: MODEL, stream: true });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["x-gateway-provider"], "beta");
    // A third of the 60 s first_token_timeout_ms a gateway counting role chunks as content would wait.
    assert.ok(performance.now() - startedAt < 20_000, "failed over long before first_token_timeout_ms");
    assert.ok(primaryClosed, "the role-only stream was hung up on");
  });

  test("an unterminated line before the first content is bounded too", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        sseHead(response);
        response.write("data: ");
        await writeUntilClosed(response, "c".repeat(16 * 1024), 200 * MB);
      },
    });
    const gateway = await useGateway(t, oneProvider(mock, "upstream_limits:\n  max_stream_event_chars: 100000\n"));
    const answer = await postChat(gateway, { model: MODEL, stream: true });
    assert.equal(answer.status, 502);
    const error = errorOf(answer);
    assert.equal(error.code, "upstream_unavailable");
    assert.match(error.message, /max_stream_event_chars/);
    // Nobody's key is blamed: the provider is not parked for a bad key.
    const row = rowOf(await statsOf(gateway), `alpha/${MODEL}`);
    assert.notEqual(row.cooldown?.cause, "invalid_key");
  });

  test("a JSON answer larger than max_response_bytes is a bad response (502), not buffered", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("d".repeat(300_000), MODEL) });
    const gateway = await useGateway(t, oneProvider(mock, "upstream_limits:\n  max_response_bytes: 100000\n"));
    const answer = await postChat(gateway, { model: MODEL });
    assert.equal(answer.status, 502);
    const error = errorOf(answer);
    assert.equal(error.code, "upstream_unavailable");
    assert.match(error.message, /max_response_bytes \(100000 bytes\)/);
    assert.ok(!answer.text.includes("ddddd"));
  });

  test("an endless error body is read only up to max_error_body_bytes and the connection closed", async (t) => {
    const mock = await useMock(t);
    let upstreamClosed = false;
    let sentBytes = 0;
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        response.writeHead(500, { "content-type": "text/plain" });
        response.on("close", () => {
          upstreamClosed = true;
        });
        sentBytes = await writeUntilClosed(response, "upstream is on fire ".repeat(1000), 300 * MB);
      },
    });
    const gateway = await useGateway(t, oneProvider(mock, "upstream_limits:\n  max_error_body_bytes: 65536\n"));
    const startedAt = performance.now();
    const answer = await postChat(gateway, { model: MODEL });
    assert.equal(answer.status, 502);
    assert.equal(errorOf(answer).code, "upstream_unavailable");
    assert.match(errorOf(answer).message, /HTTP 500: upstream is on fire/);
    // What the upstream got to send (below) tells a gateway reading all 300 MB apart; this only bounds a hang.
    assert.ok(performance.now() - startedAt < 20_000);
    await waitUntil(() => upstreamClosed, "the gateway hangs up on the error body");
    assert.ok(sentBytes < 50 * MB, `the upstream got to send ${sentBytes} bytes`);
  });
});

describe("hostile upstream: answers that are not answers (finding 11)", () => {
  for (const status of [301, 302, 303, 307, 308, 304]) {
    test(`an upstream ${status} is an upstream failure (502), never relayed as the gateway's own status`, async (t) => {
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, {
        kind: "handler",
        handle: (_request, response) => {
          response.writeHead(status, { location: "https://elsewhere.example/v1/chat/completions" });
          response.end();
        },
      });
      const gateway = await useGateway(t, oneProvider(mock));
      for (const stream of [false, true]) {
        const answer = await postChat(gateway, { model: MODEL, stream });
        assert.equal(answer.status, 502, `stream: ${stream}`);
        const error = errorOf(answer);
        assert.equal(error.code, "upstream_unavailable");
        assert.match(error.message, new RegExp(`HTTP ${status}: the upstream answered with a redirect`));
        assert.equal(answer.headers.location, undefined);
      }
    });
  }

  for (const body of ["[1,2,3]", "null", '"text"', "42"]) {
    test(`a 200 JSON body ${body} is a bad response (502), not a success`, async (t) => {
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, { kind: "text", status: 200, body, headers: { "content-type": "application/json" } });
      const gateway = await useGateway(t, oneProvider(mock));
      const answer = await postChat(gateway, { model: MODEL });
      assert.equal(answer.status, 502, answer.text);
      assert.match(errorOf(answer).message, /JSON body that is not an object/);
      const row = rowOf(await statsOf(gateway), `alpha/${MODEL}`);
      assert.equal(row.successes, 0);
      assert.equal(row.failures, 1);
    });
  }

  test("a stream honours the client's `Connection: close`: the socket is closed after [DONE]", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProvider(mock));
    const body = JSON.stringify({ model: MODEL, stream: true, messages: [{ role: "user", content: "hi" }] });
    const socket = connect(gateway.port, "127.0.0.1");
    t.after(() => socket.destroy());
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
    });
    const ended = new Promise<boolean>((resolve) => {
      socket.on("end", () => resolve(true));
      socket.on("close", () => resolve(true));
      setTimeout(() => resolve(false), 3000).unref();
    });
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.equal(await ended, true, `the gateway kept the connection open: ${received.slice(0, 400)}`);
    const head = received.slice(0, received.indexOf("\r\n\r\n")).toLowerCase();
    assert.match(head, /^http\/1\.1 200/);
    assert.match(head, /\r\nconnection: close/);
    assert.doesNotMatch(head, /keep-alive/);
    assert.ok(received.includes("data: [DONE]"));
  });
});

describe("absurd waits from an upstream", () => {
  const DAY_S = 24 * 3_600;
  test("a retry-after past what a Date holds, or a 200's reset in 11,000 years, is bounded at 32 days: no 500s", async (t) => {
    const scene = await startScene(t, { config: { routing: { max_wait_for_better_ms: 0 } } });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "99999999999999999999" }));
    scene.beta.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("ok", "m"),
      headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999999h" },
    });
    const first = await scene.chat();
    assert.equal(first.status, 200, first.text);
    // Both are out now: alpha cooling, beta with nothing left in a window that "resets" in 11,000 years.
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    const retryAfterS = Number(refused.headers["retry-after"]);
    assert.ok(retryAfterS > 0 && retryAfterS <= 32 * DAY_S, `retry-after ${refused.headers["retry-after"]}`);
    assert.match(errorOf(refused).message, /at 20\d\d-/);
    for (const path of ["/v1/gateway/route?model=m", "/health", "/stats"]) {
      const answer = await send(scene.gateway, "GET", path);
      assert.equal(answer.status, 200, `${path}: ${answer.text}`);
    }
    const remainingMs = (await scene.stats("alpha")).cooldown?.remaining_ms ?? 0;
    assert.ok(remainingMs > 31 * DAY_S * 1_000 && remainingMs <= 32 * DAY_S * 1_000, `alpha cools ${remainingMs} ms`);

    // Alone, the provider's 429 itself is answered (it was a 500: no Date holds that instant).
    const alone = await startScene(t, { beta: false });
    alone.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "99999999999999999999" }));
    for (const attempt of ["the 429 itself", "the request after it"]) {
      const answer = await alone.chat();
      assert.equal(answer.status, 429, `${attempt}: ${answer.text}`);
      assert.ok(Number(answer.headers["retry-after"]) <= 32 * DAY_S, `${attempt}: ${answer.headers["retry-after"]}`);
    }
  });
});
