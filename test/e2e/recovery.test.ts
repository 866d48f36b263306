// Recovery on evidence (docs/routing.md "Recovery"): a failed candidate is probed with real traffic, one request
// at a time, at a bounded pace, and is back in its ranked place as soon as a probe succeeds. Real time, real
// sockets: alpha (preferred, only a few points ahead, so that a health penalty alone would reorder them) and beta.
import assert from "node:assert/strict";
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { ManualClock } from "../../src/clock.ts";
import { HELLO, send } from "../helpers/e2e.ts";
import { assertServedBy, MODEL, type Scene, startScene } from "../helpers/limits-scene.ts";
import {
  chatChunk,
  chatCompletion,
  chatStream,
  type MockStep,
  type RecordedRequest,
  rateLimited,
} from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const START_MS = Date.UTC(2026, 0, 1, 12);

const UNAVAILABLE: MockStep = {
  kind: "json",
  status: 503,
  body: { error: { message: "overloaded", type: "server_error", code: null, param: null } },
};

/** alpha a few points ahead of beta; five failures open its circuit; a suspect's probe is due 2 s after a failure. */
async function suspectScene(t: TestContext): Promise<{ clock: ManualClock; scene: Scene }> {
  const clock = new ManualClock(START_MS);
  const scene = await startScene(t, {
    clock,
    alphaModel: { priority: 5 },
    config: { cooldowns: { failure_threshold: 5, circuit_first_probe_ms: 2_000 } },
  });
  scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
  return { clock, scene };
}

