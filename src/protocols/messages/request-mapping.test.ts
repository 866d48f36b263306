import assert from "node:assert/strict";
import { test } from "node:test";
import type { GatewayError } from "../../errors/gateway-error.ts";
import { thinkingEffort } from "./output-config.ts";
import { toChatRequest } from "./request-mapping.ts";

function rejects(body: unknown, expected: { status: number; code: string; param: string | null }) {
  assert.throws(
    () => toChatRequest(body),
    (error: GatewayError) => {
      assert.deepEqual({ status: error.status, code: error.code, param: error.param }, expected);
      return true;
    },
  );
}

test("messages request: system, sampling, stop sequences, metadata.user_id and stream; top_k dropped; thinking an effort", () => {
  const { chatBody, isStream, stopSequences, isThinkingShown } = toChatRequest({
    model: "claude-sonnet-4-5",
    max_tokens: 512,
    system: [
      { type: "text", text: "You are terse." },
      { type: "text", text: "Answer in English.", cache_control: { type: "ephemeral" } },
    ],
    messages: [{ role: "user", content: "Hi" }],
    stop_sequences: ["END"],
    temperature: 0.5,
    top_p: 0.8,
    top_k: 40,
    metadata: { user_id: "user-7" },
    thinking: { type: "enabled", budget_tokens: 2048 },
    stream: true,
  });
  assert.deepEqual(chatBody, {
    model: "claude-sonnet-4-5",
    messages: [
      { role: "system", content: "You are terse.\nAnswer in English." },
      { role: "user", content: "Hi" },
    ],
    max_tokens: 512,
    stop: ["END"],
    temperature: 0.5,
    top_p: 0.8,
    user: "user-7",
    stream: true,
    stream_options: { include_usage: true },
    x_gateway_reasoning_effort: "medium",
  });
  assert.equal(isStream, true);
  assert.equal(isThinkingShown, true);
  assert.deepEqual(stopSequences, ["END"]);
});

test("messages request: thinking budgets map to efforts at LiteLLM's thresholds; adaptive and disabled send none", () => {
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 1024 }), "low");
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 2047 }), "low");
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 2048 }), "medium");
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 4095 }), "medium");
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 4096 }), "high");
  assert.equal(thinkingEffort({ type: "enabled", budget_tokens: 32000 }), "high");
  assert.equal(thinkingEffort({ type: "adaptive" }), undefined);
  assert.equal(thinkingEffort({ type: "disabled" }), undefined);
  assert.equal(thinkingEffort(undefined), undefined);
});

test("messages request: a tool round trip (tool_use -> tool_result) maps to tool_calls and tool messages", () => {
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 100,
    tools: [
      {
        name: "get_weather",
        description: "Weather for a city",
        input_schema: { type: "object", properties: { city: { type: "string" } } },
      },
    ],
    tool_choice: { type: "any", disable_parallel_tool_use: true },
    messages: [
      { role: "user", content: [{ type: "text", text: "Weather in Paris and Rome?" }] },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "two calls", signature: "x" },
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Rome" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: "18C" },
          {
            type: "tool_result",
            tool_use_id: "toolu_2",
            is_error: true,
            content: [
              { type: "text", text: "service down" },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } },
            ],
          },
          { type: "text", text: "Summarise." },
        ],
      },
    ],
  });
  assert.deepEqual(chatBody.messages, [
    { role: "user", content: "Weather in Paris and Rome?" },
    {
      role: "assistant",
      content: "Checking.",
      tool_calls: [
        { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        { id: "toolu_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
      ],
      // The thinking goes back as DeepSeek's field (its thinking mode wants a tool turn's reasoning).
      reasoning_content: "two calls",
    },
    { role: "tool", tool_call_id: "toolu_1", content: "18C" },
    { role: "tool", tool_call_id: "toolu_2", content: "Error: service down" },
    {
      role: "user",
      content: [
        { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
        { type: "text", text: "Summarise." },
      ],
    },
  ]);
  assert.deepEqual(chatBody.tools, [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather for a city",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    },
  ]);
  assert.equal(chatBody.tool_choice, "required");
  assert.equal(chatBody.parallel_tool_calls, false);
});

test("messages request: tool_choice tool and none; images by url; text documents", () => {
  const tools = [{ name: "f", input_schema: { type: "object" } }];
  const base = { model: "m", max_tokens: 10, tools };
  const named = toChatRequest({
    ...base,
    tool_choice: { type: "tool", name: "f" },
    messages: [{ role: "user", content: "x" }],
  });
  assert.deepEqual(named.chatBody.tool_choice, { type: "function", function: { name: "f" } });
  const none = toChatRequest({ ...base, tool_choice: { type: "none" }, messages: [{ role: "user", content: "x" }] });
  assert.equal(none.chatBody.tool_choice, "none");
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 10,
    messages: [
      {
        role: "user",
        content: [
          { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
          { type: "document", source: { type: "text", media_type: "text/plain", data: "the doc" } },
        ],
      },
    ],
  });
  assert.deepEqual(chatBody.messages, [
    {
      role: "user",
      content: [
        { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
        { type: "text", text: "the doc" },
      ],
    },
  ]);
});

test("messages request: max_tokens is required, as Anthropic requires it; unsupported blocks and tools are named", () => {
  rejects(
    { model: "m", messages: [{ role: "user", content: "x" }] },
    { status: 400, code: "invalid_value", param: "max_tokens" },
  );
  rejects({ model: "m", max_tokens: 10, messages: [] }, { status: 400, code: "invalid_value", param: "messages" });
  rejects(
    { model: "m", max_tokens: 10, messages: [{ role: "tool", content: "x" }] },
    { status: 400, code: "invalid_value", param: "messages[0].role" },
  );
  rejects(
    {
      model: "m",
      max_tokens: 10,
      tools: [{ type: "web_search_20250305", name: "web_search" }],
      messages: [{ role: "user", content: "x" }],
    },
    { status: 400, code: "unsupported_value", param: "tools[0].type" },
  );
  rejects(
    { model: "m", max_tokens: 10, tools: [{ name: "f" }], messages: [{ role: "user", content: "x" }] },
    { status: 400, code: "invalid_value", param: "tools[0].input_schema" },
  );
  rejects(
    { model: "m", max_tokens: 10, messages: [{ role: "user", content: [{ type: "container_upload", file_id: "f" }] }] },
    { status: 400, code: "unsupported_value", param: "messages[0].content[0].type" },
  );
  rejects(
    {
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: [{ type: "image", source: { type: "file", file_id: "f" } }] }],
    },
    { status: 400, code: "invalid_value", param: "messages[0].content[0].source.type" },
  );
  rejects(
    {
      model: "m",
      max_tokens: 10,
      tool_choice: { type: "tool" },
      tools: [{ name: "f", input_schema: {} }],
      messages: [{ role: "user", content: "x" }],
    },
    { status: 400, code: "invalid_value", param: "tool_choice.name" },
  );
});

