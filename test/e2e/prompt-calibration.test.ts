// Prompt estimates calibrated per deployment from the usage its provider reports (src/limits/prompt-calibration.ts),
// end to end: alpha's tokenizer counts half of what the gateway's estimate says. Before alpha has reported
// anything, a prompt estimated above its context window (or its token budget) goes to beta; once alpha's answers
// have taught the factor, the same prompt goes to alpha; and what was learned survives a restart with the
// embedded store.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import { send, useMock } from "../helpers/e2e.ts";
import { assertServedBy, type Scene, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, chatStream, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

/** A user message of `parts` three-word parts (~3.1 estimated tokens each: 1,500 parts ~4,700). */
function prompt(parts: number): { role: string; content: string }[] {
  const text = Array.from({ length: parts }, (_, index) => `word${index % 7 === 0 ? "s" : ""} of text`).join(" ");
  return [{ role: "user", content: text }];
}

function estimateOf(messages: readonly unknown[]): number {
  return estimateChatPrompt(messages, undefined).promptTokens;
}

/** Alpha answers every chat request (JSON or stream) reporting half the gateway's estimate as prompt tokens. */
function reportHalf(alpha: MockUpstream): void {
  alpha.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const body = request.body as { messages: unknown[]; stream?: boolean };
    const usage = { prompt_tokens: Math.round(estimateOf(body.messages) / 2), completion_tokens: 2 };
    return body.stream === true
      ? { kind: "sse", events: chatStream(["hi", "there"], "alpha-model", { usage }) }
      : { kind: "json", body: chatCompletion("hi there", "alpha-model", usage) };
  });
}

/** Teaches the gateway alpha's factor with two ~4,500-token prompts, one answered as JSON, one streamed. */
async function teach(scene: Scene): Promise<void> {
  assertServedBy(await scene.chat({ messages: prompt(1_500) }), "alpha");
  const streamed = await scene.chat({ messages: prompt(1_400), stream: true });
  assert.equal(streamed.status, 200);
  assert.match(streamed.text, /\[DONE\]/);
}

