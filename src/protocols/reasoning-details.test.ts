import assert from "node:assert/strict";
import { test } from "node:test";
import {
  reasoningKeyOf,
  reasoningKeysToRecall,
  reasoningOfCompletion,
  StreamedReasoning,
  withRecalledReasoning,
} from "./reasoning-details.ts";

const call = (id: string) => ({ id, type: "function", function: { name: "f", arguments: "{}" } });
const encrypted = { type: "reasoning.encrypted", data: "c2ln", id: "c1", format: "google-gemini-v1", index: 1 };

test("a JSON answer: the array of each message that made tool calls, by its first call id; others not", () => {
  const details = [{ type: "reasoning.text", text: "t", index: 0 }, encrypted];
  const completion = {
    choices: [
      { index: 0, message: { role: "assistant", reasoning_details: details, tool_calls: [call("c1"), call("c2")] } },
      { index: 1, message: { role: "assistant", content: "no call", reasoning_details: details } },
      { index: 2, message: { role: "assistant", reasoning_details: [], tool_calls: [call("c3")] } },
    ],
  };
  assert.deepEqual(reasoningOfCompletion(completion), [
    { id: reasoningKeyOf("c1"), extra: { reasoning_details: details } },
  ]);
  assert.deepEqual(reasoningOfCompletion({ choices: "nope" }), []);
  assert.deepEqual(reasoningOfCompletion(null), []);
});

test("a stream: an entry's pieces (same index and type) joined, fields a later piece names first kept", () => {
  const stream = new StreamedReasoning(1_000_000);
  const chunk = (delta: unknown, index = 0) => ({ choices: [{ index, delta }] });
  stream.push(chunk({ reasoning_details: [{ type: "reasoning.text", text: "Look", index: 0 }] }));
  stream.push(chunk({ reasoning_details: [{ type: "reasoning.text", text: "ing.", format: "f", index: 0 }] }));
  assert.deepEqual(stream.all, [], "nothing to keep before a tool call is named");
  stream.push(chunk({ tool_calls: [{ index: 0, ...call("c1") }], reasoning_details: [encrypted] }));
  stream.push(chunk({ tool_calls: [{ index: 1, ...call("c2") }] }));
  stream.push(chunk({ reasoning_details: [{ type: "reasoning.summary", summary: "other choice" }] }, 1));
  stream.push("not a chunk");
  assert.deepEqual(stream.all, [
    {
      id: reasoningKeyOf("c1"),
      extra: { reasoning_details: [{ type: "reasoning.text", text: "Looking.", index: 0, format: "f" }, encrypted] },
    },
  ]);
});

test("a call named again later is looked up at its latest message (the look-up reads the newest first)", () => {
  const messages = [
    { role: "assistant", tool_calls: [call("c1")] },
    { role: "assistant", tool_calls: [call("c2")] },
    { role: "assistant", tool_calls: [call("c1")] },
  ];
  assert.deepEqual(reasoningKeysToRecall(messages), [reasoningKeyOf("c2"), reasoningKeyOf("c1")]);
});

test("given back to the assistant message whose first call was kept; a message that has an array keeps its own", () => {
  const mine = [{ type: "reasoning.text", text: "mine" }];
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", tool_calls: [call("c1"), call("c2")] },
    { role: "tool", tool_call_id: "c1", content: "ok" },
    { role: "assistant", tool_calls: [call("c3")], reasoning_details: mine },
    { role: "assistant", tool_calls: [call("c4")] },
  ];
  assert.deepEqual(reasoningKeysToRecall(messages), [reasoningKeyOf("c1"), reasoningKeyOf("c4")]);
  const recalled = new Map([
    [reasoningKeyOf("c1"), { reasoning_details: [encrypted] }],
    [reasoningKeyOf("c3"), { reasoning_details: [encrypted] }],
  ]);
  const out = withRecalledReasoning(messages, recalled);
  assert.deepEqual(out[1], { role: "assistant", tool_calls: [call("c1"), call("c2")], reasoning_details: [encrypted] });
  assert.equal(out[3], messages[3]);
  assert.equal(out[4], messages[4]);
  assert.equal("reasoning_details" in (messages[1] ?? {}), false, "the client's object is not changed");
  assert.equal(withRecalledReasoning(messages, new Map()), messages);
  assert.equal(withRecalledReasoning(messages, new Map([["c1", { reasoning_details: [] }]])), messages);
});

