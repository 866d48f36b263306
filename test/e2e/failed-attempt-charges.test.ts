// What a failed attempt stays charged to its deployment's token budget (errors/outcomes.ts hasProviderCountedPrompt):
// its prompt when the request went out and its provider took it in without refusing it (the client left while it was
// being answered, `timeout_ms` ran out, a 200 stream broke before its first content), nothing when the provider
// refused it with an answer (a 429, a 5xx). Until 2026-12-07 every failed attempt was charged 0, as if it had never
// been sent: the budget admitted more than the provider, which had counted the prompt, would.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, send, statsOf } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatChunk, chatStream, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Name three rivers of Europe, one line each." }];
const PROMPT = estimateChatPrompt(MESSAGES, undefined).promptTokens;
const BUDGET = { limits: { tpm: 1_000_000 } };
/** Far above the prompt: a charge that kept the reservation would show it. */
const MAX_TOKENS = 500;

/** Alpha's tokens in its tpm window. */
async function alphaTokens(scene: TwoProviders): Promise<number> {
  const row = (await statsOf(scene.gateway)).get(`alpha/${MODEL}`);
  return windowOf(row as unknown as DeploymentView, `deployment:alpha/${MODEL}`, "tokens", "minute").used;
}

async function askStreaming(scene: TwoProviders): Promise<string> {
  const stream = await scene.client.chat.completions.create({
    model: MODEL,
    messages: MESSAGES,
    stream: true,
    max_tokens: MAX_TOKENS,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

/** Alpha's tokens once they are `expected` (a charge is settled as the attempt's end is recorded), or as they are then. */
async function alphaTokensSettled(scene: TwoProviders, expected: number): Promise<number> {
  let used = await alphaTokens(scene);
  for (let tries = 0; tries < 100 && used !== expected; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    used = await alphaTokens(scene);
  }
  return used;
}

/** Alpha fails with `step`, beta answers: alpha's charge once the request ended. */
async function alphaChargeAfter(
  t: TestContext,
  step: MockStep,
  expected: number,
  primary: Record<string, number> = {},
): Promise<number> {
  const scene = await startTwoProviders(t, { primaryModel: BUDGET, primary });
  scene.primary.enqueue(CHAT_ROUTE, step);
  scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([" Rhine"], MODEL) });
  assert.equal(await askStreaming(scene), " Rhine");
  return await alphaTokensSettled(scene, expected);
}

const ROLE_ONLY = {
  data: { ...chatChunk("", MODEL), choices: [{ index: 0, delta: { role: "assistant", content: "" } }] },
};

describe("a failed attempt's charge", () => {
  test("the client left while the provider worked on the request: its prompt stays charged", async (t) => {
    const scene = await startTwoProviders(t, { primaryModel: BUDGET });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "hang" });
    const controller = new AbortController();
    const asked = scene.client.chat.completions.create(
      { model: MODEL, messages: MESSAGES, stream: true, max_tokens: MAX_TOKENS },
      { signal: controller.signal },
    );
    await waitUntil(() => scene.primary.requests.length === 1, "alpha to get the request");
    controller.abort();
    await assert.rejects(asked);
    // Before: 0 (the failed-attempt rule), as if alpha had never been sent the prompt it was counting.
    assert.equal(await alphaTokensSettled(scene, PROMPT), PROMPT);
  });

  test("timeout_ms ran out after the request went out: its prompt stays charged", async (t) => {
    // undici's coarse timer fires `timeout_ms: 300` after about 1 s.
    assert.equal(await alphaChargeAfter(t, { kind: "hang" }, PROMPT, { timeout_ms: 300 }), PROMPT);
  });

  test("a 200 stream that broke before its first content: its prompt stays charged", async (t) => {
    assert.equal(await alphaChargeAfter(t, { kind: "sse", events: [ROLE_ONLY], end: "destroy" }, PROMPT), PROMPT);
  });

  test("first_token_timeout_ms ran out: its prompt stays charged", async (t) => {
    const step: MockStep = { kind: "sse", events: [ROLE_ONLY], end: "hang" };
    assert.equal(await alphaChargeAfter(t, step, PROMPT, { first_token_timeout_ms: 300 }), PROMPT);
  });

  test("a refusal the provider answered stays uncharged: a 429", async (t) => {
    assert.equal(await alphaChargeAfter(t, rateLimited({ retryAfter: "1" }), 0), 0);
  });

  test("a refusal the provider answered stays uncharged: a 500", async (t) => {
    const step: MockStep = { kind: "json", status: 500, body: { error: { message: "boom" } } };
    assert.equal(await alphaChargeAfter(t, step, 0), 0);
  });
});

// The provider's token totals count what its budget is charged: a failed attempt's charge is in /stats' `tokens_in` and
// in `llm_gateway_tokens_total` (`source="estimated"`: the prompt's estimate), as the attempt's `chargedTokens` says.
// Before 2026-12-07 both left it out: the budgets counted tokens the provider's totals never showed.
describe("a failed attempt's charge in its provider's token totals", () => {
  test("a 200 stream that broke before its first content: its prompt in /stats and llm_gateway_tokens_total", async (t) => {
    const scene = await startTwoProviders(t, { primaryModel: BUDGET });
    const records: RequestRecord[] = [];
    scene.gateway.runtime.onRecord((record) => records.push(record));
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [ROLE_ONLY], end: "destroy" });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream([" Rhine"], MODEL, { usage: { prompt_tokens: 11, completion_tokens: 2 } }),
    });
    assert.equal(await askStreaming(scene), " Rhine");
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.attempts[0]?.chargedTokens, PROMPT, "the attempt's charge");
    assert.equal(await alphaTokensSettled(scene, PROMPT), PROMPT, "alpha's budget");

    const stats = await statsOf(scene.gateway);
    const alpha = rowOf(stats, `alpha/${MODEL}`);
    const beta = rowOf(stats, `beta/${MODEL}`);
    assert.deepEqual([alpha.tokens_in, alpha.tokens_out], [PROMPT, 0], "/stats: alpha's charge");
    assert.deepEqual([beta.tokens_in, beta.tokens_out], [11, 2], "/stats: beta's answer");

    const metrics = parsePrometheusText((await send(scene.gateway, "GET", "/metrics")).text);
    const tokens = (provider: string, direction: string, source: string) =>
      sumOf(metrics, "llm_gateway_tokens_total", { provider, direction, source });
    assert.deepEqual(
      [tokens("alpha", "in", "estimated"), tokens("alpha", "in", "reported"), tokens("alpha", "out", "estimated")],
      [PROMPT, 0, 0],
      "llm_gateway_tokens_total: alpha's charge, estimated",
    );
    assert.deepEqual([tokens("beta", "in", "reported"), tokens("beta", "out", "reported")], [11, 2]);
  });
});
