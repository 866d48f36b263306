import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { type GatewayError, InvalidRequestError, ResourceNotFoundError } from "../../errors/gateway-error.ts";
import { readCompletion } from "../__fixtures__/fixtures.ts";
import { sequentialIds } from "../ids.ts";
import { type ResponseLookup, toChatRequest, toCountedPrompt } from "./request-mapping.ts";
import { outputToChatMessages, toResponseObject } from "./response-mapping.ts";
import { ResponseStore } from "./response-store.ts";

const noStore: ResponseLookup = { get: () => undefined, findItem: () => undefined };

function newStore(): ResponseStore {
  return new ResponseStore({ maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 3_600_000 }, new ManualClock());
}

function rejects(
  body: unknown,
  expected: { status: number; code: string; param: string | null },
  lookup: ResponseLookup = noStore,
) {
  assert.throws(
    () => toChatRequest(body, lookup),
    (error: GatewayError) => {
      assert.deepEqual({ status: error.status, code: error.code, param: error.param }, expected);
      return true;
    },
  );
}

test("responses request: a string input becomes one user message; instructions a system message before it", () => {
  const { chatBody, isStream, shouldStore, conversation, echo } = toChatRequest(
    { model: "fast", input: "Hi", instructions: "Be brief." },
    noStore,
  );
  assert.deepEqual(chatBody, {
    model: "fast",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ],
  });
  assert.equal(isStream, false);
  assert.equal(shouldStore, true, "store defaults to true, as on OpenAI");
  assert.deepEqual(conversation, [{ role: "user", content: "Hi" }], "instructions are not kept for the next turn");
  assert.equal(echo.instructions, "Be brief.");
});

test("responses request: every translated field lands in the chat body; metadata and store stay out of it", () => {
  const { chatBody, echo } = toChatRequest(
    {
      model: "fast",
      models: ["backup"],
      input: "Hi",
      max_output_tokens: 300,
      temperature: 0.2,
      top_p: 0.9,
      user: "u-1",
      metadata: { team: "a" },
      store: false,
      stream: true,
      parallel_tool_calls: false,
      reasoning: { effort: "high" },
      tools: [
        {
          type: "function",
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          strict: true,
        },
      ],
      tool_choice: { type: "function", name: "get_weather" },
      text: {
        format: {
          type: "json_schema",
          name: "weather",
          schema: { type: "object", properties: { temp: { type: "number" } } },
          strict: true,
        },
      },
    },
    noStore,
  );
  assert.deepEqual(chatBody, {
    model: "fast",
    models: ["backup"],
    messages: [{ role: "user", content: "Hi" }],
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          strict: true,
        },
      },
    ],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: false,
    response_format: {
      type: "json_schema",
      json_schema: {
        name: "weather",
        schema: { type: "object", properties: { temp: { type: "number" } } },
        strict: true,
      },
    },
    max_tokens: 300,
    temperature: 0.2,
    top_p: 0.9,
    user: "u-1",
    stream: true,
    stream_options: { include_usage: true },
    x_gateway_reasoning_effort: "high",
  });
  assert.deepEqual(echo.metadata, { team: "a" });
  assert.equal(echo.store, false);
  assert.equal(echo.parallel_tool_calls, false);
});

test("responses request: content parts, images and json_object format", () => {
  const { chatBody } = toChatRequest(
    {
      model: "vision",
      text: { format: { type: "json_object" } },
      input: [
        { role: "developer", content: [{ type: "input_text", text: "Answer in JSON." }] },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "What is this?" },
            { type: "input_image", image_url: "data:image/png;base64,AAAA", detail: "low" },
          ],
        },
        {
          role: "user",
          content: [
            { type: "input_text", text: "a" },
            { type: "input_text", text: "b" },
          ],
        },
      ],
    },
    noStore,
  );
  assert.deepEqual(chatBody.messages, [
    { role: "system", content: "Answer in JSON." },
    {
      role: "user",
      content: [
        { type: "text", text: "What is this?" },
        { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } },
      ],
    },
    { role: "user", content: "ab" },
  ]);
  assert.deepEqual(chatBody.response_format, { type: "json_object" });
});

