// The circuit breaker over HTTP: three upstream 500s open alpha's circuit, after which requests skip it
// without an upstream request; after `cooldowns.circuit_open_ms` exactly one probe goes through; a successful
// probe closes the circuit, a failed one opens it again. A manual clock drives the open interval.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { assertServedBy, type Scene, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const START_MS = Date.UTC(2026, 0, 1, 12);
const CIRCUIT_OPEN_MS = 250;

const SERVER_ERROR: MockStep = {
  kind: "json",
  status: 500,
  body: { error: { message: "internal error", type: "server_error", code: null, param: null } },
};

async function sceneWithOpenCircuit(t: Parameters<typeof startScene>[0], clock: ManualClock): Promise<Scene> {
  const scene = await startScene(t, {
    clock,
    config: { cooldowns: { failure_threshold: 3, failure_window_ms: 10_000, circuit_open_ms: CIRCUIT_OPEN_MS } },
  });
  scene.alpha.enqueue(CHAT_ROUTE, SERVER_ERROR, SERVER_ERROR, SERVER_ERROR);
  for (let index = 0; index < 3; index++) {
    assert.equal((await scene.stats("alpha")).circuit, "closed");
    assertServedBy(await scene.chat(), "beta", 2);
    clock.advance(100);
  }
  assert.equal((await scene.stats("alpha")).circuit, "open");
  return scene;
}

describe("circuit breaker", () => {
  test("3 upstream 500s open it: requests skip alpha without an upstream request", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await sceneWithOpenCircuit(t, clock);
    for (let index = 0; index < 3; index++) assertServedBy(await scene.chat(), "beta", 1);
    assert.deepEqual(scene.counts(), { alpha: 3, beta: 6 });
    const row = await scene.stats("alpha");
    assert.equal(row.failures, 3);
    assert.equal(row.cooldown, null, "an open circuit is not a cooldown");
    const health = await scene.health();
    assert.equal(health.deployments.find((entry) => entry.key === "alpha/m")?.circuit, "open");
    assert.equal(health.providers.cooling[0]?.name, "alpha");
  });

  test("after circuit_open_ms one probe goes through; its success closes the circuit", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await sceneWithOpenCircuit(t, clock);
    // The third failure was at START + 200 ms; the circuit stays open until START + 200 + CIRCUIT_OPEN_MS.
    clock.set(START_MS + 200 + CIRCUIT_OPEN_MS - 1);
    assertServedBy(await scene.chat(), "beta", 1);
    clock.advance(1);
    assert.equal((await scene.stats("alpha")).circuit, "half_open");
    assertServedBy(await scene.chat(), "alpha");
    assert.equal((await scene.stats("alpha")).circuit, "closed");
    assertServedBy(await scene.chat(), "alpha");
    assert.equal(scene.counts().alpha, 5);
  });

  test("half-open lets exactly one probe through while it is in flight", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await sceneWithOpenCircuit(t, clock);
    clock.advance(CIRCUIT_OPEN_MS);
    scene.alpha.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("probe", "alpha-model"), delayMs: 300 });
    const probe = scene.chat();
    await scene.alpha.waitForRequests(scene.alpha.requests.length + 1);
    // While the probe is out, every other request goes elsewhere.
    assertServedBy(await scene.chat(), "beta", 1);
    assertServedBy(await scene.chat(), "beta", 1);
    assertServedBy(await probe, "alpha");
    assert.equal(scene.counts().alpha, 4);
    assert.equal((await scene.stats("alpha")).circuit, "closed");
  });

  test("a failed probe opens the circuit again for another circuit_open_ms", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await sceneWithOpenCircuit(t, clock);
    clock.advance(CIRCUIT_OPEN_MS);
    scene.alpha.enqueue(CHAT_ROUTE, SERVER_ERROR);
    assertServedBy(await scene.chat(), "beta", 2);
    assert.equal((await scene.stats("alpha")).circuit, "open");
    assertServedBy(await scene.chat(), "beta", 1);
    assert.equal(scene.counts().alpha, 4);

    clock.advance(CIRCUIT_OPEN_MS);
    assertServedBy(await scene.chat(), "alpha");
    assert.equal((await scene.stats("alpha")).circuit, "closed");
  });

  test("failures further apart than failure_window_ms never open it", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      config: { cooldowns: { failure_threshold: 3, failure_window_ms: 1_000, circuit_open_ms: CIRCUIT_OPEN_MS } },
    });
    for (let index = 0; index < 4; index++) {
      scene.alpha.enqueue(CHAT_ROUTE, SERVER_ERROR);
      assertServedBy(await scene.chat(), "beta", 2);
      clock.advance(600);
    }
    assert.equal((await scene.stats("alpha")).circuit, "closed");
    assertServedBy(await scene.chat(), "alpha");
  });
});
