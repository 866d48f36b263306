// What a Llama Guard moderation (one chat call per input) stays charged when one of its calls fails: per call, as its
// provider counts them. A call that answered: its reported usage (or, without a report, its prompt); a call sent and
// abandoned before an answer (`timeout_ms`): its prompt, which its provider took in; a call never sent: nothing. Until
// 2026-12-07 the attempt was charged once, as a whole: the answered calls' usage alone when any reported one (the
// abandoned call's prompt left out), else the prompt of every input, the calls never sent included.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { LLAMA_GUARD_TEMPLATE_TOKENS } from "../../src/providers/moderation-api.ts";
import { rowOf, send, statsOf } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";
import { GUARD, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";
/** Three inputs of distinct lengths, so that which calls are counted shows in the sum. */
const INPUTS = ["a short first input", "a second input, somewhat longer than the first one", "third ".repeat(60)];
/** Each call's prompt: its input and the template the model wraps it in, which its provider counts too. */
const PROMPTS = INPUTS.map((input) => estimateTextInputs(input).total + LLAMA_GUARD_TEMPLATE_TOKENS);

/** p0's Llama Guard makes one call at a time and times out at 300 ms; p1's native model answers the moderation. */
async function moderate(t: TestContext, first: MockStep): Promise<number> {
  const { gateway, guardMock, nativeMock } = await guardScene(t, {
    guardExtra: ", limits: { tpm: 1000000, concurrency: 1 }",
    providerExtra: "    timeout_ms: 300\n",
  });
  // The second call hangs until `timeout_ms`: sent, and abandoned before an answer; the third is never sent.
  guardMock.enqueue(CHAT, first, { kind: "hang" });
  nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(INPUTS.length) });
  const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: INPUTS } });
  assert.equal(answer.status, 200, answer.text);
  assert.equal((answer.json as { model: string }).model, "omni-moderation-latest");
  assert.equal(guardMock.requests.length, 2, "the third call is never sent");
  const row = rowOf(await statsOf(gateway), "p0/guard") as unknown as DeploymentView;
  return windowOf(row, "deployment:p0/guard", "tokens", "minute").used;
}

describe("a Llama Guard moderation's charge when a call fails", () => {
  test("the first call reported its usage, the second timed out after the send: its usage plus the second's prompt", async (t) => {
    const answered = chatCompletion("safe", GUARD, { prompt_tokens: 40, completion_tokens: 2 });
    // Before: 42, the second call's prompt (which its provider took in) left out.
    assert.equal(await moderate(t, { kind: "json", body: answered }), 42 + (PROMPTS[1] ?? 0));
  });

  test("no call reported usage: the prompts of the two calls sent, not of the third never sent", async (t) => {
    const answered = { ...chatCompletion("safe", GUARD), usage: undefined };
    // Before: every input's prompt, the third's included.
    assert.equal(await moderate(t, { kind: "json", body: answered }), (PROMPTS[0] ?? 0) + (PROMPTS[1] ?? 0));
  });
});
