// What the real client libraries do with answers that are valid for the provider but not what OpenAI or Anthropic
// would send, found by a conformance sweep of the front doors (docs/protocols.md): each test runs a real client
// against the gateway and a scripted Chat Completions upstream, and fails on the gateway before its fix.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { z } from "zod";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-noargs",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

/**
 * A call of `now` (a function without parameters) as some providers send it: streamed with no `arguments` at all,
 * or as JSON with `arguments: ""`.
 */
function callWithoutArguments(isStream: boolean): MockStep {
  if (isStream) {
    const opening = { index: 0, id: "call_now", type: "function", function: { name: "now" } };
    return {
      kind: "sse",
      events: [chunk({ role: "assistant", content: null }), chunk({ tool_calls: [opening] }), chunk({}, "tool_calls")],
    };
  }
  const call = { id: "call_now", type: "function", function: { name: "now", arguments: "" } };
  const completion = chatCompletion("", UPSTREAM_ID);
  const choice = { index: 0, message: { role: "assistant", content: null, tool_calls: [call] } };
  return {
    kind: "json",
    body: { ...completion, choices: [{ ...choice, logprobs: null, finish_reason: "tool_calls" }] },
  };
}

describe("a call of a function without parameters that the provider sent without arguments", () => {
  const cases = [
    { door: "Responses", useResponses: true, isStream: true },
    { door: "Responses", useResponses: true, isStream: false },
    { door: "Chat Completions", useResponses: false, isStream: true },
    { door: "Chat Completions", useResponses: false, isStream: false },
  ];
  for (const { door, useResponses, isStream } of cases) {
    test(`Agents SDK over ${door}${isStream ? ", streamed" : ""}: the tool runs with {} (it was told its arguments were invalid JSON)`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      setTracingDisabled(true);
      const runner = new Runner({
        modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl, useResponses }),
      });
      const ran: unknown[] = [];
      const now = agentTool({
        name: "now",
        description: "The time",
        parameters: z.object({}),
        execute: async (input) => {
          ran.push(input);
          return "noon";
        },
      });
      const agent = new Agent({ name: "Clock", instructions: "Tell the time.", model: "m", tools: [now] });
      mock.enqueue(CHAT_ROUTE, callWithoutArguments(isStream));
      mock.enqueue(
        CHAT_ROUTE,
        isStream
          ? { kind: "sse", events: chatStream(["It is noon."], UPSTREAM_ID, { usage: true }) }
          : { kind: "json", body: chatCompletion("It is noon.", UPSTREAM_ID) },
      );
      let finalOutput: unknown;
      if (isStream) {
        const result = await runner.run(agent, "What time is it?", { stream: true });
        for await (const _event of result) {
          // Drained.
        }
        await result.completed;
        finalOutput = result.finalOutput;
      } else {
        finalOutput = (await runner.run(agent, "What time is it?")).finalOutput;
      }
      assert.equal(finalOutput, "It is noon.");
      assert.deepEqual(ran, [{}]);
      const second = chatRequests(mock)[1]?.body as {
        messages: { role: string; content?: unknown; tool_calls?: unknown }[];
      };
      const [assistant, toolMessage] = second.messages.slice(-2);
      assert.deepEqual(assistant?.tool_calls, [
        { id: "call_now", type: "function", function: { name: "now", arguments: "{}" } },
      ]);
      assert.deepEqual(toolMessage, { role: "tool", tool_call_id: "call_now", content: "noon" });
    });
  }
});
