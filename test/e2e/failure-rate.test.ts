// Intermittent failures (docs/routing.md "Recovery", "Failing often"): a primary that fails every other request
// never has three failures in a row, yet it must not keep every request paying for a failed attempt. Its failure
// rate over `cooldowns.failure_window_ms` opens its circuit; then requests go to the fallback and the primary sees
// only its probes. Real sockets, an injected clock: alpha (preferred by far) alternates 503 and 200, beta is healthy.
import assert from "node:assert/strict";
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { request } from "undici";
import { ManualClock } from "../../src/clock.ts";
import { HELLO } from "../helpers/e2e.ts";
import { assertServedBy, MODEL, startScene } from "../helpers/limits-scene.ts";
import { chatChunk, chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const START_MS = Date.UTC(2026, 0, 1, 12);

const UNAVAILABLE: MockStep = {
  kind: "json",
  status: 503,
  body: { error: { message: "overloaded", type: "server_error", code: null, param: null } },
};

describe("failure rate", () => {
  test("a primary alternating 503/200 has its circuit opened by its failure rate; then only probes reach it", async (t) => {
    // Default cooldowns: 3 failures making at least 50 % of the verdicts within 60 s open the circuit; first probe
    // after 2 s, doubling to 30 s while it flaps. `retries: 1`, the default of a provider: each 503 is retried once.
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alpha: { retries: 1 } });
    const alphaCallsAtS: number[] = [];
    scene.alpha.setDefault(CHAT_ROUTE, () => {
      alphaCallsAtS.push((clock.now() - START_MS) / 1000);
      return alphaCallsAtS.length % 2 === 1 ? UNAVAILABLE : { kind: "json", body: chatCompletion("a", "alpha-model") };
    });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });

    // The first two requests: alpha 503, retried on alpha, 200. Each success used to clear the failure before it,
    // so this went on for ever: every request two alpha attempts, one of them failed.
    assertServedBy(await scene.chat(), "alpha", 2);
    clock.advance(1_000);
    assertServedBy(await scene.chat(), "alpha", 2);
    clock.advance(1_000);
    // The third failure is 3 of 5 verdicts: the circuit opens, the retry is not sent, beta answers.
    assertServedBy(await scene.chat(), "beta", 2);
    const opened = await scene.stats("alpha");
    assert.equal(opened.circuit, "open");
    assert.deepEqual(opened.failure_window, { attempts: 5, failures: 3 });
    clock.advance(1_000);
    assertServedBy(await scene.chat(), "beta");
    // 2 s after the opening: the one probe, which succeeds (alpha's even calls do) and closes the circuit.
    clock.advance(1_000);
    assertServedBy(await scene.chat(), "alpha");
    const probed = await scene.stats("alpha");
    assert.equal(probed.circuit, "closed");
    assert.deepEqual(probed.failure_window, { attempts: 1, failures: 0 }, "the probe cleared the outage's verdicts");

    for (let second = 5; second < 60; second++) {
      clock.advance(1_000);
      const answer = await scene.chat();
      assert.equal(answer.status, 200, answer.text);
    }
    // It keeps failing half its requests: reopened within the window of each recovery, its pauses double (4, 8,
    // 16, 30 s) and between them only a probe and a couple of requests reach it.
    assert.deepEqual(
      alphaCallsAtS,
      [0, 0, 1, 1, 2, 4, 5, 5, 6, 6, 7, 11, 12, 12, 13, 13, 14, 22, 23, 23, 24, 24, 25, 41, 42, 42, 43, 43, 44],
    );
    // Alpha served 14 of the 60 requests and failed 15 attempts. Before: 120 attempts on alpha, 60 of them failed.
    const { alpha, beta } = scene.counts();
    assert.deepEqual({ alpha, beta }, { alpha: 29, beta: 46 });
    assert.equal((await scene.stats("alpha")).circuit, "open");
  });

  test("a primary failing now and then among many successes keeps its circuit closed", async (t) => {
    // One 503 in ten, retried on alpha: 6 failures in the minute, never three in a row, 10 % of the verdicts.
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alpha: { retries: 1 } });
    let alphaCalls = 0;
    scene.alpha.setDefault(CHAT_ROUTE, () => {
      alphaCalls += 1;
      return alphaCalls % 10 === 0 ? UNAVAILABLE : { kind: "json", body: chatCompletion("a", "alpha-model") };
    });
    for (let index = 0; index < 60; index++) {
      if (index > 0) clock.advance(1_000);
      const answer = await scene.chat();
      assert.equal(answer.headers["x-gateway-provider"], "alpha", `request ${index}: ${answer.text}`);
    }
    const stats = await scene.stats("alpha");
    assert.equal(stats.circuit, "closed");
    assert.deepEqual(stats.failure_window, { attempts: 66, failures: 6 });
    assert.equal(scene.counts().beta, 0);
  });

  test("a stream sent before the circuit opened ends well: the circuit stays open until its probe", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
    let finishStream = (): void => {};
    const isFinished = new Promise<void>((resolve) => {
      finishStream = resolve;
    });
    const sse = (chunk: unknown): string => `data: ${JSON.stringify(chunk)}\n\n`;
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_recorded, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.write(sse(chatChunk("Hi", "alpha-model", { role: true })));
        await isFinished;
        response.end(`${sse(chatChunk("", "alpha-model", { finishReason: "stop" }))}data: [DONE]\n\n`);
      },
    });
    const stream = await request(`${scene.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: HELLO, stream: true }),
    });
    assert.equal(stream.headers["x-gateway-provider"], "alpha");
    let text = "";
    stream.body.setEncoding("utf8");
    stream.body.on("data", (chunk: string) => {
      text += chunk;
    });
    const ended = once(stream.body, "end");
    await waitUntil(() => text.includes("Hi"), "the stream's first content");
    // While it streams, three requests fail on alpha: the circuit opens.
    clock.advance(100);
    scene.alpha.enqueue(CHAT_ROUTE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE);
    for (let index = 0; index < 3; index++) assertServedBy(await scene.chat(), "beta", 2);
    assert.equal((await scene.stats("alpha")).circuit, "open");
    // The stream sent before the opening ends well. It says how alpha was then, not now: the circuit stays open
    // (closing it let a candidate failing half its requests back in on every long stream that ended well).
    finishStream();
    await ended;
    assert.match(text, /\[DONE\]/);
    const afterStream = await scene.stats("alpha");
    assert.equal(afterStream.circuit, "open");
    assertServedBy(await scene.chat(), "beta");
    // Its probe, 2 s after the opening, is what closes it.
    clock.advance(2_000);
    assertServedBy(await scene.chat(), "alpha");
    assert.equal((await scene.stats("alpha")).circuit, "closed");
  });
});
