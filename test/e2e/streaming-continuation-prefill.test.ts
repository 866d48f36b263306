// The request that asks a provider to extend the delivered text (a prefill continuation), as the provider gets it.
//
// It keeps to the client's output limit: it generates only the rest of the answer, so it may generate only what is
// left of `max_tokens` (or `max_completion_tokens`) after the delivered part; asked with the whole limit again, the
// answer could grow to nearly twice the limit the client set (and pay for it). A replay regenerates the answer
// from the start, so it keeps the client's limit as it is.
//
// A request that ends with the client's own assistant prefill ("Sure:") is extended in that message: the answer
// so far is the client's prefill plus the delivered text, one assistant turn, not two in a row (which providers
// refuse, or read as a finished turn followed by a new one).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { readTimed } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const DELIVERED = WORDS.slice(0, 20).join("");
const DELIVERED_TOKENS = countTextTokens(DELIVERED);

const cutAfterTwenty: MockStep = {
  kind: "sse",
  events: chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21),
  end: "destroy",
};
const theRest: MockStep = { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) };

async function streamChat(scene: TwoProviders, limits: Record<string, number>): Promise<string> {
  const stream = await scene.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "count" }],
    stream: true,
    ...limits,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

describe("a prefill continuation may generate only what is left of the client's output limit", () => {
  for (const field of ["max_tokens", "max_completion_tokens"] as const) {
    test(`${field}: the continuation is asked for the limit less the delivered part's tokens`, async (t) => {
      const scene = await startTwoProviders(t);
      scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
      scene.backup.enqueue(CHAT_ROUTE, theRest);
      const text = await streamChat(scene, { [field]: 500 });
      assert.equal(text, WORDS.join(""));
      assert.equal(sentBody(scene.primary)[field], 500, "the first request is the client's");
      const continuation = sentBody(scene.backup);
      assert.equal((continuation.messages as { role: string }[]).at(-1)?.role, "assistant", "a prefill");
      assert.equal(continuation[field], 500 - DELIVERED_TOKENS);
    });
  }

  test("a delivered part that used the whole limit (as estimated): the continuation may add one token at most", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    await streamChat(scene, { max_tokens: DELIVERED_TOKENS - 1 });
    assert.equal(sentBody(scene.backup).max_tokens, 1);
  });

  test("no limit asked: none is added to the continuation", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    await streamChat(scene, {});
    const continuation = sentBody(scene.backup);
    assert.equal(continuation.max_tokens, undefined);
    assert.equal(continuation.max_completion_tokens, undefined);
  });

  for (const rule of ["defaults", "override"] as const) {
    test(`a limit the candidate's body rules set (${rule}) is less the delivered part too`, async (t) => {
      // Before, the rules were applied after the prefill's limit was made: the continuation got the whole 500 again.
      const backupModel = { body: { [rule]: { max_tokens: 500 } } };
      const scene = await startTwoProviders(t, { backupModel });
      scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
      scene.backup.enqueue(CHAT_ROUTE, theRest);
      const text = await streamChat(scene, rule === "override" ? { max_tokens: 2000 } : {});
      assert.equal(text, WORDS.join(""));
      const continuation = sentBody(scene.backup);
      assert.equal((continuation.messages as { role: string }[]).at(-1)?.role, "assistant", "a prefill");
      assert.equal(continuation.max_tokens, 500 - DELIVERED_TOKENS);
    });
  }

  test("a replay keeps the client's limit: it regenerates the whole answer", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS, MODEL) });
    const text = await streamChat(scene, { max_tokens: 500 });
    assert.equal(text, WORDS.join(""));
    assert.equal(sentBody(scene.backup).max_tokens, 500);
  });

  test("Messages (Anthropic SDK, max_tokens required): the continuation keeps to the message's max_tokens", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    const client = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await client.messages
      .stream({ model: MODEL, max_tokens: 300, messages: [{ role: "user", content: "count" }] })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: WORDS.join(""), citations: null }]);
    assert.equal(sentBody(scene.primary).max_tokens, 300);
    assert.equal(sentBody(scene.backup).max_tokens, 300 - DELIVERED_TOKENS);
  });
});

