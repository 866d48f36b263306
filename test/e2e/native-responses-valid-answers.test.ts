// The other side of native-responses-bad-answers.test.ts: every output item type OpenAI's Responses API documents
// (reasoning with no content, function_call, web_search_call, file_search_call, image_generation_call, mcp_list_tools,
// computer_call, a message holding a refusal part, optional fields left out), an incomplete answer with
// `output: []` and a queued background answer with `output: []` are answers: the first candidate serves them, no
// failover, no bad_response. Coverage of upstream/responses-answer.ts (its check must not refuse a valid answer).
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";

const RESPONSES_ROUTE = "POST /v1/responses";

const BASE = { id: "resp_upstream", object: "response", status: "completed", model: "n" };
const USAGE = { input_tokens: 3, output_tokens: 2, total_tokens: 5 };

const VALID: Record<string, Record<string, unknown>> = {
  "a reasoning item with no content and a message": {
    ...BASE,
    output: [
      { type: "reasoning", id: "rs_1", summary: [] },
      {
        type: "message",
        id: "msg_1",
        role: "assistant",
        status: "completed",
        content: [{ type: "output_text", text: "Served.", annotations: [] }],
      },
    ],
    usage: USAGE,
  },
  "a function_call": {
    ...BASE,
    output: [
      {
        type: "function_call",
        id: "fc_1",
        call_id: "call_1",
        name: "get_weather",
        arguments: '{"city":"Paris"}',
        status: "completed",
      },
    ],
    usage: USAGE,
  },
  "a web_search_call": {
    ...BASE,
    output: [{ type: "web_search_call", id: "ws_1", status: "completed", action: { type: "search", query: "x" } }],
    usage: USAGE,
  },
  "a file_search_call": {
    ...BASE,
    output: [{ type: "file_search_call", id: "fs_1", status: "completed", queries: ["x"], results: null }],
    usage: USAGE,
  },
  "an image_generation_call": {
    ...BASE,
    output: [{ type: "image_generation_call", id: "ig_1", status: "completed", result: "iVBORw0KGgo=" }],
    usage: USAGE,
  },
  "an mcp_list_tools": {
    ...BASE,
    output: [{ type: "mcp_list_tools", id: "mcpl_1", server_label: "deepwiki", tools: [] }],
    usage: USAGE,
  },
  "a computer_call": {
    ...BASE,
    output: [
      {
        type: "computer_call",
        id: "cu_1",
        call_id: "call_2",
        action: { type: "screenshot" },
        pending_safety_checks: [],
        status: "completed",
      },
    ],
    usage: USAGE,
  },
  "an mcp_call and a code_interpreter_call": {
    ...BASE,
    output: [
      {
        type: "mcp_call",
        id: "mcp_1",
        server_label: "docs",
        name: "lookup",
        arguments: "{}",
        output: "x",
        error: null,
      },
      {
        type: "code_interpreter_call",
        id: "ci_1",
        code: "1+1",
        container_id: "cntr_1",
        outputs: null,
        status: "completed",
      },
    ],
    usage: USAGE,
  },
  "a message with a refusal part": {
    ...BASE,
    output: [
      {
        type: "message",
        id: "msg_1",
        role: "assistant",
        status: "completed",
        content: [{ type: "refusal", refusal: "I can't help with that." }],
      },
    ],
    usage: USAGE,
  },
  // The fields upstream/responses-answer.ts checks, in their optional forms: a part without `annotations` (OpenRouter
  // types them optional) or with `null`, a namespaced call, a custom tool's call.
  "output_text parts without annotations and with null ones": {
    ...BASE,
    output: [
      {
        type: "message",
        id: "msg_1",
        role: "assistant",
        status: "completed",
        content: [
          { type: "output_text", text: "Served." },
          { type: "output_text", text: " Again.", annotations: null },
        ],
      },
    ],
    usage: USAGE,
  },
  "a namespaced function_call and a custom_tool_call": {
    ...BASE,
    output: [
      { type: "function_call", id: "fc_1", call_id: "call_1", namespace: "crm", name: "lookup", arguments: "{}" },
      { type: "custom_tool_call", id: "ct_1", call_id: "call_2", name: "shell", input: "ls -la" },
    ],
    usage: USAGE,
  },
  "an incomplete answer with no output": {
    ...BASE,
    status: "incomplete",
    incomplete_details: { reason: "max_output_tokens" },
    output: [],
    usage: USAGE,
  },
  "a queued background answer": { ...BASE, status: "queued", background: true, output: [], usage: null },
};

interface ListedRecord {
  readonly id: string;
  readonly attempts: readonly { provider: string; outcome: string }[];
}

for (const [what, answer] of Object.entries(VALID)) {
  test(`a native Responses answer with ${what} is served by its first candidate`, async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const provider = (name: string, baseUrl: string) =>
      `  - name: ${name}\n    base_url: ${baseUrl}\n    api_key: sk-${name}\n    responses_api: native\n    retries: 0\n    models:\n      n: { id: n }\n`;
    const gateway = await useGateway(
      t,
      `providers:\n${provider("first", first.baseUrl)}${provider("second", second.baseUrl)}request_log:\n  enabled: true\n`,
    );
    first.setDefault(RESPONSES_ROUTE, { kind: "json", body: answer });
    second.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output: [] } });
    const response = await send(gateway, "POST", "/v1/responses", { body: { model: "n", input: "hi" } });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual((response.json as { output: unknown }).output, answer.output);
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=5");
    const record = (listed.json as { data: ListedRecord[] }).data.find(
      (candidate) => candidate.id === response.headers["x-request-id"],
    );
    assert.ok(record, "no record");
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [["first", "success"]],
    );
  });
}