describe("prompt estimates calibrated from the provider's reported usage", () => {
  // Estimated ~9,750 tokens; alpha counts ~4,900 of them.
  const large = prompt(3_100);

  test("context: a prompt estimated above alpha's window goes to alpha once its reports show it fits", async (t) => {
    const estimate = estimateOf(large);
    assert.ok(estimate > 8_000 && estimate * 0.5 * 1.2 < 8_000, `estimate ${estimate}`);
    const scene = await startScene(t, { alphaModel: { context: 8_000 } });
    reportHalf(scene.alpha);
    // Nothing learned yet: the estimate says it does not fit alpha.
    assertServedBy(await scene.chat({ messages: large }), "beta");
    assert.equal((await scene.stats("alpha")).prompt_token_factor, 1);
    await teach(scene);
    assertServedBy(await scene.chat({ messages: large }), "alpha");
    assert.equal(scene.counts().beta, 1);
    // /stats shows the factor: about half the estimate, plus the margin.
    const factor = (await scene.stats("alpha")).prompt_token_factor;
    assert.ok(Math.abs(factor - 0.6) < 0.01, `factor ${factor}`);
    // Anthropic's token count answers for the candidate that would serve `m` now: alpha's count, plus the margin.
    const counted = await send(scene.gateway, "POST", "/v1/messages/count_tokens", {
      body: { model: "m", messages: [{ role: "user", content: (large[0] as { content: string }).content }] },
    });
    assert.equal(counted.status, 200, counted.text);
    const inputTokens = (counted.json as { input_tokens: number }).input_tokens;
    assert.equal(inputTokens, Math.ceil(estimate * factor));
  });

  test("token budgets: a prompt estimated over alpha's tpm goes to alpha once calibrated", async (t) => {
    const scene = await startScene(t, { alphaModel: { limits: { tpm: 40_000 } } });
    reportHalf(scene.alpha);
    // Estimated ~47,000: over alpha's tpm. Alpha counts ~23,600 of it; calibrated, ~28,300 (x 0.5 x 1.2), which
    // fits next to the ~4,600 the two teaching prompts were charged after reconciling.
    const huge = prompt(15_000);
    assertServedBy(await scene.chat({ messages: huge }), "beta");
    await teach(scene);
    assertServedBy(await scene.chat({ messages: huge }), "alpha");
  });

  test("what was learned survives a restart with the embedded store", async (t) => {
    const directory = mkdtempSync(join(tmpdir(), "calibration-"));
    t.after(() => rmSync(directory, { recursive: true, force: true }));
    const mocks = { alpha: await useMock(t), beta: await useMock(t) };
    reportHalf(mocks.alpha);
    // Written when the gateway closes (and every flush interval, here longer than the test).
    const state = { path: join(directory, "state.db"), flush_interval_ms: 60_000 };
    const options = { mocks, alphaModel: { context: 8_000 }, config: { state } };
    const first = await startScene(t, options);
    await teach(first);
    await first.gateway.close();
    const second = await startScene(t, options);
    assertServedBy(await second.chat({ messages: large }), "alpha");
    assert.equal(second.counts().beta, 0);
  });

  test("a prompt alpha refuses as too long after all fails over, and the next one that size is not sent to it", async (t) => {
    // A refusal fails over to a candidate with a known larger window.
    const scene = await startScene(t, { alphaModel: { context: 8_000 }, betaModel: { context: 128_000 } });
    reportHalf(scene.alpha);
    await teach(scene);
    // Estimated ~12,600, calibrated ~7,600: it looks like it fits alpha's 8,000, but this text tokenizes densely
    // there and alpha refuses it, as OpenAI words it.
    const dense = prompt(4_000);
    const calibrated = Math.ceil(estimateOf(dense) * (await scene.stats("alpha")).prompt_token_factor);
    assert.ok(calibrated < 8_000 && estimateOf(dense) > 8_000, `calibrated ${calibrated}`);
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message:
            "This model's maximum context length is 8000 tokens. However, your messages resulted in 9100 tokens.",
          type: "invalid_request_error",
          code: "context_length_exceeded",
        },
      },
    });
    assertServedBy(await scene.chat({ messages: dense }), "beta", 2);
    const alphaBefore = scene.counts().alpha;
    // The refusal taught alpha's factor: the same prompt now goes straight to beta, alpha is not asked again.
    assertServedBy(await scene.chat({ messages: dense }), "beta");
    assert.equal(scene.counts().alpha, alphaBefore);
  });

  test("a refusal by a model with a separate output limit of a prompt that fits it but not with max_tokens: checked as one window since", async (t) => {
    // Alpha takes 8,000 prompt tokens and up to 4,000 more of output (docs/routing.md "Context fit").
    const scene = await startScene(t, {
      alphaModel: { context: 8_000, max_output_tokens: 4_000 },
      betaModel: { context: 128_000 },
    });
    reportHalf(scene.alpha);
    await teach(scene);
    const dense = prompt(4_000);
    const calibrated = Math.ceil(estimateOf(dense) * (await scene.stats("alpha")).prompt_token_factor);
    assert.ok(calibrated < 8_000 && calibrated + 3_000 > 8_000, `calibrated ${calibrated}`);
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: "The input token count (9100) exceeds the maximum number of tokens allowed (8000).",
          type: "invalid_request_error",
          code: null,
        },
      },
    });
    // The prompt fits alpha's input limit as far as the gateway knows, so alpha is asked; it refuses.
    assertServedBy(await scene.chat({ messages: dense, max_tokens: 3_000 }), "beta", 2);
    const alphaBefore = scene.counts().alpha;
    // Either the prompt was more than alpha's 8,000 input tokens, or alpha counts max_tokens in them after all; the
    // second needs no larger prompt than the estimate said: alpha is checked as one window, and the same request
    // now goes straight to beta.
    assertServedBy(await scene.chat({ messages: dense, max_tokens: 3_000 }), "beta");
    assert.equal(scene.counts().alpha, alphaBefore);
  });

  test("a window learned to be shared survives a restart with the embedded store: no second refusal", async (t) => {
    const directory = mkdtempSync(join(tmpdir(), "shared-window-"));
    t.after(() => rmSync(directory, { recursive: true, force: true }));
    const mocks = { alpha: await useMock(t), beta: await useMock(t) };
    const state = { path: join(directory, "state.db"), flush_interval_ms: 60_000 };
    const options = {
      mocks,
      alphaModel: { context: 8_000, max_output_tokens: 4_000 },
      betaModel: { context: 128_000 },
      config: { state },
    };
    const first = await startScene(t, options);
    // Fits the 8,000 input limit alone, not with 3,000 of output in one window; uncalibrated.
    const request = { messages: prompt(2_000), max_tokens: 3_000 };
    assert.ok(estimateOf(request.messages) > 5_000 && estimateOf(request.messages) < 8_000);
    mocks.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "The input token count (9100) exceeds the maximum number of tokens allowed (8000)." } },
    });
    assertServedBy(await first.chat(request), "beta", 2);
    await first.gateway.close();
    const second = await startScene(t, options);
    // Before 2026-12-05 the restart forgot it and alpha was asked (and refused) again.
    assertServedBy(await second.chat(request), "beta");
    assert.equal(second.counts().alpha, 1);
  });

  test("a table's separate output limit that the provider counts in its window (gpt-4o): no prompt is thought larger after its refusal", async (t) => {
    // LiteLLM lists gpt-4o with 128,000 input and 16,384 output tokens; OpenAI counts max_tokens in the 128,000.
    // Alpha is that, scaled down: listed 8,000 in and 4,000 out, one 8,000 window in truth.
    const scene = await startScene(t, {
      alphaModel: { context: 8_000, max_output_tokens: 4_000 },
      betaModel: { context: 128_000 },
    });
    reportHalf(scene.alpha);
    await teach(scene);
    const dense = prompt(4_000);
    const factor = (await scene.stats("alpha")).prompt_token_factor;
    const calibrated = Math.ceil(estimateOf(dense) * factor);
    assert.ok(calibrated + 100 <= 8_000 && calibrated + 3_000 > 8_000, `calibrated ${calibrated}`);
    const requested = calibrated + 3_000;
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `This model's maximum context length is 8000 tokens. However, you requested ${requested} tokens (${calibrated} in the messages, 3000 in the completion). Please reduce the length of the messages or completion.`,
          type: "invalid_request_error",
          code: "context_length_exceeded",
        },
      },
    });
    assertServedBy(await scene.chat({ messages: dense, max_tokens: 3_000 }), "beta", 2);
    // The refusal did not make alpha's prompts look larger: taken as 8,000 prompt tokens, it raised the factor by
    // about a sixth, and this prompt with a small max_tokens (which fits alpha's window) went to beta.
    assert.equal((await scene.stats("alpha")).prompt_token_factor, factor);
    const alphaBefore = scene.counts().alpha;
    assertServedBy(await scene.chat({ messages: dense, max_tokens: 100 }), "alpha");
    assert.equal(scene.counts().alpha, alphaBefore + 1);
    // Asking for the output that did not fit again goes to beta without asking alpha.
    assertServedBy(await scene.chat({ messages: dense, max_tokens: 3_000 }), "beta");
    assert.equal(scene.counts().alpha, alphaBefore + 1);
    // The route explanation shows the window alpha is checked with now.
    const explained = await send(
      scene.gateway,
      "GET",
      `/v1/gateway/route?model=m&tokens=${estimateOf(dense)}&max_tokens=3000`,
    );
    assert.equal(explained.status, 200, explained.text);
    const skip = (explained.json as RouteExplanation).skipped.find((entry) => entry.provider === "alpha");
    assert.equal(skip?.cause, "context", explained.text);
    assert.match(skip?.reason ?? "", /has 8000 \(prompt ~\d+ \+ max_tokens 3000 share one window\)/);
  });

  test("a prompt with an image teaches nothing (the estimate counts images at a flat rate)", async (t) => {
    const scene = await startScene(t, { alphaModel: { context: 8_000, vision: true } });
    reportHalf(scene.alpha);
    const withImage = [
      {
        role: "user",
        content: [
          { type: "text", text: (prompt(1_500)[0] as { content: string }).content },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        ],
      },
    ];
    for (let index = 0; index < 3; index++) assertServedBy(await scene.chat({ messages: withImage }), "alpha");
    assertServedBy(await scene.chat({ messages: large }), "beta");
  });
});
