import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { classifyResponse, isEchoedUnsupported, refusalOf } from "./classify-response.ts";

describe("refusalOf: whose fault a 4xx is", () => {
  const cases: [number, string, string | undefined, ReturnType<typeof refusalOf>][] = [
    // This provider does not serve the model: another may.
    [404, "The model `gpt-x` does not exist or you do not have access to it.", "model_not_found", "model_unavailable"],
    // A 404 that names the model, or says nothing of what is missing: the model's, as before.
    [404, "No endpoints found for meta-llama/llama-9b:free.", undefined, "model_unavailable"],
    [404, "upstream answered HTTP 404", undefined, "model_unavailable"],
    // A router's "no such path" (FastAPI's `{"detail":"Not Found"}`, OpenAI's, Fastify's) or a 405: the provider's.
    [404, "Not Found", undefined, "unserved_endpoint"],
    [404, "Invalid URL (POST /v1/images/generations)", undefined, "unserved_endpoint"],
    [404, "Route POST:/v1/rerank not found", undefined, "unserved_endpoint"],
    [405, "Method Not Allowed", undefined, "unserved_endpoint"],
    [
      400,
      "The model `llama3-70b-8192` has been decommissioned and is no longer supported.",
      "model_decommissioned",
      "model_unavailable",
    ],
    [
      400,
      "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.",
      undefined,
      "model_unavailable",
    ],
    [400, "Invalid model: mistral-huge", undefined, "model_unavailable"],
    [422, "Something went wrong", "model_not_found", "model_unavailable"],
    // A parameter or feature this candidate refuses: another may take it.
    [400, "Unrecognized request argument supplied: logit_bias", undefined, "unsupported"],
    [400, "'logprobs' is not supported with this model.", undefined, "unsupported"],
    [400, "This model does not support tools", undefined, "unsupported"],
    [422, "Extra inputs are not permitted", undefined, "unsupported"],
    [400, "response_format `json_schema` is not supported by llama-3.1-8b-instant", undefined, "unsupported"],
    [400, "Function calling is not enabled for this model", undefined, "unsupported"],
    [400, "Additional properties are not allowed ('prefix' was unexpected) - 'messages.1'", undefined, "unsupported"],
    [
      400,
      '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
      undefined,
      "unsupported",
    ],
    // A role order this candidate refuses (Mistral, a chat template): another takes it, this one takes it rewritten.
    [400, "Unexpected role 'user' after role 'tool'", "3230", "unsupported"],
    [
      400,
      "Expected last role User or Tool (or Assistant with prefix True) for serving but got system",
      "3230",
      "unsupported",
    ],
    [400, "Conversation roles must alternate user/assistant/user/assistant/...", undefined, "unsupported"],
    // The request itself: every candidate would refuse it.
    [400, "Invalid value for 'temperature': must be <= 2.", "invalid_value", "request"],
    [400, "The file `abc` does not exist", undefined, "request"],
    [400, "messages: at least one message is required", undefined, "request"],
    [409, "conflict", undefined, "request"],
  ];
  for (const [status, message, code, expected] of cases) {
    test(`${status} ${message} -> ${expected}`, () => {
      assert.equal(refusalOf(status, code === undefined ? { message } : { message, code }), expected);
    });
  }
});

test("a role-order phrase that only echoes the request is the client's 400; the provider's own words still fail over", () => {
  const request = { messages: [{ role: "user", content: "Why must chat roles must alternate in Llama 2 templates?" }] };
  const echo = {
    message: "Request blocked: input 'Why must chat roles must alternate in Llama 2 templates?' is not allowed",
  };
  assert.equal(refusalOf(400, echo, "", request), "request");
  assert.equal(refusalOf(400, echo), "unsupported", "without the request, the words alone are taken");
  const own = { message: "Conversation roles must alternate user/assistant/user/assistant/..." };
  assert.equal(refusalOf(400, own, "", { messages: [{ role: "user", content: "hi" }] }), "unsupported");
  // Mistral's error type is its own field, never an echo.
  const mistral = { message: "Unexpected role 'user' after role 'tool'", type: "invalid_request_message_order" };
  assert.equal(
    refusalOf(400, mistral, "", { messages: [{ content: "Unexpected role 'user' after role 'tool'" }] }),
    "unsupported",
  );
  // The whole classification, body as it came.
  const verdict = classifyResponse(400, {}, JSON.stringify({ error: echo }), 0, request);
  assert.equal(verdict.kind === "rejected" ? verdict.refusal : verdict.kind, "request");
});

