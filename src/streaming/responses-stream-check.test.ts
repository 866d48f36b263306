import assert from "node:assert/strict";
import { test } from "node:test";
import { responsesEventInspector } from "./responses-stream-check.ts";

const response = { id: "resp_1", status: "in_progress", output: [] };
const message = { type: "message", id: "msg_1", role: "assistant", content: [{ type: "output_text", text: "Hi" }] };

/** The fault of each event of a stream, in order (undefined: none). */
function faults(events: readonly (Record<string, unknown> | string)[]): (string | undefined)[] {
  const inspect = responsesEventInspector();
  return events.map((event) => inspect({ data: typeof event === "string" ? event : JSON.stringify(event) }).fault);
}

const CREATED = { type: "response.created", response };
const ADDED = { type: "response.output_item.added", output_index: 0, item: { ...message, content: [] } };
const DONE_ITEM = { type: "response.output_item.done", output_index: 0, item: message };
const COMPLETED = { type: "response.completed", response: { ...response, status: "completed", output: [message] } };

test("a well-formed stream has no fault, hosted items and error events included", () => {
  const search = { type: "web_search_call", id: "ws_1", status: "completed", action: { type: "search" } };
  const hosted = [
    { type: "response.output_item.added", output_index: 1, item: { ...search, status: "in_progress" } },
    { type: "response.output_item.done", output_index: 1, item: search },
  ];
  const stream = [CREATED, ADDED, DONE_ITEM, ...hosted, COMPLETED, "[DONE]"];
  assert.deepEqual(
    faults(stream),
    stream.map(() => undefined),
  );
  assert.deepEqual(faults([{ type: "error", message: "overloaded" }]), [undefined]);
});

test("each malformed event is a fault, with why", () => {
  const cases: [string, (Record<string, unknown> | string)[], RegExp][] = [
    ["data that is not JSON", [CREATED, "{oops"], /not a JSON object/],
    ["no type", [CREATED, { delta: "x" }], /no `type`/],
    ["content before response.created", [ADDED], /before `response.created`/],
    ["a second response.created", [CREATED, CREATED], /second/],
    ["an item event before its added", [CREATED, DONE_ITEM], /before its `response.output_item.added`/],
    ["[DONE] before response.completed", [CREATED, ADDED, "[DONE]"], /\[DONE\]/],
    [
      "a done message with no role",
      [CREATED, ADDED, { ...DONE_ITEM, item: { ...message, role: undefined } }],
      /output_item.done.*role/,
    ],
    [
      "a completed output with a hosted item missing a required field",
      [CREATED, { ...COMPLETED, response: { ...COMPLETED.response, output: [{ type: "mcp_call", id: "m" }] } }],
      /mcp_call/,
    ],
    ["a completed without a response", [CREATED, { type: "response.completed" }], /without a `response`/],
  ];
  for (const [what, events, reason] of cases) {
    const found = faults(events);
    assert.deepEqual(
      found.slice(0, -1),
      events.slice(0, -1).map(() => undefined),
      what,
    );
    assert.match(String(found.at(-1)), reason, what);
  }
});

test("a server-run tool search (its call_id null, as OpenAI types ResponseToolSearchCall) is no fault", () => {
  // OpenAI's `tool_search` run by the server answers a tool_search_call and tool_search_output whose `call_id` is
  // null (openai-node 6.49 `ResponseToolSearchCall`, `ResponseToolSearchOutputItem`: `call_id: string | null`).
  const call = {
    type: "tool_search_call",
    id: "ts_1",
    call_id: null,
    execution: "server",
    arguments: {},
    status: "completed",
  };
  const output = {
    type: "tool_search_output",
    id: "tso_1",
    call_id: null,
    execution: "server",
    tools: [],
    status: "completed",
  };
  const items = [call, output, message];
  const stream = [
    CREATED,
    ...items.flatMap((item, index) => [
      { type: "response.output_item.added", output_index: index, item },
      { type: "response.output_item.done", output_index: index, item },
    ]),
    { type: "response.completed", response: { ...response, status: "completed", output: items } },
  ];
  assert.deepEqual(
    faults(stream),
    stream.map(() => undefined),
  );
});
