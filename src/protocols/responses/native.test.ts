import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamInterruptedError } from "../../errors/gateway-error.ts";
import { DEFAULT_ECHO } from "../__fixtures__/fixtures.ts";
import { chatToInputItems, fromNativeResponse, NativeResponsesRelay, toNativeBody } from "./native.ts";
import type { ResponseLookup } from "./request-mapping.ts";
import type { ResponseEcho, ResponseObject } from "./response-object.ts";

const echo: ResponseEcho = { ...DEFAULT_ECHO, previous_response_id: "resp_prev" };

const context = { id: "resp_gw", echo, createdAtSeconds: 1, fallbackModel: "served-id" };

const lookup: ResponseLookup = {
  get: (id) =>
    id === "resp_prev"
      ? {
          response: {} as ResponseObject,
          conversation: [
            {
              role: "user",
              content: [
                { type: "text", text: "Look" },
                { type: "image_url", image_url: { url: "https://x/a.png" } },
              ],
            },
            {
              role: "assistant",
              content: null,
              tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }],
            },
            { role: "tool", tool_call_id: "call_1", content: "42" },
            { role: "assistant", content: "It is 42." },
          ],
        }
      : undefined,
  findItem: (id) =>
    id === "msg_kept"
      ? { id, type: "message", status: "completed", role: "assistant", content: [{ type: "refusal", refusal: "No." }] }
      : id === "rs_kept"
        ? { id, type: "reasoning", status: "completed", summary: [] }
        : undefined,
};

test("native body: gateway fields out, history and references expanded, store false, the rest as sent", () => {
  const body = toNativeBody(
    {
      model: "m",
      models: ["backup"],
      previous_response_id: "resp_prev",
      store: true,
      reasoning: { effort: "high" },
      input: [
        { type: "item_reference", id: "rs_kept" },
        { type: "item_reference", id: "msg_kept" },
        { role: "user", content: "Why?" },
      ],
    },
    lookup,
  );
  assert.deepEqual(body, {
    model: "m",
    reasoning: { effort: "high" },
    store: false,
    input: [
      {
        type: "message",
        role: "user",
        content: [
          { type: "input_text", text: "Look" },
          { type: "input_image", image_url: "https://x/a.png", detail: "auto" },
        ],
      },
      { type: "function_call", call_id: "call_1", name: "f", arguments: "{}" },
      { type: "function_call_output", call_id: "call_1", output: "42" },
      { type: "message", role: "assistant", content: "It is 42." },
      { type: "message", status: "completed", role: "assistant", content: [{ type: "refusal", refusal: "No." }] },
      { role: "user", content: "Why?" },
    ],
  });
  assert.deepEqual(chatToInputItems([{ role: "system", content: "S" }]), [
    { type: "message", role: "system", content: "S" },
  ]);
});

test("native body: a kept call of a namespace's member or custom tool goes back as the client made it, not as its flat function", () => {
  const tools = [
    { type: "namespace", name: "crm", description: "CRM", tools: [{ type: "function", name: "lookup" }] },
    { type: "custom", name: "apply_patch" },
  ];
  const kept: ResponseLookup = {
    get: () => ({
      response: { tools } as unknown as ResponseObject,
      conversation: [
        { role: "user", content: "Go" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "c1", type: "function", function: { name: "crm__lookup", arguments: "{}" } },
            { id: "c2", type: "function", function: { name: "apply_patch", arguments: '{"input":"*** Begin Patch"}' } },
          ],
        },
      ],
    }),
    findItem: () => undefined,
  };
  const body = toNativeBody({ model: "m", tools, previous_response_id: "resp_prev", input: "next" }, kept);
  assert.deepEqual((body.input as unknown[]).slice(1, 3), [
    { type: "function_call", call_id: "c1", name: "lookup", namespace: "crm", arguments: "{}" },
    { type: "custom_tool_call", call_id: "c2", name: "apply_patch", input: "*** Begin Patch" },
  ]);
});

test("native JSON: the gateway's id, the client's store and previous_response_id, output_text filled in", () => {
  const response = fromNativeResponse(
    {
      id: "resp_up",
      object: "response",
      status: "completed",
      model: "",
      store: false,
      output: [
        {
          id: "msg_1",
          type: "message",
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Hi", annotations: [] }],
        },
      ],
    },
    context,
  );
  assert.equal(response.id, "resp_gw");
  assert.equal(response.store, true);
  assert.equal(response.previous_response_id, "resp_prev");
  assert.equal(response.model, "served-id", "a response without a model names the one the gateway called");
  assert.equal(response.output_text, "Hi");
  assert.throws(() => fromNativeResponse({ choices: [] }, context), /not a Responses API response/);
});