describe("recovery on evidence", () => {
  test("a primary down for 4 s serves again within 6 s of recovering, one attempt in flight at a time", async (t) => {
    // Default cooldowns: first probe 2 s after the circuit opens, then 4 s, 8 s, ... up to 30 s.
    const scene = await startScene(t, { alphaModel: { priority: 5 } });
    const startedAtMs = Date.now();
    const outageStartMs = startedAtMs + 800;
    const outageEndMs = outageStartMs + 4_000;
    let inFlight = 0;
    let maxInFlightAfterFirstFailure = 0;
    let firstFailureSentAtMs: number | undefined;
    scene.alpha.setDefault(CHAT_ROUTE, (request: RecordedRequest) => ({
      kind: "handler",
      handle: async (_recorded, response: ServerResponse) => {
        const isOutage = request.receivedAtMs >= outageStartMs && request.receivedAtMs < outageEndMs;
        // Only attempts the gateway sent during the outage after it could know of it count (250 ms to read and
        // record a failure on a busy CI machine); once alpha has recovered, concurrent requests are welcome again.
        // An attempt sent before that and still out does count as in flight: nothing may join it.
        const isCounted =
          isOutage && firstFailureSentAtMs !== undefined && request.receivedAtMs > firstFailureSentAtMs + 250;
        inFlight += 1;
        if (isCounted) maxInFlightAfterFirstFailure = Math.max(maxInFlightAfterFirstFailure, inFlight);
        await sleep(60);
        inFlight -= 1;
        const step = isOutage ? UNAVAILABLE : { body: chatCompletion("from alpha", "alpha-model"), status: 200 };
        if (isOutage) firstFailureSentAtMs ??= Date.now();
        response.writeHead(step.status ?? 200, { "content-type": "application/json" });
        response.end(JSON.stringify(step.body));
      },
    }));
    scene.beta.setDefault(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("from beta", "beta-model"),
      delayMs: 30,
    });

    let recoveredAtMs: number | undefined;
    let failures = 0;
    // Room for a loaded machine (a probe that failed late waits the next step of the ladder, 8 s): a gateway that never
    // tries alpha again, or only at the ladder's 30 s top, still fails.
    const deadlineMs = outageEndMs + 16_000;
    const worker = async (): Promise<void> => {
      while (recoveredAtMs === undefined && Date.now() < deadlineMs) {
        const response = await scene.chat();
        if (response.status !== 200) failures += 1;
        if (Date.now() >= outageEndMs && response.headers["x-gateway-provider"] === "alpha") {
          recoveredAtMs ??= Date.now();
        }
        await sleep(40);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);

    assert.equal(failures, 0, "every request was served (beta covers the outage)");
    assert.ok(firstFailureSentAtMs !== undefined, "the outage was seen");
    assert.ok(recoveredAtMs !== undefined, "alpha never served again after it recovered");
    const recoveryMs = recoveredAtMs - outageEndMs;
    assert.ok(recoveryMs <= 14_000, `alpha served again ${recoveryMs} ms after recovering`);
    assert.equal(maxInFlightAfterFirstFailure, 1, "at most one alpha attempt in flight once a failure was seen");
    const outageAttempts = scene.alpha.requests.filter(
      (request) => request.receivedAtMs >= outageStartMs && request.receivedAtMs < outageEndMs,
    ).length;
    // Before the circuit opens a few probes, then one after 2 s and one after 4 s more: a bounded pace.
    assert.ok(outageAttempts <= 8, `${outageAttempts} attempts hit alpha during its 4 s outage`);
  });

  test("while the circuit is open or its probe is out, requests go to the fallback at once: a failing candidate is not waited for", async (t) => {
    // A long max_wait_for_better_ms: a candidate cooling after a 429 would be waited for (20 s), a failing one not.
    const scene = await startScene(t, {
      alphaModel: { priority: 5 },
      config: { routing: { max_wait_for_better_ms: 20_000 } },
    });
    scene.alpha.setDefault(CHAT_ROUTE, { ...UNAVAILABLE, delayMs: 150 });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
    const slowest: number[] = [];
    const until = Date.now() + 3_500;
    while (Date.now() < until) {
      const startedAtMs = performance.now();
      const answer = await scene.chat();
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers["x-gateway-provider"], "beta");
      slowest.push(performance.now() - startedAtMs);
      await sleep(80);
    }
    slowest.sort((a, b) => b - a);
    // A probe's own attempt (150 ms, then beta) is the slowest a request may be; waiting for the probe was the whole
    // max_wait_for_better_ms (20 s): a quarter of it is room for a loaded machine.
    assert.ok(
      (slowest[0] ?? 0) < 5_000,
      `the slowest requests took ${slowest.slice(0, 3).map(Math.round).join(", ")} ms`,
    );
    assert.ok(scene.alpha.requests.length >= 2, "alpha was probed again while failing");
  });

  test("after a successful half-open probe the next request goes to the recovered higher-ranked candidate", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alphaModel: { priority: 5 },
      config: { cooldowns: { failure_threshold: 3, circuit_first_probe_ms: 300, circuit_open_ms: 1_000 } },
    });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
    // Warm alpha's health with successes, then three failures open its circuit.
    for (let index = 0; index < 3; index++) assertServedBy(await scene.chat(), "alpha");
    scene.alpha.enqueue(CHAT_ROUTE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE);
    assertServedBy(await scene.chat(), "beta", 2);
    // Suspect, and a 10-point health penalty on a 4-point lead: one attempt at a time, still ranked first.
    assertServedBy(await scene.chat(), "beta", 2);
    assertServedBy(await scene.chat(), "beta", 2);
    assert.equal((await scene.stats("alpha")).circuit, "open");
    assertServedBy(await scene.chat(), "beta", 1);
    clock.advance(300);
    // Half-open: alpha's failures are what the probe is to find out about, so it is ranked in its place.
    assert.equal((await scene.stats("alpha")).circuit, "half_open");
    assertServedBy(await scene.chat(), "alpha");
    assert.equal((await scene.stats("alpha")).circuit, "closed");
    // The success after the failures restores alpha's score: the next requests go to it, not to beta.
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "alpha");
  });

  test("a suspect candidate sinks below its fallback only until its probe is due", async (t) => {
    const { clock, scene } = await suspectScene(t);
    scene.alpha.enqueue(CHAT_ROUTE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE);
    for (let index = 0; index < 4; index++) {
      // Each failure after the first is a probe that came due 2 s after the one before.
      if (index > 0) clock.advance(2_000);
      assertServedBy(await scene.chat(), "beta", 2);
    }
    // Four failures in a row, circuit still closed: the health penalty ranks alpha below beta...
    assertServedBy(await scene.chat(), "beta", 1);
    assert.equal(scene.counts().alpha, 4);
    // ...but only until its probe is due: then it is tried in its place, and its success restores it.
    clock.advance(2_000);
    assertServedBy(await scene.chat(), "alpha");
    assertServedBy(await scene.chat(), "alpha");
  });

  test("a stream that opened does not hold a suspect's one slot for as long as it runs", async (t) => {
    const { clock, scene } = await suspectScene(t);
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: chatChunk("Hi", "alpha-model", { role: true }) }],
      end: "hang",
    });
    const controller = new AbortController();
    t.after(() => controller.abort());
    const stream = await request(`${scene.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: HELLO, stream: true }),
      signal: controller.signal,
    });
    stream.body.on("error", () => {}); // aborted at the end of the test
    assert.equal(stream.headers["x-gateway-provider"], "alpha");
    await once(stream.body, "data");
    // An opened stream is no longer an attempt in flight (its evidence is in).
    const streaming = await scene.stats("alpha");
    assert.deepEqual([streaming.suspect, streaming.attempts_in_flight], [false, 0]);
    // While that stream runs on, another request to alpha fails: alpha is suspect.
    scene.alpha.enqueue(CHAT_ROUTE, UNAVAILABLE);
    assertServedBy(await scene.chat(), "beta", 2);
    const suspect = await scene.stats("alpha");
    assert.deepEqual([suspect.circuit, suspect.suspect, suspect.attempts_in_flight], ["closed", true, 0]);
    // Its probe is due: it goes to alpha, though the stream opened before the failure is still running.
    clock.advance(2_000);
    assertServedBy(await scene.chat(), "alpha");
  });

  test("every way an attempt ends hands its slot back: after all of them, a suspect's probe still goes through", async (t) => {
    // An attempt counted in flight and never uncounted would keep alpha a last resort after its next failure.
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alpha: { timeout_ms: 300 },
      alphaModel: { priority: 5 },
      config: { cooldowns: { failure_threshold: 100, circuit_first_probe_ms: 2_000 } },
    });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
    let alphaCalls = 0;
    const alphaTakes = async (step: MockStep, send: () => Promise<unknown>): Promise<void> => {
      // Due for its probe (or healthy): alpha is tried first.
      clock.advance(2_000);
      scene.alpha.enqueue(CHAT_ROUTE, step);
      await send();
      alphaCalls += 1;
      assert.equal(scene.counts().alpha, alphaCalls, `alpha was not tried for a ${step.kind} step`);
      await waitUntil(() => scene.alpha.activeRequests() === 0, "alpha's call is over");
    };
    await alphaTakes(UNAVAILABLE, () => scene.chat());
    await alphaTakes({ kind: "reset" }, () => scene.chat());
    await alphaTakes({ kind: "hang" }, () => scene.chat()); // timeout_ms
    await alphaTakes(rateLimited({ retryAfter: "1" }), () => scene.chat());
    // Cut mid-answer (a cut after the finish chunk loses nothing and is a success), inside a tool call, which is
    // not continued: the cut is alpha's failure and nobody else is asked.
    const toolCallChunk = {
      ...chatChunk("", "alpha-model"),
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "{" } }],
          },
          logprobs: null,
          finish_reason: null,
        },
      ],
    };
    const cut: MockStep = {
      kind: "sse",
      events: [...chatStream([], "alpha-model").slice(0, 1), { data: toolCallChunk }],
      end: "destroy",
    };
    await alphaTakes(cut, () => scene.chat({ stream: true }));
    await alphaTakes({ kind: "hang" }, async () => {
      // The client leaves while alpha has not answered.
      const controller = new AbortController();
      const pending = request(`${scene.gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: HELLO }),
        signal: controller.signal,
      }).catch(() => undefined);
      await waitUntil(() => scene.alpha.activeRequests() === 1, "alpha has the request");
      assert.equal((await scene.stats("alpha")).attempts_in_flight, 1);
      // Suspect (the cut stream before) with an attempt out: the route explanation ranks it last, and says why.
      const route = await send(scene.gateway, "GET", `/v1/gateway/route?model=${MODEL}`);
      const candidates = (route.json as { candidates: { provider: string; last_resort: boolean }[] }).candidates;
      assert.deepEqual(
        candidates.map((candidate) => [candidate.provider, candidate.last_resort]),
        [
          ["beta", false],
          ["alpha", true],
        ],
      );
      controller.abort();
      await pending;
    });
    await alphaTakes({ kind: "sse", events: chatStream(["whole"], "alpha-model") }, () => scene.chat({ stream: true }));
    await alphaTakes({ kind: "json", body: chatCompletion("from alpha", "alpha-model") }, () => scene.chat());
    // Now one failure makes alpha suspect, and once its probe is due it goes to alpha again.
    await alphaTakes(UNAVAILABLE, () => scene.chat());
    clock.advance(2_000);
    assertServedBy(await scene.chat(), "alpha");
    const healed = await scene.stats("alpha");
    assert.deepEqual([healed.suspect, healed.attempts_in_flight], [false, 0]);
  });

  test("a flapping candidate (its circuit opens again soon after each successful probe) is probed ever less often", async (t) => {
    // Default cooldowns: 3 failures in 60 s open the circuit, first probe after 2 s, doubling to 30 s. alpha answers
    // 503, 503, 503, 200 over and over: each probe succeeds, and the next three requests fail again.
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, alphaModel: { priority: 5 } });
    let alphaCalls = 0;
    let isHealed = false;
    const probeAnsweredAtS: number[] = [];
    scene.alpha.setDefault(CHAT_ROUTE, () => {
      alphaCalls += 1;
      if (isHealed) return { kind: "json", body: chatCompletion("from alpha", "alpha-model") };
      if (alphaCalls % 4 !== 0) return UNAVAILABLE;
      probeAnsweredAtS.push((clock.now() - START_MS) / 1000);
      return { kind: "json", body: chatCompletion("from alpha", "alpha-model") };
    });
    scene.beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-model") });
    for (let second = 0; second < 60; second++) {
      const answer = await scene.chat();
      assert.equal(answer.status, 200, answer.text);
      clock.advance(1_000);
    }
    // Open at 2 s (3rd failure) for 2 s; it reopens at 7 s within failure_window_ms of its recovery at 4 s: 4 s,
    // then 8 s, 16 s. Starting over at 2 s each time sent alpha 48 of the 60 requests, 36 of them to fail.
    assert.deepEqual(probeAnsweredAtS, [4, 11, 22, 41]);
    assert.equal(alphaCalls, 19);
    assert.equal((await scene.stats("alpha")).circuit, "open");

    // It heals: the probe due at 74 s succeeds and alpha serves in its place. Once it has stayed healthy for
    // failure_window_ms (60 s), a new outage is a new story: its first pause is circuit_first_probe_ms again.
    isHealed = true;
    clock.set(START_MS + 74_000);
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(60_000);
    assertServedBy(await scene.chat(), "alpha");
    scene.alpha.enqueue(CHAT_ROUTE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE);
    for (let index = 0; index < 3; index++) assert.equal((await scene.chat()).headers["x-gateway-provider"], "beta");
    clock.advance(1_999);
    assertServedBy(await scene.chat(), "beta");
    clock.advance(1);
    assertServedBy(await scene.chat(), "alpha");
  });
});
