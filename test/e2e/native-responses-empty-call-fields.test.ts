// A native Responses candidate answering a message with no role, or a call whose `call_id` or `name` is an empty string (or whose `namespace` is
// empty or longer than the request schema takes): a bad_response, the next candidate serves the turn. Served as it
// came, the call was kept and joined its conversation, and every later turn of that conversation was refused with a
// 400 naming `conversation[1].call_id` (request-schema.ts takes no empty call id, name or namespace).
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const BASE = { id: "resp_upstream", object: "response", status: "completed", model: "n" };
const USAGE = { input_tokens: 3, output_tokens: 2, total_tokens: 5 };
const CALL = { type: "function_call", id: "fc_1", call_id: "call_1", name: "get_weather", arguments: "{}" };

const EMPTIED: Record<string, Record<string, unknown>> = {
  "an empty call_id": { ...CALL, call_id: "" },
  "an empty name": { ...CALL, name: "" },
  "an empty namespace": { ...CALL, namespace: "" },
  "a custom tool's empty call_id": { type: "custom_tool_call", id: "ct_1", call_id: "", name: "shell", input: "ls" },
  // Not a call, kept alike: a message with no role (or null) was a 400 naming `conversation[1].role` on the next turn.
  "a message with no role": { type: "message", id: "msg_1", status: "completed", content: [] },
  "a message whose role is null": { type: "message", id: "msg_1", role: null, status: "completed", content: [] },
  // A part with no type: a 400 naming `conversation[1].content` on the next turn.
  "a message part with no type": {
    type: "message",
    id: "msg_1",
    role: "assistant",
    status: "completed",
    content: [{ text: "Served.", annotations: [] }],
  },
};

for (const [what, bad] of Object.entries(EMPTIED)) {
  test(`a native answer with ${what} fails over, and the conversation's next turn is served`, async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const provider = (name: string, baseUrl: string) =>
      `  - name: ${name}\n    base_url: ${baseUrl}\n    api_key: sk-${name}\n    responses_api: native\n    retries: 0\n    models:\n      n: { id: n }\n`;
    const gateway = await useGateway(
      t,
      `providers:\n${provider("first", first.baseUrl)}${provider("second", second.baseUrl)}`,
    );
    const conversation = await send(gateway, "POST", "/v1/conversations", { body: {} });
    const conversationId = (conversation.json as { id: string }).id;
    first.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output: [bad], usage: USAGE } });
    second.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output: [CALL], usage: USAGE } });
    const turn = { model: "n", conversation: conversationId };
    const answered = await send(gateway, "POST", "/v1/responses", { body: { ...turn, input: "weather?" } });
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual((answered.json as { output: unknown[] }).output, [CALL]);
    first.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output: [], usage: USAGE } });
    const output = { type: "function_call_output", call_id: "call_1", output: "sunny" };
    const next = await send(gateway, "POST", "/v1/responses", { body: { ...turn, input: [output] } });
    assert.equal(next.status, 200, next.text);
  });
}