test("messages request: output_config.format -> response_format json_schema; the beta output_format too", () => {
  const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
  const expected = { type: "json_schema", json_schema: { name: "output", schema } };
  const base = { model: "m", max_tokens: 10, messages: [{ role: "user", content: "Which city?" }] };
  const format = { type: "json_schema", schema };
  assert.deepEqual(toChatRequest({ ...base, output_config: { format } }).chatBody.response_format, expected);
  assert.deepEqual(toChatRequest({ ...base, output_format: format }).chatBody.response_format, expected);
  assert.equal(toChatRequest({ ...base, output_config: { format: null } }).chatBody.response_format, undefined);
  rejects(
    { ...base, output_config: { format: { type: "json_object" } } },
    { status: 400, code: "invalid_value", param: "output_config.format.type" },
  );
  rejects(
    { ...base, output_config: { format: { type: "json_schema" } } },
    { status: 400, code: "invalid_value", param: "output_config.format.schema" },
  );
});

test("messages request: output_config.effort -> an effort on chat's scale, over a thinking budget", () => {
  const base = { model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] };
  const effortOf = (extra: object) => toChatRequest({ ...base, ...extra }).chatBody.x_gateway_reasoning_effort;
  assert.equal(effortOf({ output_config: { effort: "low" } }), "low");
  assert.equal(effortOf({ output_config: { effort: "medium" } }), "medium");
  assert.equal(effortOf({ output_config: { effort: "xhigh" } }), "high");
  assert.equal(effortOf({ output_config: { effort: "max" } }), "high");
  assert.equal(
    effortOf({ output_config: { effort: "low" }, thinking: { type: "enabled", budget_tokens: 8000 } }),
    "low",
    "the explicit effort wins over the budget's guess",
  );
  assert.equal(effortOf({ output_config: {}, thinking: { type: "enabled", budget_tokens: 8000 } }), "high");
  rejects(
    { ...base, output_config: { effort: "extreme" } },
    { status: 400, code: "invalid_value", param: "output_config.effort" },
  );
});

test("messages request: a tool's strict: true is passed on as function.strict, false is left out", () => {
  const input_schema = { type: "object", properties: {} };
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 10,
    messages: [{ role: "user", content: "x" }],
    tools: [
      { name: "f", strict: true, input_schema },
      { name: "g", strict: false, input_schema },
    ],
  });
  assert.deepEqual(
    chatBody.tools?.map((tool) => tool.function),
    [
      { name: "f", parameters: input_schema, strict: true },
      { name: "g", parameters: input_schema },
    ],
  );
});

test("messages request: a user turn with no blocks names its content, not `messages`", () => {
  rejects(
    {
      model: "m",
      max_tokens: 10,
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello" },
        { role: "user", content: [] },
      ],
    },
    { status: 400, code: "invalid_value", param: "messages[2].content" },
  );
});