test("responses request: a function call output of images only says where they are (an empty tool message is refused by some providers)", () => {
  // Codex's view_image answers so: the screenshot and no text.
  const image = { type: "input_image", image_url: "data:image/png;base64,AAAA" };
  const { chatBody } = toChatRequest(
    {
      model: "m",
      input: [
        { role: "user", content: "Look at the screen." },
        { type: "function_call", call_id: "call_a", name: "view_image", arguments: "{}" },
        { type: "function_call", call_id: "call_b", name: "view_image", arguments: "{}" },
        { type: "function_call_output", call_id: "call_a", output: [image] },
        { type: "function_call_output", call_id: "call_b", output: [image, image] },
      ],
    },
    noStore,
  );
  const url = { url: "data:image/png;base64,AAAA" };
  assert.deepEqual(chatBody.messages.slice(2), [
    { role: "tool", tool_call_id: "call_a", content: "(image attached below)" },
    { role: "tool", tool_call_id: "call_b", content: "(2 images attached below)" },
    { role: "user", content: [1, 2, 3].map(() => ({ type: "image_url", image_url: url })) },
  ]);
  // Empty output without an image: a placeholder that says no more than that (providers refuse an empty tool message).
  const empty = toChatRequest(
    {
      model: "m",
      input: [
        { type: "function_call", call_id: "call_c", name: "true", arguments: "{}" },
        { type: "function_call_output", call_id: "call_c", output: [] },
      ],
    },
    noStore,
  );
  assert.deepEqual(empty.chatBody.messages.at(-1), { role: "tool", tool_call_id: "call_c", content: "(no output)" });
});

test("responses request: function calls join the assistant turn; outputs become tool messages in order", () => {
  const { chatBody } = toChatRequest(
    {
      model: "fast",
      input: [
        { role: "user", content: "Weather in Paris and Rome?" },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
        { type: "function_call", call_id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call", call_id: "call_b", name: "get_weather", arguments: '{"city":"Rome"}' },
        { type: "function_call_output", call_id: "call_a", output: "18C" },
        { type: "function_call_output", call_id: "call_b", output: [{ type: "input_text", text: "21C" }] },
        { type: "reasoning", id: "rs_1", summary: [] },
      ],
    },
    noStore,
  );
  assert.deepEqual(chatBody.messages, [
    { role: "user", content: "Weather in Paris and Rome?" },
    {
      role: "assistant",
      content: "Checking.",
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        { id: "call_b", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_a", content: "18C" },
    { role: "tool", tool_call_id: "call_b", content: "21C" },
  ]);
});

test("responses request: a reasoning item is the reasoning_content of the assistant message it led to", () => {
  const { chatBody } = toChatRequest(
    {
      model: "fast",
      input: [
        { role: "user", content: "Weather in Paris?" },
        // Its content (the whole reasoning) wins over its summary; encrypted_content is no chat provider's.
        {
          type: "reasoning",
          id: "rs_1",
          summary: [{ type: "summary_text", text: "short" }],
          content: [
            { type: "reasoning_text", text: "Paris: " },
            { type: "reasoning_text", text: "call the tool." },
          ],
          encrypted_content: "gAAAA-secret",
        },
        { type: "function_call", call_id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "reasoning", id: "rs_2", summary: [{ type: "summary_text", text: "Then answer." }] },
        { type: "message", role: "assistant", content: "Checking." },
        { type: "function_call_output", call_id: "call_a", output: "18C" },
        // Followed by no assistant output: it led to nothing that is sent.
        { type: "reasoning", id: "rs_3", summary: [{ type: "summary_text", text: "orphan" }] },
        { role: "user", content: "Thanks" },
        { type: "reasoning", id: "rs_4", summary: [] },
        { type: "message", role: "assistant", content: "You are welcome." },
      ],
    },
    noStore,
  );
  assert.deepEqual(chatBody.messages, [
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: "Checking.",
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      ],
      reasoning_content: "Paris: \ncall the tool.\nThen answer.",
    },
    { role: "tool", tool_call_id: "call_a", content: "18C" },
    { role: "user", content: "Thanks" },
    { role: "assistant", content: "You are welcome." },
  ]);
});

test("responses request: a message after function calls joins their assistant turn, so tool messages follow it", () => {
  // A streamed answer whose text came after its call is output [function_call, message]; clients send it back so.
  const { chatBody } = toChatRequest(
    {
      model: "fast",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
        { type: "function_call_output", call_id: "call_a", output: "18C" },
        { type: "message", role: "assistant", content: "It is 18C." },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: " Mild." }] },
      ],
    },
    noStore,
  );
  const call = { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } };
  assert.deepEqual(chatBody.messages, [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "Checking.", tool_calls: [call] },
    { role: "tool", tool_call_id: "call_a", content: "18C" },
    { role: "assistant", content: "It is 18C. Mild." },
  ]);
});

