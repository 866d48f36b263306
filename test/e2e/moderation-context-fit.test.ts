// A Llama Guard moderation's context fit: each input is sent alone in a chat call that the model's chat template wraps
// in Llama Guard's task and hazard list (LLAMA_GUARD_TEMPLATE_TOKENS) and that asks for `max_tokens: 64`; the fit
// counts both in the model's window, as the budgets count them, not the input's text alone.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { estimateTextInputs } from "../../src/limits/token-estimate.ts";
import { LLAMA_GUARD_MAX_TOKENS, LLAMA_GUARD_TEMPLATE_TOKENS } from "../../src/providers/moderation-api.ts";
import { recordsOf, send } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { chatCalls, GUARD, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";

describe("moderation context fit", () => {
  test("a Llama Guard model whose window holds the input's text but not its call's template and max_tokens is skipped for context, not sent", async (t) => {
    const { gateway, guardMock, nativeMock } = await guardScene(t, { guardExtra: ", context: 1000" });
    const long = "word ".repeat(700);
    const text = estimateTextInputs(long).total;
    const needed = text + LLAMA_GUARD_TEMPLATE_TOKENS + LLAMA_GUARD_MAX_TOKENS;
    assert.ok(text <= 1000 && needed > 1000, `${text} fits the window alone, ${needed} does not`);
    // The fit is per call (each input alone): two such inputs are no worse than one.
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(2) });
    guardMock.enqueue(CHAT, { kind: "json", body: chatCompletion("safe", GUARD) });
    const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: [long, "a"] } });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as { model: string }).model, "omni-moderation-latest");
    // Sent, the call would be refused as longer than the model's context (or truncated by its host).
    assert.equal(chatCalls(guardMock), 0, "no Llama Guard call is sent whose prompt and output do not fit its window");
    const { records } = await recordsOf(gateway, "moderations");
    const skips = (records[0] as unknown as { skips: { provider: string; reason: string }[] }).skips;
    assert.match(skips.find((skip) => skip.provider === "p0")?.reason ?? "", new RegExp(`needs ~${needed} tokens`));

    // Short inputs fit: each call's 1 + 338 + 64, not their sum.
    guardMock.enqueue(CHAT, { kind: "json", body: chatCompletion("safe", GUARD) });
    const short = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b"] } });
    assert.equal(short.status, 200, short.text);
    assert.equal((short.json as { model: string }).model, GUARD);
    assert.equal(chatCalls(guardMock), 2);
  });
});
