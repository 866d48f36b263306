// The body an attempt reserves for is the body it sends, even when the lesson "this deployment refuses
// `reasoning_content`" changes while the attempt's admission awaits (a shared ledger asks Redis): learned by a
// concurrent request whose 400 arrives first, or expiring. Before, failover.ts decided the reservation's estimate
// before the await and the body after it: the deployment's tpm was charged the estimate of one body while its
// provider was sent (and counted) another, and the client was told the estimate of the body not sent.
// The await window is made deterministic by holding the gateway's first admission until the test lets it go.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { Recorder } from "../../src/pipeline/recorder.ts";
import { CHAT_ROUTE, chatRequests } from "../helpers/e2e.ts";
import { gate } from "../helpers/gates.ts";
import { type Scene, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep, type RecordedRequest } from "../helpers/mock-upstream.ts";

const REASONING = Array.from({ length: 120 }, (_, index) => `step ${index}: check the weather tool's answer`).join(" ");
const MESSAGES = [
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: null,
    reasoning_content: REASONING,
    tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
  },
  { role: "tool", tool_call_id: "call_1", content: "sunny" },
];
const LESSON_MS = 60_000;

function sentPrompt(request: RecordedRequest): number {
  const { messages, tools } = request.body as { messages: unknown[]; tools?: unknown };
  return estimateChatPrompt(messages, tools).promptTokens;
}

function carriesReasoning(request: RecordedRequest): boolean {
  const { messages } = request.body as { messages: Record<string, unknown>[] };
  return messages.some((message) => "reasoning_content" in message);
}

const refusal: MockStep = {
  kind: "json",
  status: 400,
  body: {
    error: {
      message: "messages.1.reasoning_content: Extra inputs are not permitted",
      type: "invalid_request_error",
      param: null,
      code: null,
    },
  },
};

const ANSWER = "Sunny.";
/** The answer's part of the estimate an answer without usage is charged (the prompt sent is the rest). */
const ANSWER_TOKENS = countTextTokens(ANSWER);

/** An answer without usage: charged the gateway's estimate, which the client is told too. */
function answer(): MockStep {
  const { usage: _reported, ...body } = chatCompletion(ANSWER, "alpha-model");
  return { kind: "json", body };
}

/** Holds the gateway's next admission until `release` is called; `reached` resolves when it is being awaited. */
function holdNextAdmission(recorder: Recorder): { reached: Promise<void>; release: () => void } {
  const reached = gate();
  const released = gate();
  const admit = recorder.admit.bind(recorder);
  recorder.admit = async (...args: Parameters<Recorder["admit"]>) => {
    recorder.admit = admit;
    reached.open();
    await released.promise;
    return admit(...args);
  };
  return { reached: reached.promise, release: released.open };
}

async function startRaceScene(t: Parameters<typeof startScene>[0], clock: ManualClock): Promise<Scene> {
  return startScene(t, {
    clock,
    beta: false,
    alpha: { count_max_tokens: false },
    alphaModel: { limits: { tpm: 1_000_000 } },
    config: { cooldowns: { unsupported_feature_ms: LESSON_MS } },
  });
}

async function tokensUsed(scene: Scene): Promise<number> {
  return windowOf(await scene.stats("alpha"), "deployment:alpha/m", "tokens", "minute").used;
}

function promptTokensOf(text: string): number | undefined {
  return (JSON.parse(text) as { usage?: { prompt_tokens?: number } }).usage?.prompt_tokens;
}

test("a refusal learned by a concurrent request during the admission: charged what was sent", async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const scene = await startRaceScene(t, clock);
  // The host refuses the field whenever it is sent, and answers a body without it.
  scene.alpha.setDefault(CHAT_ROUTE, (request) => (carriesReasoning(request) ? refusal : answer()));
  const hold = holdNextAdmission(scene.gateway.runtime.recorder);
  const first = scene.chat({ messages: MESSAGES });
  await hold.reached;
  // Meanwhile another request teaches the gateway that alpha refuses the field (a 400, then its retry without it).
  const other = await scene.chat({ messages: MESSAGES });
  assert.equal(other.status, 200, other.text);
  const learned = (await scene.stats("alpha")) as unknown as { refused_features?: { feature: string }[] };
  assert.deepEqual(
    learned.refused_features?.map((entry) => entry.feature),
    ["message_order:reasoning_content"],
  );
  const usedBefore = await tokensUsed(scene);
  const seenBefore = chatRequests(scene.alpha).length;
  hold.release();
  const response = await first;
  assert.equal(response.status, 200, response.text);
  const sent = chatRequests(scene.alpha).slice(seenBefore);
  const answered = sent.at(-1);
  assert.ok(answered !== undefined && !carriesReasoning(answered), "answered without the reasoning");
  // Whatever was sent first, the attempt that stayed charged reserved the estimate of the body it sent.
  assert.equal((await tokensUsed(scene)) - usedBefore, sentPrompt(answered) + ANSWER_TOKENS, "charged the body sent");
  assert.equal(promptTokensOf(response.text), sentPrompt(answered), "the estimate the client is told");
});

test("a refusal expiring during the admission: charged what was sent, the reasoning included", async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const scene = await startRaceScene(t, clock);
  scene.alpha.enqueue(CHAT_ROUTE, refusal, answer());
  assert.equal((await scene.chat({ messages: MESSAGES })).status, 200);
  assert.equal(chatRequests(scene.alpha).length, 2, "learned, then answered without the field");
  // From now on the host takes the field (it was a passing refusal).
  scene.alpha.setDefault(CHAT_ROUTE, answer());
  const hold = holdNextAdmission(scene.gateway.runtime.recorder);
  const pending = scene.chat({ messages: MESSAGES });
  await hold.reached;
  // The lesson runs out while the admission awaits; the minute window of the first request is over too.
  clock.advance(LESSON_MS + 1);
  assert.equal(await tokensUsed(scene), 0);
  hold.release();
  const response = await pending;
  assert.equal(response.status, 200, response.text);
  const sent = chatRequests(scene.alpha)[2];
  assert.ok(sent !== undefined);
  assert.equal(chatRequests(scene.alpha).length, 3, "one attempt");
  assert.equal(await tokensUsed(scene), sentPrompt(sent) + ANSWER_TOKENS, "charged the body sent");
  assert.equal(promptTokensOf(response.text), sentPrompt(sent), "the estimate the client is told");
});
