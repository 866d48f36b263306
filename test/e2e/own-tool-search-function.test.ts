// A Responses client's own function named `tool_search`, with no client-run tool search (the openai SDK, not Codex):
// since tool-leftovers it goes upstream as `tool_search_<hash>` on every request (responses/tool-names.ts), so each
// way back must give the client its own name: the JSON answer, the stream, a previous_response_id continuation (the
// kept call and the offered tool one function upstream), the stored response and its input items.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

const TOOLS = [
  {
    type: "function" as const,
    name: "tool_search",
    description: "Search the catalogue.",
    parameters: { type: "object", properties: { terms: { type: "string" } } },
    strict: false,
  },
];

interface SentBody {
  tools?: { function: { name: string } }[];
  messages: { tool_calls?: { function: { name: string } }[] }[];
}

function sent(index: number, mock: Parameters<typeof chatRequests>[0]): SentBody {
  return chatRequests(mock)[index]?.body as SentBody;
}

test("a client's own tool_search function comes back by its name: JSON, stream, continuation, stored", async (t) => {
  const { mock, gateway } = await oneProviderScene(t);
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  // The upstream name is learned from the first request, then the model calls it so.
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Which terms?", VENDOR_MODEL_ID) });
  await client.responses.create({ model: "m", input: "Find lamps", tools: TOOLS, store: false });
  const upstream = sent(0, mock).tools?.[0]?.function.name ?? "";
  assert.match(upstream, /^tool_search_[0-9a-f]{8}$/);

  const call = (id: string) => [{ id, name: upstream, arguments: '{"terms":"lamp"}' }];
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(VENDOR_MODEL_ID, call("call_1")) });
  const first = await client.responses.create({ model: "m", input: "Find lamps", tools: TOOLS });
  const firstCall = first.output.find((item) => item.type === "function_call");
  assert.equal(firstCall?.name, "tool_search", JSON.stringify(first.output));

  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(VENDOR_MODEL_ID, call("call_2")) });
  const streamed = await client.responses.stream({ model: "m", input: "Find lamps", tools: TOOLS }).finalResponse();
  const streamedCall = streamed.output.find((item) => item.type === "function_call");
  assert.equal(streamedCall?.name, "tool_search", JSON.stringify(streamed.output));

  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Two lamps.", VENDOR_MODEL_ID) });
  const next = await client.responses.create({
    model: "m",
    tools: TOOLS,
    previous_response_id: first.id,
    input: [{ type: "function_call_output", call_id: "call_1", output: "2 lamps" }],
  });
  const continued = sent(3, mock);
  const historyNames = continued.messages.flatMap((message) => (message.tool_calls ?? []).map((c) => c.function.name));
  assert.deepEqual(historyNames, [upstream], "the kept call names the offered function");
  assert.equal(continued.tools?.[0]?.function.name, upstream);

  const stored = await client.responses.retrieve(first.id);
  assert.equal(stored.output.find((item) => item.type === "function_call")?.name, "tool_search");
  const items = await client.responses.inputItems.list(next.id);
  assert.ok(
    !JSON.stringify(items.data).includes(upstream),
    `input items hold the client's names only: ${JSON.stringify(items.data)}`,
  );
});