test("a \"not supported\" that only quotes the prompt is the client's 400; the provider's own, or one naming a feature the request carries, still fails over", () => {
  const prompt = "My plugin says this feature is not supported on Windows. Why?";
  const request = { model: "m", messages: [{ role: "user", content: prompt }] };
  // A content filter quoting the prompt it blocked, and a validator quoting the value it refused (vLLM's pydantic).
  const blocked = { message: `Request blocked: input '${prompt}' was flagged by the content filter` };
  assert.equal(refusalOf(400, blocked, "", request), "request");
  assert.equal(refusalOf(400, blocked), "unsupported", "without the request, the words alone are taken");
  const validator = {
    message: `[{'type': 'string_type', 'loc': ('body', 'messages', 0, 'content'), 'msg': 'Input should be a valid string', 'input': 'My plugin says this feature is not supported on Windows'}]`,
  };
  assert.equal(refusalOf(422, validator, "", request), "request");
  // The same prompt, and the provider's own refusal beside the quote: its own words count.
  const own = { message: `'seed' is not supported with this model (input: '${prompt}')` };
  assert.equal(refusalOf(400, own, "", { ...request, seed: 1 }), "unsupported");
  // A short refusal is the provider's even when the prompt holds it: too common to be told from an echo.
  const short = { message: "Not supported." };
  assert.equal(
    refusalOf(400, short, "", { messages: [{ role: "user", content: "Why is it not supported." }] }),
    "unsupported",
  );
  // The prompt holds the provider's whole sentence (a developer pasting the error) and the request carries the feature
  // it names: it may be the provider's own, and another candidate is tried.
  const pasted = {
    ...request,
    logprobs: true,
    messages: [{ role: "user", content: "I get 'logprobs' is not supported with this model. Help?" }],
  };
  assert.equal(refusalOf(400, { message: "'logprobs' is not supported with this model." }, "", pasted), "unsupported");
  assert.equal(
    isEchoedUnsupported("'logprobs' is not supported with this model.", pasted),
    true,
    "and it teaches nothing",
  );
  // The whole classification, body as it came.
  const verdict = classifyResponse(400, {}, JSON.stringify({ error: blocked }), 0, request);
  assert.equal(verdict.kind === "rejected" ? verdict.refusal : verdict.kind, "request");
});

test("a refusal the request holds whole (passed on before, kept in an agent's history) fails over, whatever it names", () => {
  const image = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
  // The gateway passed this refusal on earlier; the agent keeps it in the conversation and tries again.
  const refusal = "Image input is not supported for this model.";
  const history = {
    model: "m",
    messages: [
      { role: "user", content: [{ type: "text", text: "What is in this picture?" }, image] },
      { role: "assistant", content: `Error: ${refusal}` },
      { role: "user", content: [{ type: "text", text: "Try again." }, image] },
    ],
  };
  assert.equal(refusalOf(400, { message: refusal }, "", history), "unsupported");
  assert.equal(isEchoedUnsupported(refusal, history), true, "and, as for a pasted refusal, it teaches nothing");
  // The history holds only its first sentence: it names images, which the request carries (read from its parts).
  const longer = { message: `${refusal} Send the text alone.` };
  assert.equal(refusalOf(400, longer, "", history), "unsupported");
  assert.equal(refusalOf(400, longer, "", { ...history, messages: history.messages.slice(1, 2) }), "request");
  // An earlier 400 body verbatim in a tool result: its quotes JSON-escaped there, and no feature key named.
  const system = 'The "system" role is not supported by this model; send its text as a user message instead';
  const toolResult = {
    model: "m",
    messages: [
      { role: "system", content: "You are a coding agent." },
      { role: "user", content: [{ type: "tool_result", content: JSON.stringify({ error: { message: system } }) }] },
    ],
  };
  assert.equal(refusalOf(400, { message: system }, "", toolResult), "unsupported");
  // A chat template's alternation error the developer asks about, word for word: the template's own, not an echo.
  const alternate = "Conversation roles must alternate user/assistant/user/assistant/...";
  const asked = {
    messages: [
      { role: "user", content: `My vLLM server answers "${alternate}". Why?` },
      { role: "user", content: "It is a Llama 2 chat template." },
    ],
  };
  assert.equal(refusalOf(400, { message: alternate }, "", asked), "unsupported");
  // A filter quoting the prompt still wraps it in words of its own: the client's 400.
  const blocked = { message: "Content blocked: 'the system role is not supported by this model' was flagged" };
  assert.equal(
    refusalOf(400, blocked, "", {
      messages: [{ role: "user", content: "the system role is not supported by this model" }],
    }),
    "request",
  );
});