test("native stream: the final event is held until finish(); a break before any event still fails cleanly", () => {
  const relay = new NativeResponsesRelay(context);
  const created = relay.push({ type: "response.created", sequence_number: 7, response: { id: "resp_up", output: [] } });
  assert.match(created, /^event: response\.created\n/);
  assert.equal((JSON.parse(created.split("data: ")[1] ?? "") as { sequence_number: number }).sequence_number, 0);
  assert.match(created, /"id":"resp_gw"/);
  const done = relay.push({ type: "response.completed", response: { id: "resp_up", status: "completed", output: [] } });
  assert.equal(done, "", "held back: the answer is kept before the client reads its end");
  assert.match(relay.finish(), /^event: response\.completed\n.*"sequence_number":1/s);
  assert.equal(relay.result?.id, "resp_gw");

  const broken = new NativeResponsesRelay(context);
  const text = broken.fail(new StreamInterruptedError("cut"));
  const events = text
    .trim()
    .split("\n\n")
    .map((block) => JSON.parse(block.split("data: ")[1] ?? "") as Record<string, unknown>);
  assert.deepEqual(
    events.map((event) => event.type),
    ["error", "response.failed"],
  );
  const failed = events[1]?.response as { id: string; status: string; model: string };
  assert.deepEqual([failed.id, failed.status, failed.model], ["resp_gw", "failed", "served-id"]);
});

test("native body: `conversation` out, its items before the input without the gateway's ids and reasoning", () => {
  const items = [
    { id: "msg_1", type: "message", status: "completed", role: "user", content: [{ type: "input_text", text: "Hi" }] },
    { id: "rs_1", type: "reasoning", summary: [] },
    { id: "fc_1", type: "function_call", status: "completed", call_id: "call_1", name: "f", arguments: "{}" },
  ];
  const withConversation: ResponseLookup = {
    ...lookup,
    conversationItems: (id) => (id === "conv_a" ? items : undefined),
  };
  assert.deepEqual(toNativeBody({ model: "m", conversation: { id: "conv_a" }, input: "Next" }, withConversation), {
    model: "m",
    input: [
      { type: "message", status: "completed", role: "user", content: [{ type: "input_text", text: "Hi" }] },
      { type: "function_call", status: "completed", call_id: "call_1", name: "f", arguments: "{}" },
      { type: "message", role: "user", content: "Next" },
    ],
    store: false,
  });
});

test("native answer: the client's `conversation` is shown, not the provider's", () => {
  const answer = { id: "resp_up", model: "up", conversation: null, output: [] };
  const withConversation = { ...context, echo: { ...echo, conversation: { id: "conv_a" } } };
  assert.deepEqual(fromNativeResponse(answer, withConversation).conversation, { id: "conv_a" });
  assert.equal(fromNativeResponse(answer, context).conversation, null);
});

test("native body: a continuation offers the tools its previous response's conversation loaded, besides the request's own", () => {
  const search = { type: "tool_search", execution: "client" };
  const member = (name: string) => ({ type: "function", name, parameters: { type: "object", properties: {} } });
  const loaded: ResponseLookup = {
    get: (id) =>
      id === "resp_prev"
        ? {
            response: { tools: [search] } as unknown as ResponseObject,
            conversation: [{ role: "user", content: "Find a tool." }],
            loadedTools: [{ type: "namespace", name: "mcp__a", tools: [member("x")] }, member("found")],
          }
        : undefined,
    findItem: () => undefined,
  };
  const body = toNativeBody(
    { model: "m", tools: [search, member("found")], previous_response_id: "resp_prev", input: "Use it." },
    loaded,
  );
  assert.deepEqual(body.tools, [search, member("found"), { type: "namespace", name: "mcp__a", tools: [member("x")] }]);
  // Nothing loaded: the request's tools as they came.
  const plain = toNativeBody({ model: "m", tools: [search], previous_response_id: "resp_prev", input: "x" }, lookup);
  assert.deepEqual(plain.tools, [search]);
});

test("native body: a reasoning item a translated answer gave (the gateway's encrypted_content) is dropped", () => {
  const ownReasoning = { type: "reasoning", summary: [], encrypted_content: "gateway-reasoning-v1:VGhpbms=" };
  const openAiReasoning = { type: "reasoning", summary: [], encrypted_content: "gAAAA-openai" };
  const body = toNativeBody(
    { model: "m", input: [ownReasoning, openAiReasoning, { role: "user", content: "x" }] },
    lookup,
  );
  assert.deepEqual(body.input, [openAiReasoning, { role: "user", content: "x" }]);
});
