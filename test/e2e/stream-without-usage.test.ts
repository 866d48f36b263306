// A stream that ended well while no upstream reported usage (the client did not ask for
// `stream_options.include_usage`, and the provider sends none, asked by the gateway or not): its provider billed the
// prompt and the answer all the same. Every book counts it by the gateway's estimate, as a broken stream's is: the
// request record's totals and its attempt (`isUsageEstimated`), the request log, `llm_gateway_tokens_total` and
// `llm_gateway_client_tokens_total` (`source="estimated"`), /stats, the dashboard's feed and the deployment's token
// budget (docs/observability.md, docs/limits.md "Streams"). The client is told nothing it did not ask for: no usage
// chunk. Before, such a stream counted 0 everywhere, and its budget kept only its prompt's reservation. So is a stream
// whose usage chunk states 0 output tokens for an answer that delivered text (below).
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { assertCountedByEstimate } from "../helpers/estimated-books.ts";
import { chatStream } from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const PROMPT = "Say hello to my friend, in a few words.";
const WORDS = ["Hello", " there,", " my", " dear", " friend", "!"];
const TEXT = WORDS.join("");
/** The relay counts each streamed piece on its own, as the estimated usage chunk does. */
const STREAMED_TOKENS = WORDS.reduce((sum, word) => sum + countTextTokens(word), 0);

interface Scene extends TwoProviders {
  readonly records: RequestRecord[];
}

/** `usage`: the usage chunk the provider sends (none by default). */
async function scene(
  t: TestContext,
  usage?: { prompt_tokens: number; completion_tokens: number },
  events = chatStream(WORDS, MODEL, usage === undefined ? {} : { usage }),
): Promise<Scene> {
  // `count_max_tokens: false`: the reservation is the prompt alone (the Messages door requires `max_tokens`), so the
  // token window shows whether the answer was charged.
  const started = await startTwoProviders(t, {
    primary: { count_max_tokens: false },
    primaryModel: { limits: { tpm: 1_000_000 } },
  });
  const records: RequestRecord[] = [];
  started.gateway.runtime.onRecord((record) => records.push(record));
  // A stream as a provider that ignores `stream_options.include_usage` sends it: no usage chunk.
  started.primary.enqueue(CHAT_ROUTE, { kind: "sse", events });
  return { ...started, records };
}

/** The prompt as the gateway estimated it: the chat messages it sent (a fresh gateway's calibration factor is 1). */
function promptTokensSent(s: Scene): number {
  const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
  return estimateChatPrompt(body.messages, body.tools).promptTokens;
}

/** What every book says of the request: the same estimate, marked as one. */
function assertCounted(s: Scene, endpoint: string): Promise<void> {
  return assertCountedByEstimate(s.gateway, s.records, endpoint, [promptTokensSent(s), STREAMED_TOKENS]);
}

describe("a stream that ended without any usage report is counted by the gateway's estimate", () => {
  test("chat (openai SDK, no include_usage): no usage chunk for the client, every book counts the estimate", async (t) => {
    const s = await scene(t);
    const stream = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) {
      assert.equal(chunk.usage ?? undefined, undefined, "no usage chunk the client did not ask for");
      assert.equal((chunk as unknown as { x_gateway?: unknown }).x_gateway, undefined);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    assert.equal(text, TEXT);
    await assertCounted(s, "chat");
  });

  test("Responses (openai SDK responses.stream): response.completed's estimate is what every book counts", async (t) => {
    const s = await scene(t);
    const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
    for await (const _event of stream) {
      // Read to the end.
    }
    const final = await stream.finalResponse();
    assert.equal(final.output_text, TEXT);
    assert.equal(final.usage?.output_tokens, STREAMED_TOKENS);
    await assertCounted(s, "responses");
  });

  test("Messages (Anthropic SDK messages.stream): message_delta's estimate is what every book counts", async (t) => {
    const s = await scene(t);
    const anthropic = new Anthropic({ baseURL: s.gateway.url, apiKey: "x", maxRetries: 0 });
    const final = await anthropic.messages
      .stream({ model: MODEL, max_tokens: 100, messages: [{ role: "user", content: PROMPT }] })
      .finalMessage();
    assert.equal(final.content[0]?.type === "text" ? final.content[0].text : "", TEXT);
    assert.equal(final.usage.output_tokens, STREAMED_TOKENS);
    await assertCounted(s, "messages");
  });
});

// A usage chunk that states no output for an answer that delivered text is no report: the provider generated the text
// (some proxies fill `usage` with zeros they never counted). Before 2026-12-07 the stream was charged and counted 0.
describe("a usage chunk stating 0 output tokens for an answer that delivered text is not believed", () => {
  for (const usage of [
    { prompt_tokens: 0, completion_tokens: 0 },
    { prompt_tokens: 12, completion_tokens: 0 },
  ]) {
    const stated = `${usage.prompt_tokens} prompt / ${usage.completion_tokens} completion tokens`;

    test(`${stated}, include_usage asked: the client is told the estimate, marked; every book counts it`, async (t) => {
      const s = await scene(t, usage);
      const stream = await s.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: PROMPT }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const usages: unknown[] = [];
      for await (const chunk of stream) {
        if (chunk.usage !== undefined && chunk.usage !== null)
          usages.push([chunk.usage, (chunk as { x_gateway?: unknown }).x_gateway]);
      }
      const told = { prompt_tokens: promptTokensSent(s), completion_tokens: STREAMED_TOKENS };
      assert.deepEqual(
        usages,
        [[{ ...told, total_tokens: told.prompt_tokens + told.completion_tokens }, { usage_estimated: true }]],
        "one usage chunk: the estimate",
      );
      await assertCounted(s, "chat");
    });

    test(`${stated}, no include_usage: every book counts the estimate`, async (t) => {
      const s = await scene(t, usage);
      const stream = await s.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: PROMPT }],
        stream: true,
      });
      for await (const chunk of stream) assert.equal(chunk.usage ?? undefined, undefined);
      await assertCounted(s, "chat");
    });
  }
});

test("a usage stating 0 output tokens on the role chunk, before the text: not believed once the text came", async (t) => {
  // Believed when it came (nothing generated yet), it stopped the output count and stood as the report: the stream
  // was charged, recorded and counted 12 prompt / 0 output tokens.
  const events = chatStream(WORDS, MODEL);
  const first = events[0] as { data: Record<string, unknown> };
  events[0] = {
    ...first,
    data: { ...first.data, usage: { prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 } },
  };
  const s = await scene(t, undefined, events);
  const stream = await s.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: PROMPT }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let last: unknown;
  for await (const chunk of stream) if (chunk.usage !== undefined && chunk.usage !== null) last = chunk.usage;
  const told = { prompt_tokens: promptTokensSent(s), completion_tokens: STREAMED_TOKENS };
  assert.deepEqual(last, { ...told, total_tokens: told.prompt_tokens + told.completion_tokens }, "the last usage told");
  await assertCounted(s, "chat");
});
