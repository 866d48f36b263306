import assert from "node:assert/strict";
import { test } from "node:test";
import { UpstreamUnavailableError } from "../../errors/gateway-error.ts";
import { readCompletion } from "../__fixtures__/fixtures.ts";
import { sequentialIds } from "../ids.ts";
import { toChatRequest } from "./request-mapping.ts";
import { toResponseObject } from "./response-mapping.ts";

const noStore = { get: () => undefined, findItem: () => undefined };
const { echo } = toChatRequest(
  { model: "fast", input: "hi", instructions: "Be brief.", metadata: { a: "1" } },
  noStore,
);

test("responses JSON: a text answer becomes a completed response with one message, usage and the model", () => {
  const response = toResponseObject(readCompletion("text"), {
    echo,
    ids: sequentialIds(),
    createdAtSeconds: 1767225600,
  });
  assert.deepEqual(response, {
    id: "resp_1",
    object: "response",
    created_at: 1767225600,
    status: "completed",
    background: false,
    error: null,
    incomplete_details: null,
    model: "llama-3.3-70b-versatile",
    output: [
      {
        id: "msg_1",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "Paris is the capital of France.", annotations: [], logprobs: [] }],
      },
    ],
    output_text: "Paris is the capital of France.",
    usage: {
      input_tokens: 25,
      input_tokens_details: { cached_tokens: 5 },
      output_tokens: 8,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 33,
    },
    instructions: "Be brief.",
    max_output_tokens: null,
    metadata: { a: "1" },
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: null,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: "auto",
    tools: [],
    top_p: null,
    truncation: "disabled",
    user: null,
    safety_identifier: null,
    prompt_cache_key: null,
    service_tier: null,
    top_logprobs: 0,
    max_tool_calls: null,
  });
});

test("responses JSON: tool calls become function_call items with the upstream call id; the served model fills a missing one", () => {
  const { model: _named, ...unnamed } = readCompletion("tool-call") as Record<string, unknown>;
  const response = toResponseObject(unnamed, {
    echo,
    ids: sequentialIds(),
    createdAtSeconds: 1,
    fallbackModel: "groq/llama-3.3-70b-versatile",
  });
  assert.deepEqual(response.output, [
    {
      id: "fc_1",
      type: "function_call",
      status: "completed",
      call_id: "call_weather1",
      name: "get_weather",
      arguments: '{"city":"Paris"}',
    },
  ]);
  assert.equal(response.model, "groq/llama-3.3-70b-versatile");
  assert.equal(response.output_text, "");
  assert.equal(response.status, "completed");
});

test("responses JSON: a call that came with empty or no arguments has `{}`, what OpenAI sends and JSON.parse reads", () => {
  const call = (id: string, fn: Record<string, unknown>) => ({
    id,
    type: "function",
    function: { name: "now", ...fn },
  });
  const completion = {
    model: "m-1",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: null, tool_calls: [call("a", { arguments: "" }), call("b", {})] },
        finish_reason: "tool_calls",
      },
    ],
  };
  const response = toResponseObject(completion, { echo, ids: sequentialIds(), createdAtSeconds: 1 });
  assert.deepEqual(
    response.output.map((item) => (item.type === "function_call" ? item.arguments : item.type)),
    ["{}", "{}"],
  );
});

test("responses JSON: finish_reason length is incomplete with reason max_output_tokens", () => {
  const response = toResponseObject(readCompletion("length"), { echo, ids: sequentialIds(), createdAtSeconds: 1 });
  assert.equal(response.status, "incomplete");
  assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(response.output[0]?.status, "incomplete");
});

test("responses JSON: an answer without choices is an upstream failure, not an empty response", () => {
  assert.throws(
    () =>
      toResponseObject({ object: "chat.completion", choices: [] }, { echo, ids: sequentialIds(), createdAtSeconds: 1 }),
    UpstreamUnavailableError,
  );
});

test("responses JSON: DeepSeek's prompt_cache_hit_tokens are cached_tokens when prompt_tokens_details says nothing", () => {
  const deepSeek = (usage: Record<string, unknown>) => ({
    id: "chatcmpl-1",
    object: "chat.completion",
    model: "deepseek-chat",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 64, completion_tokens: 5, total_tokens: 69, ...usage },
  });
  const context = { echo, ids: sequentialIds(), createdAtSeconds: 1 };
  const response = toResponseObject(deepSeek({ prompt_cache_hit_tokens: 48, prompt_cache_miss_tokens: 16 }), context);
  assert.deepEqual(response.usage, {
    input_tokens: 64,
    input_tokens_details: { cached_tokens: 48 },
    output_tokens: 5,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 69,
  });
  // OpenAI's field, when given, is the one read (not added to DeepSeek's).
  const both = deepSeek({ prompt_cache_hit_tokens: 48, prompt_tokens_details: { cached_tokens: 40 } });
  assert.equal(toResponseObject(both, context).usage?.input_tokens_details.cached_tokens, 40);
});
