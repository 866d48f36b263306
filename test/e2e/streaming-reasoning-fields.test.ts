// A chunk that names its reasoning twice, `reasoning_content: ""` beside `reasoning: "..."` (hosts that fill one field
// and send the other empty), is read the same by the relay and by the doors: one reader (src/chat-reasoning.ts).
// Before, the relay read `reasoning_content ?? reasoning` (the empty string: no reasoning) while the doors read
// `reasoning_content || reasoning`: the Responses door showed the reasoning, yet its estimated usage left it out, and a
// stream cut after it was charged no reasoning.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import type { MockStep, SseScript } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const REASONING = ["Let me", " think", " it over."];
const TEXT = ["The", " answer", " is", " four."];

function chunk(delta: Record<string, unknown>, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-fields",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: MODEL,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

/** The role chunk, the reasoning in both fields (the first one empty), then the text; no usage. */
function bothFieldsEvents(): SseScript[] {
  return [
    chunk({ role: "assistant", content: "" }),
    ...REASONING.map((piece) => chunk({ content: "", reasoning_content: "", reasoning: piece })),
    ...TEXT.map((piece) => chunk({ content: piece })),
  ];
}

const sum = (pieces: readonly string[]): number => pieces.reduce((total, piece) => total + countTextTokens(piece), 0);

test("the Responses door: the reasoning it shows is the reasoning its estimated usage counts", async (t) => {
  const scene = await startTwoProviders(t);
  scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [...bothFieldsEvents(), chunk({}, "stop")] });
  const stream = scene.client.responses.stream({ model: MODEL, input: "Why?" });
  let summary = "";
  for await (const event of stream) {
    if (event.type === "response.reasoning_summary_text.delta") summary += event.delta;
  }
  const final = await stream.finalResponse();
  assert.equal(summary, REASONING.join(""), "the door shows the reasoning");
  assert.equal(final.output_text, TEXT.join(""));
  // Each streamed piece counted on its own, as the estimated usage counts the chunks passed on.
  assert.equal(final.usage?.output_tokens, sum(REASONING) + sum(TEXT), "the estimate counts the reasoning it showed");
});

test("the relay: a stream cut after that reasoning is charged it (its attempt's estimate)", async (t) => {
  const scene = await startTwoProviders(t);
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  const cut: MockStep = { kind: "sse", events: bothFieldsEvents(), end: "destroy" };
  // Asked `alpha/m`: alpha is the only candidate, and fails to continue its own cut stream.
  scene.primary.enqueue(CHAT_ROUTE, cut, { kind: "json", status: 500, body: { error: { message: "down" } } });
  const stream = await scene.client.chat.completions.create({
    model: `alpha/${MODEL}`,
    messages: [{ role: "user", content: "Why?" }],
    stream: true,
  });
  let reasoning = "";
  let text = "";
  await assert.rejects(async () => {
    for await (const part of stream) {
      const delta = part.choices[0]?.delta as { content?: string; reasoning?: string } | undefined;
      reasoning += delta?.reasoning ?? "";
      text += delta?.content ?? "";
    }
  }, OpenAI.APIError);
  assert.equal(reasoning, REASONING.join(""), "the chat door passes the reasoning on as it came");
  assert.equal(text, TEXT.join(""));
  await waitUntil(() => records.length === 1, "the request record");
  const expected = countTextTokens(TEXT.join("")) + countTextTokens(REASONING.join(""));
  assert.equal(records[0]?.attempts[0]?.tokensOut, expected, JSON.stringify(records[0]?.attempts));
});