test("responses request: refused fields and values name the field in `param` and send nothing upstream", () => {
  rejects(
    { model: "m", input: "x", tools: [{ type: "local_shell" }] },
    { status: 400, code: "unsupported_value", param: "tools[0].type" },
  );
  rejects(
    {
      model: "m",
      input: "x",
      tools: [{ type: "namespace", name: "crm", description: "CRM", tools: [{ type: "namespace", name: "deep" }] }],
    },
    { status: 400, code: "unsupported_value", param: "tools[0].tools[0].type" },
  );
  rejects(
    { model: "m", input: "x", tools: [{ type: "namespace", name: "crm", description: "CRM" }] },
    { status: 400, code: "invalid_value", param: "tools[0].tools" },
  );
  rejects(
    { model: "m", input: "x", background: true, store: false },
    { status: 400, code: "invalid_value", param: "store" },
  );
  rejects(
    { model: "m", input: "x", prompt: { id: "p" } },
    { status: 400, code: "unsupported_parameter", param: "prompt" },
  );
  rejects(
    { model: "m", input: "x", tool_choice: { type: "file_search" } },
    { status: 400, code: "unsupported_value", param: "tool_choice.type" },
  );
  rejects(
    { model: "m", input: [{ role: "user", content: [{ type: "input_image", file_id: "file-1" }] }] },
    { status: 400, code: "unsupported_value", param: "input[0].content[0].image_url" },
  );
  // A hosted tool's item is taken as OpenAI's reference types it (responses-items.ts): its missing `output` is named.
  rejects(
    { model: "m", input: [{ type: "computer_call_output", call_id: "c" }] },
    { status: 400, code: "invalid_value", param: "input[0].output" },
  );
  rejects(
    { model: "m", input: [{ type: "hologram_call", call_id: "c" }] },
    { status: 400, code: "unsupported_value", param: "input[0].type" },
  );
  rejects(
    { model: "m", input: [{ type: "function_call", name: "f", arguments: "{}" }] },
    { status: 400, code: "invalid_value", param: "input[0].call_id" },
  );
  rejects({ input: "x" }, { status: 400, code: "invalid_value", param: "model" });
  rejects({ model: "m" }, { status: 400, code: "invalid_value", param: "input" });
  rejects(
    { model: "m", input: "x", text: { format: { type: "yaml" } } },
    { status: 400, code: "invalid_value", param: "text.format.type" },
  );
  rejects({ model: "m", input: "x", temperature: 3 }, { status: 400, code: "invalid_value", param: "temperature" });
  rejects(
    { model: "m", input: "x", previous_response_id: "resp_gone" },
    { status: 400, code: "previous_response_not_found", param: "previous_response_id" },
  );
  rejects(
    { model: "m", input: [{ type: "item_reference", id: "msg_gone" }] },
    { status: 404, code: "item_not_found", param: "input[0].id" },
  );
  assert.ok(
    new InvalidRequestError("x") instanceof Error &&
      new ResourceNotFoundError("x", { code: "item_not_found" }).status === 404,
  );
});

