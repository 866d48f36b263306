// A continuation's reasoning the client never gets is still its provider's output: a prefill continuation that
// reasons again before it extends the delivered text, and a replay that reasons afresh, have that reasoning dropped
// (the client keeps the first stream's), yet they generated it and were billed for it. When such a continuation
// breaks in turn without a usage report, its attempt is charged the gateway's count of that reasoning too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import {
  ANSWERS,
  type Answer,
  type CutScene,
  doubleCutOf,
  loggedRequest,
  MODEL,
  type Run,
  startCutScene,
  textOf,
} from "../helpers/cut-streams.ts";
import { send } from "../helpers/e2e.ts";

const REASONING_ANSWER = ANSWERS[1] as Answer;

/** Streams one request through the chat door; the text the client got and the request's record. */
async function streamed(scene: CutScene, run: Run, requestId: string) {
  scene.script(run);
  const response = await send(scene.gateway, "POST", "/v1/chat/completions", {
    body: { model: MODEL, stream: true, messages: [{ role: "user", content: "Think, then say hello." }] },
    headers: { "x-request-id": requestId },
  });
  assert.equal(response.status, 200, response.text);
  const content = response.text
    .split("\n")
    .filter((line) => line.startsWith("data: {"))
    .map((line) => (JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0])
    .map((choice) => choice?.delta?.content ?? "")
    .join("");
  return { content, record: await loggedRequest(scene.gateway, requestId) };
}

function betaAttempt(record: Awaited<ReturnType<typeof loggedRequest>>) {
  const attempts = record.attempts.filter((attempt) => attempt.provider === "beta" && attempt.role === "continuation");
  assert.equal(attempts.length, 1, `one continuation by beta: ${JSON.stringify(record.attempts)}`);
  return attempts[0];
}

test("a continuation that reasoned before it broke is charged that reasoning, though the client never got it", async (t) => {
  const scene = await startCutScene(t);
  const double = doubleCutOf(REASONING_ANSWER);
  assert.ok(double !== undefined);

  // Prefill: alpha breaks after two words; beta reasons again ("Where was I?"), then its connection breaks; alpha,
  // whose own connection broke, finishes the answer.
  const prefill = await streamed(
    scene,
    { answer: REASONING_ANSWER, cut: double.cut, beta: "rethink", betaCut: { cutAt: 3, how: "reset" } },
    "dropped-reasoning-prefill",
  );
  assert.equal(prefill.content, textOf(REASONING_ANSWER), "the text, exactly once");
  assert.deepEqual(
    prefill.record.continuations.map((continuation) => continuation.provider),
    ["beta", "alpha"],
    JSON.stringify(prefill.record.continuations),
  );
  assert.equal(
    betaAttempt(prefill.record)?.tokensOut,
    countTextTokens("Where was I?"),
    `beta's estimated output: ${JSON.stringify(prefill.record.attempts)}`,
  );

  // Replay: alpha breaks while it reasons (no text delivered: nothing to prefill); beta answers afresh, its reasoning
  // dropped before its first text, and breaks after three pieces of it; alpha finishes.
  const replay = await streamed(
    scene,
    { answer: REASONING_ANSWER, cut: { cutAt: 3, how: "reset" }, betaCut: { cutAt: 4, how: "reset" } },
    "dropped-reasoning-replay",
  );
  assert.equal(replay.content, textOf(REASONING_ANSWER), "the text, exactly once");
  assert.deepEqual(
    replay.record.continuations.map((continuation) => [continuation.provider, continuation.mode]),
    [
      ["beta", "replay"],
      ["alpha", "replay"],
    ],
    JSON.stringify(replay.record.continuations),
  );
  assert.equal(
    betaAttempt(replay.record)?.tokensOut,
    countTextTokens("First I think"),
    `beta's estimated output: ${JSON.stringify(replay.record.attempts)}`,
  );
});
