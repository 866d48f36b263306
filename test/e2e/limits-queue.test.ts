// Queueing (`routing.queue_timeout_ms`, `routing.max_queued`): when every candidate is cooling down or over
// budget, a request waits for the first to free up instead of getting a 429 at once; beyond max_queued it is
// refused at once; waiting requests are served in arrival order. Real time: the queue sleeps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type RawResponse, send } from "../helpers/e2e.ts";
import { assertServedBy, type Scene, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

async function queued(scene: Scene): Promise<number> {
  const response = await send(scene.gateway, "GET", "/stats");
  return (response.json as { queued_requests: number }).queued_requests;
}

async function untilQueued(scene: Scene, count: number): Promise<void> {
  const deadline = performance.now() + 3_000;
  while ((await queued(scene)) !== count) {
    if (performance.now() > deadline) throw new Error(`never saw ${count} queued requests`);
    await sleep(5);
  }
}

describe("routing.queue_timeout_ms", () => {
  test("a request waits for a cooldown to end, then succeeds", async (t) => {
    const scene = await startScene(t, { beta: false, config: { routing: { queue_timeout_ms: 3_000 } } });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "400" } }));
    const refused = await scene.chat();
    assert.equal(refused.status, 429, "the 429 itself is not queued: it already cost an attempt");

    const startedAtMs = performance.now();
    const waited = await scene.chat();
    const waitedMs = performance.now() - startedAtMs;
    assertServedBy(waited, "alpha");
    assert.ok(waitedMs >= 300, `answered after ${waitedMs} ms, before the cooldown ended`);
    assert.ok(waitedMs < 2_500, `answered after ${waitedMs} ms`);
    assert.equal(scene.counts().alpha, 2, "the queued request must not poll the upstream");
  });

  test("a request waits for a budget to free up", async (t) => {
    const scene = await startScene(t, {
      beta: false,
      alphaModel: { limits: { rps: 1 } },
      config: { routing: { queue_timeout_ms: 3_000 } },
    });
    assertServedBy(await scene.chat(), "alpha");
    const startedAtMs = performance.now();
    assertServedBy(await scene.chat(), "alpha");
    assert.ok(performance.now() - startedAtMs >= 800, "served before the second ended");
  });

  test("without queueing (the default) the answer is a 429 at once", async (t) => {
    const scene = await startScene(t, { beta: false });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "5" }));
    await scene.chat();
    const startedAtMs = performance.now();
    const refused = await scene.chat();
    assert.equal(refused.status, 429);
    assert.equal(refused.headers["retry-after"], "5");
    assert.ok(performance.now() - startedAtMs < 500);
  });

  test("a wait longer than queue_timeout_ms ends in a 429 at the timeout", async (t) => {
    const scene = await startScene(t, { beta: false, config: { routing: { queue_timeout_ms: 300 } } });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    await scene.chat();
    const startedAtMs = performance.now();
    const refused = await scene.chat();
    const waitedMs = performance.now() - startedAtMs;
    assert.equal(refused.status, 429, refused.text);
    assert.ok(waitedMs >= 280 && waitedMs < 2_000, `gave up after ${waitedMs} ms`);
    assert.equal(refused.headers["retry-after"], "30");
    assert.equal(scene.counts().alpha, 1);
  });

  test("beyond max_queued a request gets a 429 at once", async (t) => {
    const scene = await startScene(t, {
      beta: false,
      config: { routing: { queue_timeout_ms: 3_000, max_queued: 1 } },
    });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "600" } }));
    await scene.chat();
    const waiting = scene.chat();
    await untilQueued(scene, 1);
    const startedAtMs = performance.now();
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.ok(performance.now() - startedAtMs < 300, "the request beyond max_queued waited");
    assert.ok(refused.headers["retry-after"] !== undefined);
    assertServedBy(await waiting, "alpha");
    assert.equal(await queued(scene), 0);
  });

  test("waiting requests are served in arrival order", async (t) => {
    const scene = await startScene(t, {
      beta: false,
      alphaModel: { limits: { concurrency: 1 } },
      config: { routing: { queue_timeout_ms: 5_000 } },
    });
    // Every answer takes 150 ms, so each waiter finds the only slot busy until the one before it is done.
    scene.alpha.setDefault(CHAT_ROUTE, (request) => ({
      kind: "json",
      body: chatCompletion(String((request.body as { messages: { content: string }[] }).messages[0]?.content), "x"),
      delayMs: 150,
    }));
    const busy = scene.chat({ messages: [{ role: "user", content: "busy" }] });
    await scene.alpha.waitForRequests(1);
    const names = ["first", "second", "third", "fourth"];
    const waiters: Promise<RawResponse>[] = [];
    for (const [index, name] of names.entries()) {
      waiters.push(scene.chat({ messages: [{ role: "user", content: name }] }));
      await untilQueued(scene, index + 1);
    }
    await busy;
    const answers = await Promise.all(waiters);
    for (const answer of answers) assertServedBy(answer, "alpha");
    const served = scene.alpha.requests.map((request) =>
      String((request.body as { messages: { content: string }[] }).messages[0]?.content),
    );
    assert.deepEqual(served, ["busy", ...names]);
  });
});