/** One turn: translate, answer with a recorded completion, keep it as the adapter will. */
function turn(store: ResponseStore, body: Record<string, unknown>, completion: string) {
  const translated = toChatRequest(body, store);
  const response = toResponseObject(readCompletion(completion), {
    echo: translated.echo,
    ids: sequentialIds(),
    createdAtSeconds: 1,
  });
  // Fixed ids per turn would collide in the store; give each turn its own.
  const id = `resp_turn${store.size + 1}`;
  const kept = {
    ...response,
    id,
    output: response.output.map((item) => ({ ...item, id: `${item.id}_t${store.size + 1}` })),
  };
  if (translated.shouldStore) {
    store.put({
      response: kept,
      conversation: [...translated.conversation, ...outputToChatMessages(kept.output, translated.toolNames)],
    });
  }
  return { translated, response: kept };
}

test("responses request: previous_response_id continues the conversation without the earlier instructions", () => {
  const store = newStore();
  const first = turn(
    store,
    {
      model: "m",
      instructions: "Be brief.",
      input: "Weather in Paris?",
      tools: [{ type: "function", name: "get_weather", parameters: {} }],
    },
    "tool-call",
  );
  assert.equal(first.response.output[0]?.type, "function_call");
  const second = turn(
    store,
    {
      model: "m",
      instructions: "Answer in French.",
      previous_response_id: first.response.id,
      input: [{ type: "function_call_output", call_id: "call_weather1", output: "18C" }],
    },
    "text",
  );
  assert.deepEqual(second.translated.chatBody.messages, [
    { role: "system", content: "Answer in French." },
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_weather1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_weather1", content: "18C" },
  ]);
  const third = turn(store, { model: "m", previous_response_id: second.response.id, input: "And tomorrow?" }, "text");
  assert.deepEqual(
    third.translated.chatBody.messages.map((message) => message.role),
    ["user", "assistant", "tool", "assistant", "user"],
  );
  assert.equal(third.translated.chatBody.messages[3]?.content, "Paris is the capital of France.");
});

test("responses request: item_reference items resolve to the kept output items (the AI SDK's multi-turn shape)", () => {
  const store = newStore();
  const first = turn(
    store,
    { model: "m", input: [{ role: "user", content: [{ type: "input_text", text: "Weather?" }] }] },
    "tool-call",
  );
  const callItem = first.response.output[0];
  assert.ok(callItem?.type === "function_call");
  const second = turn(
    store,
    {
      model: "m",
      input: [
        { role: "user", content: [{ type: "input_text", text: "Weather?" }] },
        { type: "item_reference", id: callItem.id },
        { type: "function_call_output", call_id: callItem.call_id, output: "18C" },
      ],
    },
    "text",
  );
  const answer = second.response.output[0];
  assert.ok(answer?.type === "message");
  const third = toChatRequest(
    {
      model: "m",
      input: [
        { role: "user", content: [{ type: "input_text", text: "Weather?" }] },
        { type: "item_reference", id: callItem.id },
        { type: "function_call_output", call_id: callItem.call_id, output: "18C" },
        { type: "item_reference", id: answer.id },
        { role: "user", content: [{ type: "input_text", text: "Thanks" }] },
      ],
    },
    store,
  );
  assert.deepEqual(third.chatBody.messages, [
    { role: "user", content: "Weather?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_weather1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_weather1", content: "18C" },
    { role: "assistant", content: "Paris is the capital of France." },
    { role: "user", content: "Thanks" },
  ]);
});

test("responses request: store: false keeps nothing to continue from", () => {
  const store = newStore();
  const first = turn(store, { model: "m", input: "Hi", store: false }, "text");
  assert.equal(store.size, 0);
  rejects(
    { model: "m", input: "again", previous_response_id: first.response.id },
    { status: 400, code: "previous_response_not_found", param: "previous_response_id" },
    store,
  );
});