describe("a request that ends with the client's own assistant prefill", () => {
  const prefilled = [
    { role: "user", content: "count" },
    { role: "assistant", content: "Sure:" },
  ];

  test("chat: the delivered text extends the client's assistant message, not a second one after it", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    const answer = await scene.postChat({ stream: true, messages: prefilled });
    assert.match((await readTimed(answer.body)).text, /data: \[DONE\]\n\n$/);
    assert.deepEqual(sentBody(scene.backup).messages, [
      { role: "user", content: "count" },
      { role: "assistant", content: `Sure:${DELIVERED}` },
    ]);
  });

  test("chat, content as text parts: the delivered text is one more text part of that message", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    const answer = await scene.postChat({
      stream: true,
      messages: [
        { role: "user", content: "count" },
        { role: "assistant", content: [{ type: "text", text: "Sure:" }] },
      ],
    });
    await readTimed(answer.body);
    assert.deepEqual(sentBody(scene.backup).messages, [
      { role: "user", content: "count" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Sure:" },
          { type: "text", text: DELIVERED },
        ],
      },
    ]);
  });

  test("Messages (Anthropic SDK): a prefilled message continued after a cut is one assistant turn", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, theRest);
    const client = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await client.messages
      .stream({
        model: MODEL,
        max_tokens: 300,
        messages: [
          { role: "user", content: "count" },
          { role: "assistant", content: "Sure:" },
        ],
      })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: WORDS.join(""), citations: null }]);
    const sent = sentBody(scene.backup).messages as { role: string; content: unknown }[];
    assert.deepEqual(sent.at(-1), { role: "assistant", content: `Sure:${DELIVERED}` });
    assert.equal(sent.filter((entry) => entry.role === "assistant").length, 1);
  });
});

describe("a provider that takes the prefill but answers afresh (it does not extend the assistant message)", () => {
  /** Streams with the official SDK: the text, the chunks' markers, and the usage chunk's counts. */
  async function streamWithUsage(scene: TwoProviders) {
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "count" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const markers: unknown[] = [];
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      const marker = (chunk as unknown as { x_gateway?: { continuation?: unknown } }).x_gateway?.continuation;
      if (marker !== undefined) markers.push(marker);
      if (chunk.usage !== undefined && chunk.usage !== null) usages.push(chunk.usage);
    }
    return { text, markers, usages };
  }

  test("its fresh answer repeats the delivered text: the client gets that text once, and the fresh answer's usage", async (t) => {
    // Before, the fresh answer was spliced on whole: the client got the first twenty words twice.
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS, MODEL, { usage: { prompt_tokens: 12, completion_tokens: 30 } }),
    });
    const run = await streamWithUsage(scene);
    assert.equal(run.text, WORDS.join(""));
    assert.equal((sentBody(scene.backup).messages as { role: string }[]).at(-1)?.role, "assistant", "a prefill");
    assert.equal(run.markers.length, 1);
    assert.equal((run.markers[0] as { afterChars: number }).afterChars, DELIVERED.length);
    // Its usage covers the whole answer, as a replay's does: the delivered part is not counted twice.
    assert.deepEqual(run.usages, [{ prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 }]);
  });

  test("the repetition arrives in other pieces than the delivered text did, and the rest in the same chunk", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    const pieces = [
      DELIVERED.slice(0, 3),
      DELIVERED.slice(3, 50),
      `${DELIVERED.slice(50)}${WORDS[20]}`,
      ...WORDS.slice(21),
    ];
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(pieces, MODEL) });
    const run = await streamWithUsage(scene);
    assert.equal(run.text, WORDS.join(""));
  });

  test("a real continuation that begins like the delivered text loses nothing of it", async (t) => {
    // " word" repeats the start of the delivered text (" word0"), then "20" differs: it extends the answer after all.
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([" word", "20", ...WORDS.slice(21)], MODEL) });
    const run = await streamWithUsage(scene);
    assert.equal(run.text, WORDS.join(""));
    assert.equal(run.markers.length, 1);
  });
});
