// Which feature of a request an `unsupported` refusal is about, in the words providers use, and the refusals that
// cannot be tied to one feature (nothing learned from them).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { requestFeatures } from "../router/request-features.ts";
import { classifyResponse } from "./classify-response.ts";
import type { UpstreamErrorFields } from "./read-upstream-error.ts";
import { refusedFeature } from "./refused-feature.ts";

const TOOLS = [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }];
const messages = [{ role: "user", content: "hi" }];
const withImage = [
  {
    role: "user",
    content: [
      { type: "text", text: "what is this?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
    ],
  },
];

/** The feature refused, with the request's features read from its body as the pipeline reads them. */
function tie(error: UpstreamErrorFields, body: Record<string, unknown>, hasImages = false): string | undefined {
  return refusedFeature(error, requestFeatures({ model: "m", messages, ...body }, hasImages));
}

describe("refusals tied to one feature of the request", () => {
  const cases: readonly [string, UpstreamErrorFields, Record<string, unknown>, string, boolean?][] = [
    // Ollama's wording, then others seen for tools.
    [
      "Ollama: does not support tools",
      { message: "registry.ollama.ai/library/gemma:2b does not support tools" },
      { tools: TOOLS },
      "tools",
    ],
    [
      "tool calling is not supported",
      { message: "tool calling is not supported with this model" },
      { tools: TOOLS, temperature: 0.2 },
      "tools",
    ],
    [
      "function calling not enabled",
      { message: "Function calling is not enabled for this model" },
      { tools: TOOLS, tool_choice: "auto" },
      "tools",
    ],
    [
      "a vLLM server without tool parsing",
      { message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set' },
      { tools: TOOLS, tool_choice: "auto" },
      "tools",
    ],
    [
      "the error's param",
      { message: "This parameter is not supported.", param: "tools" },
      { tools: TOOLS, seed: 1 },
      "tools",
    ],
    [
      "a param path into tools",
      { message: "Unsupported value", param: "tools[0].function.strict" },
      { tools: TOOLS },
      "tools",
    ],
    [
      "tool_choice, not tools",
      { message: "tool_choice is not supported for this model" },
      { tools: TOOLS, tool_choice: "required" },
      "tool_choice",
    ],
    [
      "vLLM's extra field",
      {
        message:
          "[{'type': 'extra_forbidden', 'loc': ('body', 'parallel_tool_calls'), 'msg': 'Extra inputs are not permitted', 'input': False}]",
      },
      { tools: TOOLS, parallel_tool_calls: false },
      "parallel_tool_calls",
    ],
    [
      "OpenAI's unrecognized argument",
      { message: "Unrecognized request argument supplied: seed" },
      { seed: 7, temperature: 1 },
      "seed",
    ],
    [
      "a quoted parameter",
      { message: "'logprobs' is not supported with this model." },
      { logprobs: true, top_logprobs: 2 },
      "logprobs",
    ],
    [
      "OpenAI's reasoning models",
      {
        message:
          "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        param: "max_tokens",
      },
      { max_tokens: 100 },
      "max_tokens",
    ],
    ["stop", { message: "stop is not supported by this model" }, { stop: ["\n"] }, "stop"],
    [
      "reasoning_effort",
      { message: "reasoning_effort is not supported with this model" },
      { reasoning_effort: "low" },
      "reasoning_effort",
    ],
    [
      "a json_schema refusal: the format asked for, not response_format as a whole",
      { message: "response_format `json_schema` is not supported by llama-3.1-8b-instant" },
      { response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } },
      "json_schema",
    ],
    [
      "response_format as a param: the format asked for",
      { message: "This response_format type is not supported by this model", param: "response_format" },
      { response_format: { type: "json_object" } },
      "json_object",
    ],
    [
      "structured outputs",
      { message: "Structured outputs are not supported for this model" },
      { response_format: { type: "json_schema", json_schema: { name: "x" } } },
      "json_schema",
    ],
    ["images in words", { message: "Image input is not supported for this model" }, {}, "images", true],
    [
      "images as a param path",
      { message: "Unsupported content part", param: "messages[0].content[1].image_url" },
      {},
      "images",
      true,
    ],
    ["vision", { message: "This model does not support vision" }, { temperature: 0 }, "images", true],
  ];
  for (const [name, error, body, feature, hasImages] of cases) {
    test(name, () => {
      assert.equal(tie(error, hasImages === true ? { ...body, messages: withImage } : body, hasImages), feature);
    });
  }
});

describe("refusals that cannot be tied to one feature teach nothing", () => {
  const cases: readonly [string, UpstreamErrorFields, Record<string, unknown>, boolean?][] = [
    ["vLLM's bare message", { message: "Extra inputs are not permitted" }, { tools: TOOLS, seed: 1 }],
    ["a feature the request does not carry", { message: "This model does not support tools" }, { seed: 1 }],
    [
      "two features named",
      { message: "'tools' and 'tool_choice' are not supported" },
      { tools: TOOLS, tool_choice: "auto" },
    ],
    ["a key and a capability", { message: "Image input is not supported for user messages" }, { user: "u1" }, true],
    ["a key inside a longer word", { message: "stop_sequences is not supported" }, { stop: ["x"] }],
    ["a param the request does not carry", { message: "not supported", param: "logit_bias" }, { seed: 1 }],
    ["no features at all", { message: "This model does not support tools" }, {}],
  ];
  for (const [name, error, body, hasImages] of cases) {
    test(name, () => {
      assert.equal(tie(error, hasImages === true ? { ...body, messages: withImage } : body, hasImages), undefined);
    });
  }
});

test("the message the classifier reads is the one tied: an Ollama refusal body end to end", () => {
  const body = JSON.stringify({ error: { message: "registry.ollama.ai/library/gemma:2b does not support tools" } });
  const verdict = classifyResponse(400, {}, body, 0);
  assert.equal(verdict.kind, "rejected");
  if (verdict.kind !== "rejected") return;
  assert.equal(verdict.refusal, "unsupported");
  assert.equal(refusedFeature(verdict.error, requestFeatures({ model: "m", messages, tools: TOOLS }, false)), "tools");
});