test("input_tokens request: the prompt /v1/responses would send; model and input optional; refusals as there", () => {
  const body = { model: "m", instructions: "Be brief.", input: "Hi", tools: [{ type: "function", name: "f" }] };
  const translated = toChatRequest(body, noStore).chatBody;
  assert.deepEqual(toCountedPrompt({ ...body, stream: true, background: true }, noStore), {
    model: "m",
    messages: translated.messages,
    tools: translated.tools,
    isTruncated: false,
    plannedBody: translated,
  });
  const truncated = toCountedPrompt({ ...body, truncation: "auto", max_output_tokens: 300, models: ["n"] }, noStore);
  // Planned as /v1/responses would plan it: the output bound, the fallbacks.
  assert.deepEqual(
    [truncated.isTruncated, truncated.plannedBody?.max_tokens, truncated.plannedBody?.models],
    [true, 300, ["n"]],
  );
  const namespaced = {
    input: [
      { type: "function_call", call_id: "c1", name: "lookup", namespace: "crm", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "Ada" },
    ],
    tools: [{ type: "namespace", name: "crm", description: "CRM", tools: [{ type: "function", name: "lookup" }] }],
  };
  const counted = toCountedPrompt(namespaced, noStore);
  assert.deepEqual(
    counted.tools.map((tool) => tool.function.name),
    ["crm__lookup"],
    "a namespace's members are counted as the functions they become",
  );
  assert.deepEqual(counted.messages, toChatRequest({ model: "m", ...namespaced }, noStore).chatBody.messages);
  assert.equal(
    (counted.messages[0] as { tool_calls?: { function: { name: string } }[] }).tool_calls?.[0]?.function.name,
    "crm__lookup",
  );
  assert.deepEqual(toCountedPrompt({ instructions: "Be brief." }, noStore), {
    model: undefined,
    messages: [{ role: "system", content: "Be brief." }],
    tools: [],
    isTruncated: false,
    plannedBody: undefined,
  });
  const refusedBy = (countBody: unknown) => {
    try {
      toCountedPrompt(countBody, noStore);
    } catch (error) {
      const { status, code, param } = error as GatewayError;
      return { status, code, param };
    }
    return undefined;
  };
  assert.deepEqual(refusedBy({ input: "x", tool_choice: "required" }), {
    status: 400,
    code: "invalid_value",
    param: "tool_choice",
  });
  assert.deepEqual(refusedBy({ input: "x", conversation: "conv_1" }), {
    status: 404,
    code: "conversation_not_found",
    param: "conversation",
  });
  assert.equal(refusedBy({ input: "x", text: { format: { type: "xml" } } })?.status, 400);
  assert.equal(refusedBy({ input: "x", previous_response_id: "resp_gone" })?.status, 400);
  assert.equal(refusedBy({ model: "", input: "x" })?.param, "model");
});

test("responses: a namespace's name is bounded (it is part of every member's name): a long one is a quick 400", () => {
  const members = Array.from({ length: 500 }, (_, index) => ({ type: "function", name: `f${index}` }));
  const body = (name: string) => ({ model: "m", input: "hi", tools: [{ type: "namespace", name, tools: members }] });
  assert.equal(toChatRequest(body("n".repeat(256)), noStore).chatBody.tools?.length, 500);
  // Before, every member's name and lookups were made from the whole name: this 117 KB body took 5.5 s of one
  // core (a 200 KB name over 2,000 members: 90 s and 1 GB) before anything was refused or sent.
  const startedAt = performance.now();
  assert.throws(
    () => toChatRequest(body("n".repeat(100_000)), noStore),
    (error: GatewayError) =>
      error.status === 400 && error.param === "tools[0].name" && /at most 256 characters/.test(error.message),
  );
  assert.ok(performance.now() - startedAt < 1_000, `took ${Math.round(performance.now() - startedAt)} ms`);
  const call = { type: "function_call", call_id: "c", name: "f", namespace: "n".repeat(257), arguments: "{}" };
  assert.throws(
    () => toChatRequest({ model: "m", input: [call] }, noStore),
    (error: GatewayError) => error.status === 400 && error.param === "input[0].namespace",
  );
});

