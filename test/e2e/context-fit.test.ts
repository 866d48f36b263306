// The context check over real sockets (docs/routing.md "Context fit"): a model whose output limit is separate
// from its input limit (Gemini: 1,048,576 in, 65,536 out) takes a prompt up to the input limit whatever
// `max_tokens` asks, while a model with one shared window still needs the prompt and `max_tokens` to fit it.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import {
  badRequest,
  chatRequests,
  errorOf,
  openAiClient,
  postChat,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";

/** A one-message prompt the gateway estimates at exactly `tokens` (so the test does not hang on the estimator's constants). */
function promptOf(tokens: number): { role: "user"; content: string }[] {
  for (let words = 1; words <= tokens * 2; words++) {
    const messages = [{ role: "user" as const, content: "word ".repeat(words) }];
    const estimate = estimateChatPrompt(messages, undefined).promptTokens;
    if (estimate === tokens) return messages;
    if (estimate > tokens) break;
  }
  throw new Error(`no prompt of "word "s is estimated at ${tokens} tokens`);
}

/** `separate` serves `gemini-like` (input 1,000, output 100); `shared` serves `window-like` (one 1,000 window). */
async function scene(t: TestContext) {
  const separate = await useMock(t);
  const shared = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: separate
    base_url: ${separate.baseUrl}
    api_key: sk-separate
    retries: 0
    models:
      gemini-like: { context: 1000, max_output_tokens: 100 }
  - name: shared
    base_url: ${shared.baseUrl}
    api_key: sk-shared
    retries: 0
    models:
      window-like: { context: 1000 }
`,
  );
  return { separate, shared, gateway };
}

describe("context fit", () => {
  test("a model with a separate output limit serves a prompt that fits its input limit, whatever max_tokens adds", async (t) => {
    const { separate, gateway } = await scene(t);
    // Above the input limit: refused before any upstream request, saying which numbers were compared. (Asked
    // first: the answer below teaches the prompt calibration from its reported usage.)
    const tooLong = await postChat(gateway, { model: "gemini-like", messages: promptOf(1050), max_tokens: 10 });
    assert.equal(tooLong.status, 400, tooLong.text);
    assert.equal(errorOf(tooLong).code, "no_capable_model");
    assert.equal(errorOf(tooLong).param, "messages");
    assert.match(errorOf(tooLong).message, /needs ~1050 tokens of prompt, input limit 1000/);
    assert.equal(chatRequests(separate).length, 0);

    // ~950 + 100 is more than 1,000, but the output does not come out of the input limit.
    const served = await postChat(gateway, { model: "gemini-like", messages: promptOf(950), max_tokens: 100 });
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-provider"], "separate");
    assert.equal(chatRequests(separate).length, 1);
    assert.equal((chatRequests(separate)[0]?.body as { max_tokens?: unknown } | undefined)?.max_tokens, 100);
  });

  test("a model with one shared window still needs the prompt and max_tokens to fit it together", async (t) => {
    const { shared, gateway } = await scene(t);
    const tooLong = await postChat(gateway, { model: "window-like", messages: promptOf(950), max_tokens: 100 });
    assert.equal(tooLong.status, 400, tooLong.text);
    assert.equal(errorOf(tooLong).code, "no_capable_model");
    assert.match(errorOf(tooLong).message, /needs ~1050 tokens of context, has 1000 \(prompt ~950 \+ max_tokens 100/);
    assert.equal(chatRequests(shared).length, 0);

    const fits = await postChat(gateway, { model: "window-like", messages: promptOf(950), max_tokens: 50 });
    assert.equal(fits.status, 200, fits.text);
    assert.equal(chatRequests(shared).length, 1);
  });

  test("the refusal names the output limit the client sent, under its door's name for it", async (t) => {
    const { shared, gateway } = await scene(t);
    const openai = openAiClient(gateway);
    const prompt = promptOf(950);
    const responses = await badRequest(
      openai.responses.create({ model: "window-like", input: prompt, max_output_tokens: 100 }),
    );
    assert.equal(responses.code, "no_capable_model");
    // Until 2026-12-07 every door's refusal said `max_tokens`, which a Responses client never sent.
    assert.match(responses.message, /\+ max_output_tokens 100 share one window/);
    const completionTokens = await badRequest(
      openai.chat.completions.create({ model: "window-like", messages: prompt, max_completion_tokens: 100 }),
    );
    assert.match(completionTokens.message, /\+ max_completion_tokens 100 share one window/);
    const completions = await badRequest(
      openai.completions.create({ model: "window-like", prompt: "word ".repeat(2000), max_tokens: 100 }),
    );
    assert.match(completions.message, /\+ max_tokens 100 share one window/);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const messages = await anthropic.messages.create({ model: "window-like", messages: prompt, max_tokens: 100 }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    assert.ok(messages instanceof Anthropic.BadRequestError, String(messages));
    assert.match(messages.message, /\+ max_tokens 100 share one window/);
    assert.equal(chatRequests(shared).length, 0);
  });

  test("a chat body with both max_tokens and max_completion_tokens names the one counted: max_completion_tokens", async (t) => {
    const { gateway } = await scene(t);
    const both = await badRequest(
      openAiClient(gateway).chat.completions.create({
        model: "window-like",
        messages: promptOf(950),
        max_tokens: 5,
        max_completion_tokens: 100,
      }),
    );
    // The 100 counted is max_completion_tokens' (plan-request.ts requestedOutputTokens); it was named max_tokens.
    assert.match(both.message, /\+ max_completion_tokens 100 share one window/);
  });

  test("a limit near 2^53 is printed as sent, and the tokens needed counted exactly", async (t) => {
    const { gateway } = await scene(t);
    const limit = Number.MAX_SAFE_INTEGER;
    const refused = await badRequest(
      openAiClient(gateway).responses.create({ model: "window-like", input: "x", max_output_tokens: limit }),
    );
    const numbers = /needs ~(\d+) tokens of context, has 1000 \(prompt ~(\d+) \+ max_output_tokens (\d+) /.exec(
      refused.message,
    );
    assert.ok(numbers !== null, refused.message);
    assert.equal(numbers[3], String(limit));
    // Above 2^53 a double holds only even numbers: the sum was printed rounded (~9007199254741000 for ~8 + limit).
    assert.equal(numbers[1], String(BigInt(numbers[2] ?? "") + BigInt(limit)));
  });

  test("the route explanation shows the limits and the numbers the check compared", async (t) => {
    const { gateway } = await scene(t);
    const response = await send(
      gateway,
      "GET",
      "/v1/gateway/route?model=gemini-like,window-like&tokens=950&max_tokens=100",
    );
    assert.equal(response.status, 200, response.text);
    const plan = response.json as RouteExplanation;
    assert.deepEqual(
      plan.candidates.map((candidate) => [
        candidate.provider,
        candidate.context_tokens,
        candidate.max_output_tokens,
        candidate.context_window,
        candidate.context_fit,
      ]),
      [
        [
          "separate",
          1000,
          100,
          "separate",
          "needs ~950 tokens of prompt, input limit 1000 (max_tokens 100 counts against the separate output limit 100)",
        ],
      ],
    );
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.provider, skip.cause, skip.reason]),
      [
        [
          "shared",
          "context",
          "needs ~1050 tokens of context, has 1000 (prompt ~950 + max_tokens 100 share one window)",
        ],
      ],
    );

    const badMaxTokens = await send(gateway, "GET", "/v1/gateway/route?model=gemini-like&max_tokens=lots");
    assert.equal(badMaxTokens.status, 400, badMaxTokens.text);
    assert.equal(errorOf(badMaxTokens).param, "max_tokens");
  });
});
