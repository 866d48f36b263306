// A prefill continuation's attempt that failed after it went out (errors/outcomes.ts hasProviderCountedPrompt): its
// provider took in the prompt it was sent, the delivered text in its prefill included. Its reservation counts the
// original prompt only (a segment's estimate adds the delivered text: pipeline/continuation-source.ts), so charged
// "the prompt part of its reservation", it was charged as if the client had had nothing yet.
import assert from "node:assert/strict";
import { test } from "node:test";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { statsOf } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatChunk, chatStream } from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Count from zero to twenty-nine, one word each." }];
const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const DELIVERED = WORDS.slice(0, 20).join("");
const PROMPT = estimateChatPrompt(MESSAGES, undefined).promptTokens;

test("a prefill continuation whose stream broke before its first content: charged its prompt with the prefill", async (t) => {
  const scene = await startTwoProviders(t, { backupModel: { limits: { tpm: 1_000_000 } } });
  scene.primary.enqueue(CHAT_ROUTE, {
    kind: "sse",
    events: chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21),
    end: "destroy",
  });
  // Beta takes the prefill (a 200), then breaks before its first content; alpha, asked again, finishes the answer.
  const roleOnly = { ...chatChunk("", MODEL), choices: [{ index: 0, delta: { role: "assistant", content: "" } }] };
  scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: [{ data: roleOnly }], end: "destroy" });
  scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
  const stream = await scene.client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  assert.equal(text, WORDS.join(""));
  assert.equal(scene.backup.requests.length, 1);
  const messages = (scene.backup.requests[0]?.body as { messages?: { content: string }[] } | undefined)?.messages;
  assert.equal(messages?.at(-1)?.content, DELIVERED, "beta was sent the delivered text as its prefill");
  const expected = PROMPT + countTextTokens(DELIVERED);
  const betaTokens = async (): Promise<number> => {
    const row = (await statsOf(scene.gateway)).get(`beta/${MODEL}`) as unknown as DeploymentView;
    return windowOf(row, `deployment:beta/${MODEL}`, "tokens", "minute").used;
  };
  let used = await betaTokens();
  for (let tries = 0; tries < 50 && used !== expected; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    used = await betaTokens();
  }
  // Before: PROMPT alone, the prefill's delivered text left out.
  assert.equal(used, expected);
});