test("responses: `conversation` puts the conversation's items before the input; with previous_response_id, or a bad id, a 400", () => {
  const items = [
    {
      id: "msg_1",
      type: "message",
      status: "completed",
      role: "user",
      content: [{ type: "input_text", text: "I am Ada." }],
    },
    { id: "rs_1", type: "reasoning", summary: [] },
    {
      id: "msg_2",
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: "Hello Ada.", annotations: [] }],
    },
  ];
  const lookup = { ...noStore, conversationItems: (id: string) => (id === "conv_a" ? items : undefined) };
  for (const conversation of ["conv_a", { id: "conv_a" }]) {
    const translated = toChatRequest({ model: "m", input: "Who am I?", conversation }, lookup);
    assert.deepEqual(translated.chatBody.messages, [
      { role: "user", content: "I am Ada." },
      { role: "assistant", content: "Hello Ada." },
      { role: "user", content: "Who am I?" },
    ]);
    assert.equal(translated.conversationId, "conv_a");
    assert.deepEqual(translated.echo.conversation, { id: "conv_a" });
  }
  assert.equal("conversation" in toChatRequest({ model: "m", input: "x" }, lookup).echo, false);
  const refusal = (body: object) => {
    try {
      toChatRequest({ model: "m", input: "x", ...body }, lookup);
    } catch (error) {
      const { status, code, param } = error as GatewayError;
      return { status, code, param };
    }
    return undefined;
  };
  assert.deepEqual(refusal({ conversation: "conv_a", previous_response_id: "resp_1" }), {
    status: 400,
    code: "invalid_value",
    param: "conversation",
  });
  assert.deepEqual(refusal({ conversation: "not a conversation" }), {
    status: 400,
    code: "invalid_value",
    param: "conversation",
  });
  assert.deepEqual(refusal({ conversation: { nope: 1 } }), {
    status: 400,
    code: "invalid_value",
    param: "conversation",
  });
  assert.deepEqual(refusal({ conversation: "conv_gone" }), {
    status: 404,
    code: "conversation_not_found",
    param: "conversation",
  });
});

test("responses request: include reasoning.encrypted_content gives reasoning items the gateway's, which reads back", () => {
  const completion = {
    model: "up",
    choices: [{ index: 0, message: { role: "assistant", content: "Hi.", reasoning_content: "Think é." } }],
  };
  const context = { ids: sequentialIds(), createdAtSeconds: 1 };
  const asked = toChatRequest({ model: "m", input: "x", include: ["reasoning.encrypted_content"] }, noStore);
  assert.equal(asked.includesEncryptedReasoning, true);
  const withToken = toResponseObject(completion, { ...context, echo: asked.echo, includesEncryptedReasoning: true });
  const reasoning = withToken.output[0];
  assert.equal(reasoning?.type, "reasoning");
  const encrypted = reasoning?.type === "reasoning" ? reasoning.encrypted_content : undefined;
  assert.match(encrypted ?? "", /^gateway-reasoning-v1:/);
  const plain = toResponseObject(completion, { ...context, echo: asked.echo });
  assert.equal(plain.output[0]?.type === "reasoning" && "encrypted_content" in plain.output[0], false);
  // A client that sends back only the encrypted_content (no summary) still sends the reasoning.
  const { chatBody } = toChatRequest(
    {
      model: "m",
      input: [
        { role: "user", content: "x" },
        { type: "reasoning", summary: [], encrypted_content: encrypted },
        { type: "function_call", call_id: "call_a", name: "f", arguments: "{}" },
        { type: "function_call_output", call_id: "call_a", output: "ok" },
      ],
    },
    noStore,
  );
  assert.equal((chatBody.messages[1] as { reasoning_content?: string }).reasoning_content, "Think é.");
});