describe("a 404 for the path (a route the provider lacks) against one for the model", () => {
  // Bodies as real servers send them for an unknown path, and for an unknown model on a path they have.
  const routeGone: [string, string][] = [
    [
      "OpenAI",
      '{"error":{"message":"Invalid URL (POST /v1/images/generations)","type":"invalid_request_error","param":null,"code":null}}',
    ],
    ["FastAPI (vLLM, LiteLLM, SGLang)", '{"detail":"Not Found"}'],
    ["Fastify", '{"message":"Route POST:/v1/rerank not found","error":"Not Found","statusCode":404}'],
    ["Go net/http, gin (Ollama)", "404 page not found"],
    ["Express", "<!DOCTYPE html><html><body><pre>Cannot POST /v1/audio/speech</pre></body></html>"],
    [
      "a web app's page (OpenRouter's site)",
      "<!DOCTYPE html><html><head><title>404: This page could not be found.</title></head></html>",
    ],
  ];
  for (const [server, body] of routeGone) {
    test(`${server}: the provider has no such route`, () => {
      const verdict = classifyResponse(404, {}, body, 0);
      assert.equal(verdict.kind === "rejected" ? verdict.refusal : verdict.kind, "unserved_endpoint");
    });
  }
  const modelGone: [string, string][] = [
    [
      "OpenAI",
      '{"error":{"message":"The model `dall-e-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}',
    ],
    [
      "vLLM",
      '{"object":"error","message":"The model `flux` does not exist.","type":"NotFoundError","param":null,"code":404}',
    ],
    ["OpenRouter", '{"error":{"message":"No endpoints found for black-forest-labs/flux.","code":404}}'],
    ["Ollama", '{"error":"model \\"llava\\" not found, try pulling it first"}'],
    ["an empty 404", ""],
  ];
  for (const [server, body] of modelGone) {
    test(`${server}: the model is not served (as before)`, () => {
      const verdict = classifyResponse(404, {}, body, 0);
      assert.equal(verdict.kind === "rejected" ? verdict.refusal : verdict.kind, "model_unavailable");
    });
  }
  test("a 405 is the provider's whatever its body", () => {
    const verdict = classifyResponse(405, {}, '{"detail":"Method Not Allowed"}', 0);
    assert.equal(verdict.kind === "rejected" ? verdict.refusal : verdict.kind, "unserved_endpoint");
  });
});

describe("upstream errors in FastAPI / pydantic's shape", () => {
  test("a 422 detail list names its field: a refused parameter, tied to it", () => {
    const body = JSON.stringify({
      detail: [
        {
          type: "extra_forbidden",
          loc: ["body", "parallel_tool_calls"],
          msg: "Extra inputs are not permitted",
          input: false,
        },
      ],
    });
    const verdict = classifyResponse(422, {}, body, 0);
    assert.equal(verdict.kind, "rejected");
    assert.ok(verdict.kind === "rejected");
    assert.equal(verdict.refusal, "unsupported");
    assert.deepEqual(verdict.error, {
      message: "parallel_tool_calls: Extra inputs are not permitted",
      param: "parallel_tool_calls",
    });
  });

  test("several fields are all named, none as the param; a nested location reads as a path", () => {
    const body = JSON.stringify({
      detail: [
        { loc: ["body", "messages", 0, "content"], msg: "Field required" },
        { loc: ["body", "seed"], msg: "Input should be a valid integer" },
      ],
    });
    const verdict = classifyResponse(422, {}, body, 0);
    assert.ok(verdict.kind === "rejected");
    assert.equal(verdict.refusal, "request");
    assert.deepEqual(verdict.error, {
      message: "messages[0].content: Field required; seed: Input should be a valid integer",
    });
  });

  test("a detail string or an error object reads as before", () => {
    const fromString = classifyResponse(400, {}, JSON.stringify({ detail: "Bad thing" }), 0);
    assert.ok(fromString.kind === "rejected");
    assert.equal(fromString.error.message, "Bad thing");
  });
});
