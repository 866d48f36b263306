// What the real client libraries do with answers that are valid for the provider but not what OpenAI or Anthropic
// would send, found by a conformance sweep of the front doors (docs/protocols.md): each test runs a real client
// against the gateway and a scripted Chat Completions upstream, and fails on the gateway before its fix.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
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

describe("Anthropic SDK: document blocks", () => {
  test("a document of content blocks (text and an image) reaches the upstream as that content (it was a 400)", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Two chunks.", UPSTREAM_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 50,
      messages: [
        {
          role: "user",
          content: [
            {
              type: "document",
              source: {
                type: "content",
                content: [
                  { type: "text", text: "First chunk." },
                  { type: "image", source: { type: "url", url: "https://example.com/chart.png" } },
                ],
              },
              title: "Notes",
              citations: { enabled: true },
            },
          ],
        },
        { role: "assistant", content: "Read." },
        {
          role: "user",
          content: [
            { type: "document", source: { type: "content", content: "A whole text." } },
            { type: "text", text: "Summarize both." },
          ],
        },
      ],
    });
    assert.equal(message.content[0]?.type === "text" ? message.content[0].text : "", "Two chunks.");
    assert.deepEqual(chatRequests(mock)[0]?.body, {
      model: UPSTREAM_ID,
      max_tokens: 50,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "First chunk." },
            { type: "image_url", image_url: { url: "https://example.com/chart.png" } },
          ],
        },
        { role: "assistant", content: "Read." },
        { role: "user", content: "A whole text.\nSummarize both." },
      ],
    });
  });

  test("a PDF by URL or by file id is a 400 saying why and what to send; nothing goes upstream", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const sources = [
      { source: { type: "url", url: "https://example.com/paper.pdf" }, why: /does not fetch documents/ },
      { source: { type: "file", file_id: "file_011" }, why: /keeps no uploaded files/ },
    ] as const;
    for (const { source, why } of sources) {
      const refused = await client.messages
        .create({
          model: "m",
          max_tokens: 50,
          messages: [
            {
              role: "user",
              content: [
                { type: "document", source },
                { type: "text", text: "Summarize." },
              ],
            },
          ],
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      assert.ok(refused instanceof Anthropic.BadRequestError, String(refused));
      const body = refused.error as { error?: { type?: string; message?: string } };
      assert.equal(body.error?.type, "invalid_request_error");
      assert.match(body.error?.message ?? "", /^messages\.0\.content\.0\.source\.type: /);
      assert.match(body.error?.message ?? "", why);
      assert.match(body.error?.message ?? "", /`base64`/);
    }
    assert.equal(chatRequests(mock).length, 0);
  });
});