test("messages request: consecutive assistant turns are one assistant message, as Anthropic combines them", () => {
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 64,
    messages: [
      { role: "user", content: "Weather in Paris and Rome?" },
      { role: "assistant", content: "Checking " },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_a", name: "weather", input: { city: "Paris" } }] },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_b", name: "weather", input: { city: "Rome" } }] },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_a", content: "sunny" },
          { type: "tool_result", tool_use_id: "toolu_b", content: "rainy" },
        ],
      },
      { role: "assistant", content: [{ type: "text", text: "Sunny in Paris" }] },
      { role: "assistant", content: ", rainy in Rome." },
    ],
  });
  // Each call is followed by its tool message, as chat providers require.
  assert.deepEqual(chatBody.messages, [
    { role: "user", content: "Weather in Paris and Rome?" },
    {
      role: "assistant",
      content: "Checking ",
      tool_calls: [
        { id: "toolu_a", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
        { id: "toolu_b", type: "function", function: { name: "weather", arguments: '{"city":"Rome"}' } },
      ],
    },
    { role: "tool", tool_call_id: "toolu_a", content: "sunny" },
    { role: "tool", tool_call_id: "toolu_b", content: "rainy" },
    { role: "assistant", content: "Sunny in Paris, rainy in Rome." },
  ]);
});

test("messages request: a tool_choice that demands a call no tool can answer is a 400 naming tool_choice", () => {
  const base = { model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] };
  const refused = { status: 400, code: "invalid_value", param: "tool_choice" };
  rejects({ ...base, tool_choice: { type: "any" } }, refused);
  rejects({ ...base, tools: [], tool_choice: { type: "any" } }, refused);
  rejects({ ...base, tool_choice: { type: "tool", name: "f" } }, refused);
  rejects({ ...base, tools: [{ name: "f", input_schema: {} }], tool_choice: { type: "tool", name: "g" } }, refused);
  assert.throws(() => toChatRequest({ ...base, tool_choice: { type: "any" } }, "count"), /`tool_choice` of type `any`/);
  // Choices that let the model answer with text are left out with the tools (chat providers refuse them alone).
  for (const type of ["auto", "none"]) {
    const { chatBody } = toChatRequest({ ...base, tool_choice: { type } });
    assert.equal(chatBody.tool_choice, undefined);
    assert.equal(chatBody.tools, undefined);
  }
});

test("messages request: a system turn inside messages (the SDK's SystemMessageParam) is a chat system message in place", () => {
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 16,
    system: "Be kind.",
    messages: [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      {
        role: "system",
        content: [
          { type: "text", text: "From now on," },
          { type: "text", text: "be terse." },
        ],
      },
      { role: "user", content: "And now?" },
    ],
  });
  assert.deepEqual(chatBody.messages, [
    { role: "system", content: "Be kind." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello!" },
    { role: "system", content: "From now on,\nbe terse." },
    { role: "user", content: "And now?" },
  ]);
  // Text only, as in the SDK's type: an image there is named.
  rejects(
    {
      model: "m",
      max_tokens: 16,
      messages: [
        { role: "system", content: [{ type: "image", source: { type: "url", url: "https://x/y.png" } }] },
        { role: "user", content: "Hi" },
      ],
    },
    { status: 400, code: "invalid_value", param: "messages[0].content[0].type" },
  );
});

test("messages request: a system block that starts with Claude Code's billing header keeps the text after the header's line", () => {
  // A client or proxy that joins `system`'s blocks into one (or a string) puts the header line before the whole
  // system prompt: only that line is attribution, the rest is the prompt.
  const header = "x-anthropic-billing-header: cc_version=2.1.197.47b; cc_entrypoint=sdk-cli;";
  const joined = toChatRequest({
    model: "claude-sonnet-4-5",
    max_tokens: 16,
    system: [{ type: "text", text: `${header}\nYou are terse.\nAnswer in French.` }],
    messages: [{ role: "user", content: "Hi" }],
  });
  assert.deepEqual(joined.chatBody.messages[0], { role: "system", content: "You are terse.\nAnswer in French." });
  const alone = toChatRequest({
    model: "claude-sonnet-4-5",
    max_tokens: 16,
    system: [
      { type: "text", text: header },
      { type: "text", text: "You are terse." },
    ],
    messages: [{ role: "user", content: "Hi" }],
  });
  assert.deepEqual(alone.chatBody.messages[0], { role: "system", content: "You are terse." });
});

test("messages request: a tool_result of a document only is a tool message saying a file follows, then the file", () => {
  const { chatBody } = toChatRequest({
    model: "m",
    max_tokens: 10,
    messages: [
      { role: "user", content: "Read the report." },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "Read", input: { path: "r.pdf" } }] },
      {
        role: "user",
        content: [
          {
            type: "tool_result",
            tool_use_id: "toolu_1",
            content: [{ type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBE" } }],
          },
        ],
      },
    ],
  });
  assert.deepEqual(chatBody.messages.slice(-2), [
    { role: "tool", tool_call_id: "toolu_1", content: "(file attached below)" },
    { role: "user", content: [{ type: "file", file: { file_data: "data:application/pdf;base64,JVBE" } }] },
  ]);
});
