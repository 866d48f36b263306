// Concurrency slots and streams: a stream holds its candidate's slot for its whole life (a `concurrency: 1`
// candidate is skipped while the stream is open) and gives it back on every way a stream can end: a normal
// end, the upstream cutting the connection mid-stream, and the client going away. /stats `in_flight` shows it.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "undici";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { assertServedBy, type Scene, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { postJson, readTimed } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

async function inFlight(scene: Scene): Promise<number> {
  const row = await scene.stats("alpha");
  return row.budgets.reduce((sum, budget) => sum + budget.in_flight, 0);
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

async function streamingScene(t: TestContext) {
  const scene = await startScene(t, {
    alpha: { limits: { concurrency: 5 } },
    alphaModel: { limits: { concurrency: 1 } },
  });
  const agent = new Agent();
  t.after(() => agent.destroy());
  const openStream = (signal?: AbortSignal) =>
    postJson(
      `${scene.gateway.baseUrl}/chat/completions`,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      signal === undefined ? { dispatcher: agent } : { dispatcher: agent, signal },
    );
  return { scene, openStream };
}

/**
 * A stream that sends its first words, then waits `holdMs` before ending as `end` says. A cut ("destroy") comes
 * before the finish chunk: a connection that breaks after it lost nothing and ends the answer normally.
 */
function slowStream(holdMs: number, end: "done" | "destroy" | "hang"): MockStep {
  const rest = chatStream([" three"], "alpha-model").slice(1);
  return {
    kind: "sse",
    events: [
      ...chatStream(["one", " two"], "alpha-model").slice(0, 3),
      { delayMs: holdMs },
      ...(end === "destroy" ? rest.slice(0, 1) : rest),
    ],
    end,
  };
}

/** While the stream is open, alpha's slot is taken: a second request goes to beta without touching alpha. */
async function assertSlotHeld(scene: Scene): Promise<void> {
  assert.equal(await inFlight(scene), 2, "the provider pool and the deployment each hold one slot");
  assertServedBy(await scene.chat(), "beta", 1);
  assert.equal(scene.counts().alpha, 1);
}

describe("a stream holds its concurrency slot for its whole life", () => {
  test("normal end: held while open, released after [DONE]", async (t) => {
    const { scene, openStream } = await streamingScene(t);
    // The hold only has to outlast assertSlotHeld (a /stats read and a chat to beta): 2 s leaves room on a loaded
    // machine, where 400 ms ran out before the read once.
    scene.alpha.enqueue(CHAT_ROUTE, slowStream(2_000, "done"));
    const answer = await openStream();
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers["x-gateway-provider"], "alpha");
    await assertSlotHeld(scene);
    const { text } = await readTimed(answer.body);
    assert.match(text, /data: \[DONE\]\n\n$/);
    await eventually(async () => (await inFlight(scene)) === 0, "in_flight back to 0");
    assertServedBy(await scene.chat(), "alpha");
  });

  test("the upstream cuts the connection mid-stream: the slot is released", async (t) => {
    const { scene, openStream } = await streamingScene(t);
    scene.alpha.enqueue(CHAT_ROUTE, slowStream(2_000, "destroy"));
    const answer = await openStream();
    assert.equal(answer.statusCode, 200);
    await assertSlotHeld(scene);
    const { text } = await readTimed(answer.body);
    // Cut mid-answer: beta continues it (its echo after alpha's three words), so the client's answer is whole.
    assert.match(text, /"content":" three"/);
    assert.match(text, /"continuation":\{"provider":"beta"/);
    assert.match(text, /data: \[DONE\]\n\n$/);
    await eventually(async () => (await inFlight(scene)) === 0, "in_flight back to 0");
    assertServedBy(await scene.chat(), "alpha");
  });

  test("the client goes away mid-stream: the slot is released and the upstream call aborted", async (t) => {
    const { scene, openStream } = await streamingScene(t);
    scene.alpha.enqueue(CHAT_ROUTE, slowStream(10_000, "hang"));
    const controller = new AbortController();
    const answer = await openStream(controller.signal);
    assert.equal(answer.statusCode, 200);
    const firstChunk = await answer.body[Symbol.asyncIterator]().next();
    assert.equal(firstChunk.done, false);
    await assertSlotHeld(scene);
    controller.abort();
    await eventually(async () => (await inFlight(scene)) === 0, "in_flight back to 0 after the client left");
    await eventually(async () => scene.alpha.activeRequests() === 0, "the upstream request aborted");
    assertServedBy(await scene.chat(), "alpha");
  });

  test("many streams in a row never leak a slot", async (t) => {
    const { scene, openStream } = await streamingScene(t);
    for (let index = 0; index < 5; index++) {
      const answer = await openStream();
      assert.equal(answer.headers["x-gateway-provider"], "alpha", `stream ${index} was not served by alpha`);
      await readTimed(answer.body);
      await eventually(async () => (await inFlight(scene)) === 0, `in_flight back to 0 after stream ${index}`);
    }
    assert.equal(scene.counts().beta, 0);
  });
});

describe("a broken stream's tokens", () => {
  test("cut and not continued, without a usage report: charged the prompt and the delivered text, not the prompt alone", async (t) => {
    // No max_tokens: the estimate is the prompt alone, yet the provider generated (and counted) what was delivered.
    const scene = await startScene(t, { alphaModel: { limits: { tpm: 1_000_000 } }, beta: false });
    const words = Array.from({ length: 200 }, (_, index) => ` word${index}`);
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(words, "alpha-model", { usage: false }).slice(0, 1 + words.length),
      end: "destroy",
    });
    // The only candidate, asked to continue its own cut stream, fails: nothing continues it.
    scene.alpha.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    const answer = await postJson(`${scene.gateway.baseUrl}/chat/completions`, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(answer.statusCode, 200);
    const { text } = await readTimed(answer.body);
    assert.match(text, /stream_interrupted/);
    const charged = windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute").used;
    const prompt = estimateChatPrompt([{ role: "user", content: "hi" }], undefined).promptTokens;
    assert.equal(charged, prompt + countTextTokens(words.join("")));
  });
});
