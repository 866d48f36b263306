// A Llama Guard moderation (one chat call per input, each wrapped by the model's chat template in Llama Guard's task:
// LLAMA_GUARD_TEMPLATE_TOKENS) as its client's budget and the deployment's calibration count it. A host that answers
// without usage billed each call's input and template: the client is charged the calls' estimate, template included,
// as the deployment's reservation counted it (until 2026-12-07 the client was charged its input text alone). A context-
// length refusal is one call's: the calibration learns that call's prompt against the window, not the sum of every
// input's (which made a refusal of one long input among several teach a lower factor, or none).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SAFETY_MARGIN } from "../../src/limits/prompt-calibration.ts";
import { countTextTokens, estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { LLAMA_GUARD_MAX_TOKENS, LLAMA_GUARD_TEMPLATE_TOKENS } from "../../src/providers/moderation-api.ts";
import { serverWithKeys } from "../helpers/batches-scene.ts";
import { send, statsOf } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { chatCalls, GUARD, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";
const CLIENT_KEY = "sk-moderating-client";
const OPS_KEY = "sk-ops";
const INPUTS = ["a short first input", "a second input, somewhat longer than the first one"];

/** The token window of the named client `moderator`, as /stats shows it to an unnamed key. */
async function clientTokensUsed(gateway: Parameters<typeof send>[0]): Promise<number | undefined> {
  const response = await send(gateway, "GET", "/stats", { headers: { authorization: `Bearer ${OPS_KEY}` } });
  const clients = (response.json as { clients?: Record<string, { budgets: { unit: string; used: number }[] }> })
    .clients;
  return clients?.moderator?.budgets.find((window) => window.unit === "tokens")?.used;
}

test("a Llama Guard host answering without usage: the client is charged each call's input and template, as the deployment", async (t) => {
  const { gateway, guardMock } = await guardScene(t, {
    state: serverWithKeys(`{ key: ${CLIENT_KEY}, name: moderator, limits: { tpm: 1000000 } }`, OPS_KEY),
  });
  const { usage: _none, ...safe } = chatCompletion("safe", GUARD);
  guardMock.enqueue(CHAT, { kind: "json", body: safe }, { kind: "json", body: safe });
  const answer = await send(gateway, "POST", "/v1/moderations", {
    body: { model: "guard", input: INPUTS },
    headers: { authorization: `Bearer ${CLIENT_KEY}` },
  });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(chatCalls(guardMock), 2);
  const prompts = INPUTS.reduce((sum, input) => sum + estimateTextInputs(input).total + LLAMA_GUARD_TEMPLATE_TOKENS, 0);
  const expected = prompts + INPUTS.length * countTextTokens("safe");
  let used = await clientTokensUsed(gateway);
  for (let tries = 0; tries < 100 && used !== expected; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    used = await clientTokensUsed(gateway);
  }
  // Before: the inputs' text alone (the client's reservation), each call's 338-token template left out.
  assert.equal(used, expected, "the client's charge: the calls' prompts, templates included, and their verdicts");
  const ops = { headers: { authorization: `Bearer ${OPS_KEY}` } };
  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", ops)).text);
  const estimated = { provider: "p0", source: "estimated" };
  assert.equal(sumOf(metrics, "llm_gateway_tokens_total", estimated), expected, "the deployment's tokens, estimated");
});

test("a context-length refusal of one Llama Guard call among several: the calibration learns that call's prompt", async (t) => {
  const context = 2000;
  const { gateway, guardMock, nativeMock } = await guardScene(t, {
    guardExtra: `, context: ${context}, limits: { concurrency: 1 }`,
  });
  // The long input first (one call at a time): its call, refused, ends the attempt; the native model answers.
  const long = "word ".repeat(1200);
  const callPrompt = estimateTextInputs(long).total + LLAMA_GUARD_TEMPLATE_TOKENS;
  assert.ok(callPrompt + LLAMA_GUARD_MAX_TOKENS <= context, "the call fits the window by the estimate");
  const refusal = {
    error: {
      message: `This model's maximum context length is ${context} tokens. However, you requested ${context + 200} tokens.`,
      type: "invalid_request_error",
      code: "context_length_exceeded",
    },
  };
  guardMock.enqueue(CHAT, { kind: "json", status: 400, body: refusal });
  nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(3) });
  const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: [long, "a", "b"] } });
  assert.equal(answer.status, 200, answer.text);
  assert.equal((answer.json as { model: string }).model, "omni-moderation-latest");
  assert.equal(chatCalls(guardMock), 1);
  const row = (await statsOf(gateway)).get("p0/guard") as unknown as { prompt_token_factor: number };
  // The refused call's prompt was more than its window less its own max_tokens (64, not the three calls' 192).
  const learned = ((context - LLAMA_GUARD_MAX_TOKENS) / callPrompt) * SAFETY_MARGIN;
  // Before: the three calls' prompts summed against the window less 192 tokens: nothing learned (factor 1).
  assert.equal(row.prompt_token_factor, learned);
});
