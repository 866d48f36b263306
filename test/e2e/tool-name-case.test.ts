// A provider that answers a call of a shortened tool name (long-tool-names.test.ts) in another letter case: some
// lower-case the function names they answer with, so `mcp__Acme-Confluence__searchPagesByLabel…_1a2b3c4d` came back
// `mcp__acme-confluence__searchpagesbylabel…_1a2b3c4d`, matched no name the gateway had shortened, and reached the
// client under a name it never offered. It maps back case-insensitively on every door (when no other offered name
// reads the same ignoring case).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { functionNameCheckingUpstream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

// 81 characters, upper-case letters in it (Claude Code keeps an MCP server's and tool's own spelling).
const LONG_NAME = "mcp__Acme-Confluence__searchPagesByLabelAndSpaceKeyIncludingArchivedAndDraftPages";
const ARGUMENTS = '{"label":"runbook"}';
const PARAMETERS = { type: "object", properties: { label: { type: "string" } } };
const lowerCased = (name: string): string => name.toLowerCase();

/** The name the upstream was offered: shortened, with upper-case letters the provider's answer left out. */
function offeredName(mock: MockUpstream): string {
  const sent = chatRequests(mock).at(-1)?.body as { tools?: { function: { name: string } }[] } | undefined;
  const name = sent?.tools?.[0]?.function.name;
  assert.ok(name !== undefined && name.length <= 64 && name !== name.toLowerCase(), name);
  return name;
}

describe("a shortened tool name answered lower-cased maps back to the client's name", () => {
  for (const isStream of [false, true]) {
    const mode = isStream ? "streamed" : "JSON";
    test(`chat door, ${mode}: the openai SDK gets the call under its own name`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS, lowerCased));
      const request = {
        model: "m",
        messages: [{ role: "user" as const, content: "Find the runbooks." }],
        tools: [{ type: "function" as const, function: { name: LONG_NAME, parameters: PARAMETERS } }],
      };
      const completion = isStream
        ? await client.chat.completions.stream(request).finalChatCompletion()
        : await client.chat.completions.create(request);
      const call = completion.choices[0]?.message.tool_calls?.[0];
      assert.equal(call?.type === "function" ? call.function.name : undefined, LONG_NAME);
      offeredName(mock);
    });

    test(`Responses door, ${mode}: the openai SDK gets the function_call under its own name`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS, lowerCased));
      const request = {
        model: "m",
        input: "Find the runbooks.",
        tools: [{ type: "function" as const, name: LONG_NAME, parameters: PARAMETERS, strict: false }],
      };
      const response = isStream
        ? await client.responses.stream(request).finalResponse()
        : await client.responses.create(request);
      const calls = response.output.flatMap((item) => (item.type === "function_call" ? [item.name] : []));
      assert.deepEqual(calls, [LONG_NAME]);
      offeredName(mock);
    });

    test(`Messages door, ${mode}: the Anthropic SDK gets the tool_use under its own name`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS, lowerCased));
      const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      const request = {
        model: "m",
        max_tokens: 200,
        tools: [{ name: LONG_NAME, input_schema: { type: "object" as const, properties: PARAMETERS.properties } }],
        messages: [{ role: "user" as const, content: "Find the runbooks." }],
      };
      const message = isStream
        ? await client.messages.stream(request).finalMessage()
        : await client.messages.create(request);
      const uses = message.content.flatMap((block) => (block.type === "tool_use" ? [block.name] : []));
      assert.deepEqual(uses, [LONG_NAME]);
      offeredName(mock);
    });
  }
});
