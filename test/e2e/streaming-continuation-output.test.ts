// Continuations and what a stream carries besides text: tool calls, reasoning, refusals, and the null or empty
// `tool_calls` some upstreams put on every chunk. The client (the official OpenAI SDK's stream helper, which
// accumulates deltas as an application does) must see every piece of the answer once: none dropped, none twice.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { MockStep, SseScript } from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

/** One chat chunk with this delta (and finish_reason), as a provider streams it. */
function chunk(delta: Record<string, unknown>, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-x",
      object: "chat.completion.chunk",
      created: 1,
      model: MODEL,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

function cutAfter(events: SseScript[]): MockStep {
  return { kind: "sse", events, end: "destroy" };
}

/** The reasoning and the text a client reads from one streamed answer to "q". */
async function streamedText(scene: TwoProviders): Promise<{ reasoning: string; content: string }> {
  const stream = await scene.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "q" }],
    stream: true,
  });
  let reasoning = "";
  let content = "";
  for await (const part of stream) {
    const delta = part.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
    reasoning += delta?.reasoning_content ?? "";
    content += delta?.content ?? "";
  }
  return { reasoning, content };
}

const WEATHER_CALL = {
  index: 0,
  id: "call_1",
  type: "function",
  function: { name: "weather", arguments: '{"city":"Paris"}' },
};
const TOOLS = [
  {
    type: "function" as const,
    function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
  },
];

describe("a replayed answer keeps what is new in a chunk whose text only repeats", () => {
  test("text and a whole tool call in one chunk: the tool call reaches the client (openai stream helper)", async (t) => {
    // beta takes no prefill, so it replays: its one chunk repeats the delivered text and carries the call.
    const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
    scene.primary.enqueue(
      CHAT_ROUTE,
      cutAfter([
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Let me " }),
        chunk({ content: "check." }),
      ]),
    );
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "Let me check.", tool_calls: [WEATHER_CALL] }),
        chunk({}, "tool_calls"),
      ],
    });
    const stream = scene.client.chat.completions.stream({
      model: MODEL,
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: TOOLS,
    });
    const final = await stream.finalChatCompletion();
    const message = final.choices[0]?.message;
    assert.equal(message?.content, "Let me check.");
    assert.deepEqual(
      message?.tool_calls?.map((call) => (call.type === "function" ? [call.id, call.function.arguments] : [])),
      [["call_1", '{"city":"Paris"}']],
    );
    assert.equal(final.choices[0]?.finish_reason, "tool_calls");
  });

  test("a tool call before the delivered text was repeated: the fresh answer went another way (diverged)", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
    scene.primary.enqueue(
      CHAT_ROUTE,
      cutAfter([chunk({ role: "assistant", content: "" }), chunk({ content: "Let me check." })]),
      // Its connection broke, so alpha is asked last, whatever beta's replay did: it fails too.
      { kind: "json", status: 500, body: { error: { message: "down" } } },
    );
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [chunk({ role: "assistant", content: "Let me", tool_calls: [WEATHER_CALL] }), chunk({}, "tool_calls")],
    });
    const stream = scene.client.chat.completions.stream({
      model: MODEL,
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: TOOLS,
    });
    // Not a silent answer with half a replay and no call: the stream ends in an error the client sees.
    await assert.rejects(stream.finalChatCompletion(), /stream/i);
    assert.equal(scene.primary.pendingSteps(), 0, "alpha, whose connection broke, was asked last");
  });
});

describe("reasoning is delivered once across a continuation", () => {
  test("cut while only reasoning was delivered: the fresh answer's reasoning is not repeated", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(
      CHAT_ROUTE,
      cutAfter([
        chunk({ role: "assistant", content: "" }),
        chunk({ reasoning_content: "Let me " }),
        chunk({ reasoning_content: "think." }),
      ]),
    );
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "" }),
        chunk({ reasoning_content: "Let me " }),
        chunk({ reasoning_content: "think." }),
        chunk({ content: "Answer." }),
        chunk({}, "stop"),
      ],
    });
    const { reasoning, content } = await streamedText(scene);
    assert.equal(reasoning, "Let me think.");
    assert.equal(content, "Answer.");
    assert.equal(scene.backup.requests.length, 1);
  });

  test("cut after text: a prefill continuation's own leading reasoning is left out, later reasoning goes on", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(
      CHAT_ROUTE,
      cutAfter([
        chunk({ role: "assistant", content: "" }),
        chunk({ reasoning_content: "Plan." }),
        chunk({ content: "Hello " }),
      ]),
    );
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "" }),
        chunk({ reasoning_content: "Rethink." }),
        chunk({ content: "world." }),
        chunk({ reasoning_content: " Check." }),
        chunk({}, "stop"),
      ],
    });
    const { reasoning, content } = await streamedText(scene);
    assert.equal(content, "Hello world.");
    assert.equal(reasoning, "Plan. Check.");
    // beta continued the text with a prefill
    const messages = sentBody(scene.backup).messages as { role: string; content: string }[];
    assert.deepEqual(messages.at(-1), { role: "assistant", content: "Hello " });
  });

  test("a refusal is not continued (a replay matches text only): a clean error, not the refusal twice", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(
      CHAT_ROUTE,
      cutAfter([chunk({ role: "assistant", content: "" }), chunk({ refusal: "I can't " })]),
    );
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [chunk({ refusal: "I can't " }), chunk({ refusal: "help." }), chunk({}, "stop")],
    });
    const stream = scene.client.chat.completions.stream({ model: MODEL, messages: [{ role: "user", content: "q" }] });
    await assert.rejects(stream.finalChatCompletion(), /stream failed after it had started/);
    assert.equal(scene.backup.requests.length, 0);
  });
});

describe("`tool_calls: null` or `[]` on text chunks is no tool call", () => {
  for (const empty of [null, []]) {
    test(`tool_calls: ${JSON.stringify(empty)} on every chunk: a cut text stream is still continued`, async (t) => {
      const scene = await startTwoProviders(t);
      const extra = { tool_calls: empty, function_call: null };
      scene.primary.enqueue(
        CHAT_ROUTE,
        cutAfter([
          chunk({ role: "assistant", content: "", ...extra }),
          chunk({ content: "Hello ", ...extra }),
          chunk({ content: "wor", ...extra }),
        ]),
      );
      scene.backup.enqueue(CHAT_ROUTE, {
        kind: "sse",
        events: [chunk({ content: "ld!", ...extra }), chunk({}, "stop")],
      });
      const stream = scene.client.chat.completions.stream({ model: MODEL, messages: [{ role: "user", content: "q" }] });
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0]?.message.content, "Hello world!");
      assert.equal(scene.backup.requests.length, 1);
    });
  }

  test("a role-only chunk with `tool_calls: null` does not commit the stream: an error after it fails over", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "", tool_calls: null }),
        { data: { error: { message: "overloaded", type: "server_error" } } },
      ],
    });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [chunk({ role: "assistant", content: "" }), chunk({ content: "From beta." }), chunk({}, "stop")],
    });
    const stream = scene.client.chat.completions.stream({ model: MODEL, messages: [{ role: "user", content: "q" }] });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, "From beta.");
    // failed over before the first byte: no continuation marker, one answer from beta
    assert.equal(scene.backup.requests.length, 1);
    assert.equal((sentBody(scene.backup).messages as unknown[]).length, 1);
  });
});
