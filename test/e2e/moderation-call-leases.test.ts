// The slots a Llama Guard moderation's parallel calls take (max_in_flight, the budgets' concurrency, and with Redis a
// concurrency lease each) are all given back on the paths that end calls early: the client leaving mid-moderation,
// and an upstream call timing out. A slot or lease left behind would hold the limit down for the lease's TTL (30 s)
// or, for a process's own count, for good: the next moderation would run its calls fewer at a time.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { request } from "undici";
import { leasesKey } from "../../src/state/redis-keys.ts";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { GUARD, nativeAnswer } from "../helpers/moderation-scene.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";

/** Llama Guard answers after `delayMs`, counting the calls in flight at the mock. */
function countingCalls(delayMs: number) {
  const counter = { inFlight: 0, peak: 0 };
  const step = {
    kind: "handler" as const,
    handle: async (_request: unknown, response: ServerResponse) => {
      counter.inFlight += 1;
      counter.peak = Math.max(counter.peak, counter.inFlight);
      await sleep(delayMs);
      counter.inFlight -= 1;
      if (response.destroyed) return;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("safe", GUARD)));
    },
  };
  return { counter, step };
}

async function scene(t: TestContext, timeoutMs: number) {
  const redis = await useRedisServer(t);
  const guardMock = await useMock(t);
  const nativeMock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: p0
    base_url: ${guardMock.baseUrl}
    api_key: sk-p0-secret
    retries: 0
    timeout_ms: ${timeoutMs}
    models:
      guard: { id: "${GUARD}", priority: 100, limits: { concurrency: 3 } }
  - name: p1
    base_url: ${nativeMock.baseUrl}
    api_key: sk-p1-secret
    retries: 0
    models:
      guard: { id: "omni-moderation-latest", priority: 10 }
state:
  redis_url: ${redis.url}
  redis_key_prefix: "leases:"
  redis_command_timeout_ms: 2000
`,
  );
  const admin = new Redis(redis.url, { lazyConnect: true });
  await admin.connect();
  t.after(() => admin.disconnect());
  const leases = leasesKey("leases:", "deployment:p0/guard");
  /** The leases set is empty within `withinMs` (well under the 30 s TTL: removed, not expired). */
  const leasesGone = async (withinMs: number): Promise<number> => {
    const deadline = Date.now() + withinMs;
    while ((await admin.zcard(leases)) > 0 && Date.now() < deadline) await sleep(20);
    return admin.zcard(leases);
  };
  return { gateway, guardMock, nativeMock, leasesGone };
}

describe("moderation call slots and leases on early ends", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("the client leaving mid-moderation: every call's lease is removed and the next moderation runs 3 at a time", async (t) => {
    const { gateway, guardMock, nativeMock, leasesGone } = await scene(t, 30_000);
    const slow = countingCalls(400);
    guardMock.enqueue(CHAT, ...Array.from({ length: 5 }, () => slow.step));
    const controller = new AbortController();
    const leaving = request(`${gateway.url}/v1/moderations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "guard", input: ["a", "b", "c", "d", "e"] }),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    const deadline = Date.now() + 5_000;
    while (slow.counter.inFlight < 3 && Date.now() < deadline) await sleep(10);
    assert.equal(slow.counter.peak, 3, "three calls in flight before the client leaves");
    controller.abort();
    await leaving;
    // Let the calls in flight end (the mock's 400 ms), then nothing may hold a lease.
    while (slow.counter.inFlight > 0 && Date.now() < deadline + 5_000) await sleep(10);
    assert.equal(await leasesGone(3_000), 0, "no lease left after the client left");
    // The steps the calls never sent left in the mock's queue answer the next calls the same way (one counter).
    slow.counter.peak = 0;
    guardMock.enqueue(CHAT, ...Array.from({ length: 4 }, () => slow.step));
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(4) });
    const answer = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["f", "g", "h", "i"] },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as { model: string }).model, GUARD, "served by Llama Guard: no slot held it back");
    assert.equal(slow.counter.peak, 3, "3 at a time again: every slot the first moderation took was given back");
    assert.equal(await leasesGone(3_000), 0);
  });

  test("an upstream call timing out: the attempt fails over, and every lease and slot is given back", async (t) => {
    const { gateway, guardMock, nativeMock, leasesGone } = await scene(t, 300);
    const hanging = countingCalls(1_000);
    guardMock.enqueue(CHAT, ...Array.from({ length: 3 }, () => hanging.step));
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(4) });
    const failedOver = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["a", "b", "c", "d"] },
    });
    assert.equal(failedOver.status, 200, failedOver.text);
    assert.equal((failedOver.json as { model: string }).model, "omni-moderation-latest", "the timeout failed over");
    assert.equal(await leasesGone(3_000), 0, "no lease left after the timeouts");
    // The 3 first calls timed out (no call starts after a failure): the mock's queue holds none of them.
    assert.equal(hanging.counter.peak, 3);
    const next = countingCalls(100);
    guardMock.enqueue(CHAT, ...Array.from({ length: 4 }, () => next.step));
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(4) });
    const answer = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["e", "f", "g", "h"] },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(next.counter.peak, 3, "3 at a time again after the timeouts");
  });
});
