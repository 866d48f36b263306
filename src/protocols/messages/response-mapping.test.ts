import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AuthenticationError,
  InvalidRequestError,
  ModelNotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  ServiceUnavailableError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "../../errors/gateway-error.ts";
import { readCompletion } from "../__fixtures__/fixtures.ts";
import { sequentialIds } from "../ids.ts";
import { renderAnthropicError } from "./render-error.ts";
import { toMessageObject } from "./response-mapping.ts";

/** The fields of the SDK's `Usage` no chat upstream reports: null in every answer. */
const UNREPORTED_USAGE = {
  output_tokens_details: null,
  server_tool_use: null,
  cache_creation: null,
  inference_geo: null,
  service_tier: null,
  speed: null,
};

test("messages JSON: a text answer becomes an Anthropic message with mapped usage", () => {
  const message = toMessageObject(readCompletion("text"), { ids: sequentialIds(), stopSequences: [] });
  assert.deepEqual(message, {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "llama-3.3-70b-versatile",
    content: [{ type: "text", text: "Paris is the capital of France.", citations: null }],
    stop_reason: "end_turn",
    stop_sequence: null,
    // Required by the SDK's \`Message\`, null when they do not apply (as Anthropic sends them).
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: {
      input_tokens: 20,
      output_tokens: 8,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 5,
      ...UNREPORTED_USAGE,
    },
  });
});

test("messages JSON: tool calls become tool_use blocks with parsed input and stop_reason tool_use", () => {
  const message = toMessageObject(readCompletion("tool-call"), {
    ids: sequentialIds(),
    stopSequences: [],
    fallbackModel: "served-model",
  });
  assert.deepEqual(message.content, [
    {
      type: "tool_use",
      id: "call_weather1",
      name: "get_weather",
      input: { city: "Paris" },
      caller: { type: "direct" },
    },
  ]);
  assert.equal(message.stop_reason, "tool_use");
  assert.equal(message.model, "llama-3.3-70b-versatile", "the upstream's own name wins over the fallback");
});

test("messages JSON: length is max_tokens", () => {
  const message = toMessageObject(readCompletion("length"), { ids: sequentialIds(), stopSequences: [] });
  assert.equal(message.stop_reason, "max_tokens");
  assert.deepEqual(message.content, [{ type: "text", text: "Once upon a", citations: null }]);
});

test("messages JSON: `tool_calls` with text only is end_turn (there is no tool_use block to run)", () => {
  const completion = {
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: "Just text" }, finish_reason: "tool_calls" }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  };
  const message = toMessageObject(completion, { ids: sequentialIds(), stopSequences: [] });
  assert.deepEqual(message.content, [{ type: "text", text: "Just text", citations: null }]);
  assert.equal(message.stop_reason, "end_turn");
});

test("messages JSON: without upstream usage, input_tokens is the prompt estimate (as in a stream); with it, unused", () => {
  const completion = readCompletion("text") as { usage?: unknown };
  const { usage: _reported, ...withoutUsage } = completion;
  let estimates = 0;
  const context = {
    ids: sequentialIds(),
    stopSequences: [],
    estimatePromptTokens: () => {
      estimates++;
      return 34;
    },
  };
  assert.deepEqual(toMessageObject(withoutUsage, context).usage, {
    input_tokens: 34,
    output_tokens: 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    ...UNREPORTED_USAGE,
  });
  assert.equal(toMessageObject(completion, context).usage.input_tokens, 20);
  assert.equal(estimates, 1, "no estimate is made when the upstream reported usage");
});

/** A DeepSeek answer: cache hits in `prompt_cache_hit_tokens` (and misses beside it), no `prompt_tokens_details`. */
function deepSeekCompletion(usage: Record<string, unknown>): unknown {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    model: "deepseek-chat",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 64, completion_tokens: 5, total_tokens: 69, ...usage },
  };
}

test("messages JSON: DeepSeek's prompt_cache_hit_tokens are cache reads when prompt_tokens_details says nothing", () => {
  const context = { ids: sequentialIds(), stopSequences: [] };
  const deepSeek = deepSeekCompletion({ prompt_cache_hit_tokens: 48, prompt_cache_miss_tokens: 16 });
  assert.deepEqual(toMessageObject(deepSeek, context).usage, {
    input_tokens: 16,
    output_tokens: 5,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 48,
    ...UNREPORTED_USAGE,
  });
  // OpenAI's field, when given, is the one read (not added to DeepSeek's).
  const both = deepSeekCompletion({ prompt_cache_hit_tokens: 48, prompt_tokens_details: { cached_tokens: 40 } });
  assert.equal(toMessageObject(both, context).usage.cache_read_input_tokens, 40);
});

test("messages errors: rendered in Anthropic's shape with its error type names", () => {
  const cases: [Error & { status: number }, string][] = [
    [new InvalidRequestError("bad"), "invalid_request_error"],
    [new AuthenticationError("no key"), "authentication_error"],
    [new ModelNotFoundError("no model"), "not_found_error"],
    [new PayloadTooLargeError("big"), "request_too_large"],
    [new RateLimitedError("slow down"), "rate_limit_error"],
    [new UpstreamUnavailableError("down"), "api_error"],
    [new ServiceUnavailableError("closing"), "overloaded_error"],
    [new UpstreamTimeoutError("slow"), "timeout_error"],
  ];
  for (const [error, type] of cases) {
    assert.deepEqual(renderAnthropicError(error as InvalidRequestError, "req-1"), {
      type: "error",
      error: { type, message: error.message },
      request_id: "req-1",
    });
  }
});