test("a stream whose first piece names an empty signature: the signature a later piece brings is the entry's", () => {
  // As OpenRouter streams Claude's thinking (a recorded anthropic/claude-sonnet-4 stream): the first piece holds
  // `"text":"","signature":""`, the text follows, the signature comes whole in a later piece of the same index.
  const stream = new StreamedReasoning(1_000_000);
  const piece = (fields: Record<string, unknown>) => ({
    choices: [{ index: 0, delta: { reasoning_details: [{ type: "reasoning.text", index: 0, ...fields }] } }],
  });
  stream.push(piece({ text: "", signature: "", format: "anthropic-claude-v1" }));
  stream.push(piece({ text: "Weather ", format: "anthropic-claude-v1" }));
  stream.push(piece({ text: "first.", format: "anthropic-claude-v1" }));
  stream.push(piece({ text: "", signature: "EqQBCkgIARABGAIiQL+sig==", format: "anthropic-claude-v1" }));
  stream.push({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...call("toolu_1") }] } }] });
  assert.deepEqual(stream.all, [
    {
      id: reasoningKeyOf("toolu_1"),
      extra: {
        reasoning_details: [
          {
            type: "reasoning.text",
            index: 0,
            text: "Weather first.",
            signature: "EqQBCkgIARABGAIiQL+sig==",
            format: "anthropic-claude-v1",
          },
        ],
      },
    },
  ]);
});

test("a stream: reasoning.encrypted entries come whole, two sharing an index are two (never one appended blob)", () => {
  const stream = new StreamedReasoning(1_000_000);
  const first = { type: "reasoning.encrypted", data: "c2lnLW9uZQ==", id: "c1", format: "google-gemini-v1", index: 0 };
  const second = { type: "reasoning.encrypted", data: "c2lnLXR3bw==", id: "c2", format: "google-gemini-v1", index: 0 };
  stream.push({
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...call("c1") }], reasoning_details: [first] } }],
  });
  stream.push({
    choices: [{ index: 0, delta: { tool_calls: [{ index: 1, ...call("c2") }], reasoning_details: [second] } }],
  });
  assert.deepEqual(stream.all, [{ id: reasoningKeyOf("c1"), extra: { reasoning_details: [first, second] } }]);
});

test("a stream's array past the bound is dropped and gathered no more; another choice's is still kept", () => {
  const stream = new StreamedReasoning(10_000);
  const chunk = (delta: unknown, index = 0) => ({ choices: [{ index, delta }] });
  const piece = (text: string) => ({ type: "reasoning.text", text, format: "anthropic-claude-v1", index: 0 });
  stream.push(chunk({ tool_calls: [call("c1")] }));
  stream.push(chunk({ tool_calls: [call("c2")], reasoning_details: [piece("short")] }, 1));
  // An endless stream of thinking: 1,000 pieces of 100 bytes, ten times the bound.
  for (let count = 0; count < 1_000; count++) stream.push(chunk({ reasoning_details: [piece("x".repeat(100))] }));
  stream.push(chunk({ reasoning_details: [{ type: "reasoning.text", signature: "sig", index: 0 }] }));
  assert.deepEqual(stream.all, [{ id: reasoningKeyOf("c2"), extra: { reasoning_details: [piece("short")] } }]);
});

test("a stream's pieces under the bound are counted by what they add, not by their repeated fields", () => {
  // 2,000 pieces of 10 bytes of text: each piece's JSON is ~70 bytes (140 KB in all), the joined entry ~20 KB.
  const stream = new StreamedReasoning(30_000);
  const chunk = (delta: unknown) => ({ choices: [{ index: 0, delta }] });
  for (let count = 0; count < 2_000; count++)
    stream.push(chunk({ reasoning_details: [{ type: "reasoning.text", text: "0123456789", index: 0, format: "f" }] }));
  stream.push(chunk({ tool_calls: [call("c1")] }));
  const details = stream.all[0]?.extra.reasoning_details as { text: string }[] | undefined;
  assert.equal(details?.length, 1);
  assert.equal(details?.[0]?.text.length, 20_000);
});

test("given back up to 32 MiB a request, the latest messages first: a shared store holds more, and an upstream body no more", () => {
  // 40 kept arrays of ~1 MiB (a client's long session in Redis, which has no total bound) named by one small history.
  const big = { type: "reasoning.text", text: "x".repeat(1_000_000), format: "anthropic-claude-v1", index: 0 };
  const messages = Array.from({ length: 40 }, (_, index) => ({
    role: "assistant",
    content: "",
    tool_calls: [{ id: `c${index}`, type: "function", function: { name: "f", arguments: "{}" } }],
  }));
  const recalled = new Map(messages.map((_, index) => [reasoningKeyOf(`c${index}`), { reasoning_details: [big] }]));
  const out = withRecalledReasoning(messages, recalled) as { reasoning_details?: unknown }[];
  const given = out.flatMap((message, index) => (message.reasoning_details === undefined ? [] : [index]));
  assert.equal(given.length, 33, "33 arrays of ~1,000,070 bytes fit in 32 MiB");
  assert.equal(given[0], 7, "the oldest go without");
  assert.equal(given.at(-1), 39);
});
