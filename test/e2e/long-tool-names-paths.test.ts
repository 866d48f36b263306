// The chat door's long tool names (long-tool-names.test.ts) on the ways an answer reaches a client other than the
// live one: a kept answer of the answer cache (kept under the shortened names, since the cache key is the body as it
// goes upstream) and a Batch API line's result. Each must carry the client's own name.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createBatch, isFinished, linesOf, upload, waitForBatch } from "../helpers/batches-scene.ts";
import { toolCallCompletion } from "../helpers/chat-tool-calls.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  oneProviderYaml,
  openAiClient,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import type { MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";

const LONG_NAME = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_label_and_space_key";
const BODY = {
  model: "m",
  messages: [{ role: "user" as const, content: "Find the runbooks." }],
  tools: [{ type: "function" as const, function: { name: LONG_NAME, parameters: { type: "object", properties: {} } } }],
};

/** The mock calls the tool the request offers, by the name it got. */
function callingOfferedTool(mock: MockUpstream): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const name = (request.body as { tools: { function: { name: string } }[] }).tools[0]?.function.name ?? "";
    return { kind: "json", body: toolCallCompletion(VENDOR_MODEL_ID, [{ id: "call_1", name, arguments: "{}" }]) };
  });
}

function offeredName(mock: MockUpstream): string | undefined {
  const body = chatRequests(mock)[0]?.body as { tools?: { function: { name: string } }[] } | undefined;
  return body?.tools?.[0]?.function.name;
}

test("answer cache: a kept answer's call comes back under the client's long name", async (t) => {
  const mock = await useMock(t);
  callingOfferedTool(mock);
  const gateway = await useGateway(t, `${oneProviderYaml(mock)}cache:\n  enabled: true\n`);
  const client = openAiClient(gateway);
  const first = await client.chat.completions.create(BODY).withResponse();
  assert.equal(first.response.headers.get("x-gateway-cache"), "miss");
  assert.notEqual(offeredName(mock), LONG_NAME, "shortened upstream");
  const second = await client.chat.completions.create(BODY).withResponse();
  assert.equal(second.response.headers.get("x-gateway-cache"), "hit");
  assert.equal(chatRequests(mock).length, 1);
  const call = second.data.choices[0]?.message.tool_calls?.[0];
  assert.equal(call?.type === "function" ? call.function.name : undefined, LONG_NAME);
});

test("Batch API: a chat line's call comes back under the client's long name", async (t) => {
  const mock = await useMock(t);
  callingOfferedTool(mock);
  const gateway = await useGateway(t, oneProviderYaml(mock));
  const client = openAiClient(gateway);
  const line = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: BODY });
  const file = await upload(client, `${line}\n`);
  const batch = await waitForBatch(client, (await createBatch(client, file.id)).id, isFinished);
  assert.equal(batch.status, "completed", JSON.stringify(batch));
  assert.notEqual(offeredName(mock), LONG_NAME, "shortened upstream");
  const [result] = await linesOf(client, batch.output_file_id);
  const body = (
    result?.response as { body?: { choices: { message: { tool_calls: { function: { name: string } }[] } }[] } }
  )?.body;
  assert.equal(body?.choices[0]?.message.tool_calls[0]?.function.name, LONG_NAME, JSON.stringify(result));
});
