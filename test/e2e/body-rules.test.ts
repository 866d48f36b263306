// `body:` rules on a provider and a model (docs/configuration.md "Request body rules"): the body each candidate is
// sent has fields dropped, filled in and overridden, per deployment, through every front door; an output-limit
// default counts in the context fit as the provider will; a reload that changes a deployment's rules forgets what it
// refused as not supported. Real gateway, two scripted mock upstreams over loopback, the real SDKs as clients.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { runCli, tempDir } from "../helpers/cli-process.ts";
import { CHAT_ROUTE, chatRequests, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

const ADMIN_KEY = "admin-key-123";

const openAiClientFor = (gateway: { baseUrl: string }) =>
  new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });

function config(alphaUrl: string, betaUrl: string, alphaRules: string, alphaModel = "{ id: alpha-m, priority: 10 }") {
  return `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
providers:
  - name: alpha
    base_url: ${alphaUrl}
    api_key: sk-alpha-secret
    retries: 0
${alphaRules}
    models:
      m: ${alphaModel}
  - name: beta
    base_url: ${betaUrl}
    api_key: sk-beta-secret
    retries: 0
    models:
      m: { id: beta-m, priority: 1 }
routing:
  max_wait_for_better_ms: 0
`;
}

/** A Responses API response object as OpenAI answers one. */
function nativeResponse(text: string) {
  return {
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status: "completed",
    error: null,
    incomplete_details: null,
    model: "alpha-m",
    output: [
      {
        id: "msg_upstream_1",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      },
    ],
    usage: { input_tokens: 11, output_tokens: 4, total_tokens: 15 },
    store: false,
    previous_response_id: null,
    metadata: {},
  };
}

/** An embeddings answer as OpenAI gives one: one vector. */
function embeddingAnswer() {
  return {
    object: "list",
    data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2] }],
    model: "alpha-emb",
    usage: { prompt_tokens: 600, total_tokens: 600 },
  };
}

function bodyOf(request: { body?: unknown } | undefined): Record<string, unknown> {
  const body = request?.body;
  assert.ok(body !== null && typeof body === "object" && !Array.isArray(body), "an upstream request with a JSON body");
  return body as Record<string, unknown>;
}

/** OpenAI's 400 for a parameter its API does not take. */
function unknownParameter(name: string): MockStep {
  const error = { message: `Unknown parameter: '${name}'.`, type: "invalid_request_error", param: name };
  return { kind: "json", status: 400, body: { error } };
}

/**
 * A mock provider whose /responses is as strict as OpenAI's: a body with one of `refused` (names only chat takes)
 * gets the 400 naming it, any other the native answer `native here`; its chat route answers `chat here`.
 */
async function strictResponsesMock(t: TestContext, refused: readonly string[]): Promise<MockUpstream> {
  const alpha = await useMock(t);
  alpha.setDefault("POST /v1/responses", (request) => {
    const unknown = refused.find((name) => name in bodyOf(request));
    if (unknown !== undefined) return unknownParameter(unknown);
    return { kind: "json", status: 200, body: nativeResponse("native here") };
  });
  alpha.setDefault(CHAT_ROUTE, { kind: "json", status: 200, body: chatCompletion("chat here", "alpha-m") });
  return alpha;
}

/** Provider alpha on the native Responses API with these body rules (YAML under `body:`) and model `m`'s entry. */
function nativeAlphaConfig(alpha: MockUpstream, bodyRules: string, model: string): string {
  return `server:
  port: 0
  host: 127.0.0.1
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    responses_api: native
    body:
${bodyRules}    models:
      m: ${model}
`;
}

async function scene(t: TestContext, alphaRules: string, alphaModel?: string) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  alpha.setDefault(CHAT_ROUTE, { kind: "json", status: 200, body: chatCompletion("alpha here", "alpha-m") });
  beta.setDefault(CHAT_ROUTE, { kind: "json", status: 200, body: chatCompletion("beta here", "beta-m") });
  const gateway = await useGateway(t, config(alpha.baseUrl, beta.baseUrl, alphaRules, alphaModel));
  return { alpha, beta, gateway };
}

describe("body rules change what one deployment is sent", () => {
  test("provider and model rules: dropped, filled in when absent, overridden; the other provider gets the client's body", async (t) => {
    const { alpha, beta, gateway } = await scene(
      t,
      `    body:
      drop: [logprobs, top_logprobs]
      defaults: { temperature: 0.6, top_k: 20 }`,
      "{ id: alpha-m, priority: 10, body: { defaults: { temperature: 0.2 }, override: { top_p: 0.9 } } }",
    );
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const request = {
      model: "m",
      messages: [{ role: "user" as const, content: "hi" }],
      logprobs: true,
      top_logprobs: 2,
      top_p: 0.5,
      seed: 7,
    };
    // A client's own value stays where the rules only give a default.
    await client.chat.completions.create({ ...request, temperature: 1 });
    assert.equal(bodyOf(chatRequests(alpha)[0]).temperature, 1);

    alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const answer = await client.chat.completions.create(request);
    assert.equal(answer.choices[0]?.message.content, "beta here");
    const toAlpha = bodyOf(chatRequests(alpha)[1]);
    assert.equal("logprobs" in toAlpha || "top_logprobs" in toAlpha, false, "alpha's provider drops them");
    assert.equal(toAlpha.temperature, 0.2, "the model's default wins over the provider's");
    assert.equal(toAlpha.top_k, 20, "the provider's default fills in");
    assert.equal(toAlpha.top_p, 0.9, "the model's override replaces the client's value");
    assert.equal(toAlpha.seed, 7, "fields no rule names pass as they came");
    assert.equal(toAlpha.model, "alpha-m");
    assert.deepEqual(toAlpha.messages, request.messages);
    const toBeta = bodyOf(chatRequests(beta)[0]);
    assert.deepEqual(
      { logprobs: toBeta.logprobs, top_p: toBeta.top_p, temperature: toBeta.temperature, top_k: toBeta.top_k },
      { logprobs: true, top_p: 0.5, temperature: undefined, top_k: undefined },
      "the failover candidate gets the client's body, not alpha's rules",
    );
  });

  test("through the Messages door too: the rules apply to the chat body the translation produces", async (t) => {
    const { alpha, gateway } = await scene(t, "    body:\n      drop: [stop]\n      override: { temperature: 0 }");
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 50,
      stop_sequences: ["END"],
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(message.content[0]?.type === "text" ? message.content[0].text : "", "alpha here");
    const sent = bodyOf(chatRequests(alpha)[0]);
    assert.equal(sent.temperature, 0);
    assert.equal("stop" in sent, false);
    assert.equal(sent.max_tokens, 50);
  });

  test("a default max_tokens counts in the context fit: a model it would overflow is skipped, a client's own smaller limit fits", async (t) => {
    const { alpha, beta, gateway } = await scene(
      t,
      "",
      "{ id: alpha-m, priority: 10, context: 1000, body: { defaults: { max_tokens: 4000 } } }",
    );
    const skipped = await postChat(gateway, { model: "m" });
    assert.equal(skipped.status, 200, skipped.text);
    assert.equal(skipped.headers["x-gateway-provider"], "beta", "prompt + the default 4000 cannot fit 1000 tokens");
    assert.equal(chatRequests(alpha).length, 0, "alpha was not sent a request it would refuse");
    assert.equal("max_tokens" in bodyOf(chatRequests(beta)[0]), false);

    const fits = await postChat(gateway, { model: "m", max_tokens: 100 });
    assert.equal(fits.headers["x-gateway-provider"], "alpha", fits.text);
    assert.equal(bodyOf(chatRequests(alpha)[0]).max_tokens, 100, "the client's limit, not the default");
  });

  test("an override of the client's own limit counts instead of it: a greedy limit capped by the rules fits", async (t) => {
    const { alpha, beta, gateway } = await scene(
      t,
      "",
      "{ id: alpha-m, priority: 10, context: 1000, body: { override: { max_tokens: 100 } } }",
    );
    // Before, the client's 4000 counted (as if it might survive the override): alpha was skipped as too small.
    const capped = await postChat(gateway, { model: "m", max_tokens: 4000 });
    assert.equal(capped.headers["x-gateway-provider"], "alpha", capped.text);
    assert.equal(bodyOf(chatRequests(alpha)[0]).max_tokens, 100);
    const explained = await send(gateway, "GET", "/v1/gateway/route?model=m&tokens=50&max_tokens=4000");
    const candidates = (JSON.parse(explained.text) as { candidates: { provider: string; context_fit: string }[] })
      .candidates;
    assert.deepEqual(
      candidates.map((candidate) => candidate.provider),
      ["alpha", "beta"],
      "the route explanation agrees",
    );
    assert.match(candidates[0]?.context_fit ?? "", /max_tokens 100\b/);
    // Under the other name the client's limit survives an override of max_tokens: both may reach the provider.
    const otherName = await postChat(gateway, { model: "m", max_completion_tokens: 4000 });
    assert.equal(otherName.headers["x-gateway-provider"], "beta", otherName.text);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("a provider's chat rules stay off its embedding model: no output limit sent or charged, no chat field sent", async (t) => {
    const alpha = await useMock(t);
    // As a strict embeddings API answers a field it does not take (before, every embeddings request got this 400).
    const embeddingFields = ["model", "input", "dimensions", "encoding_format", "user", "input_type", "truncate"];
    alpha.setDefault("POST /v1/embeddings", (request) => {
      const unknown = Object.keys(bodyOf(request)).find((name) => !embeddingFields.includes(name));
      if (unknown === undefined) return { kind: "json", status: 200, body: embeddingAnswer() };
      return unknownParameter(unknown);
    });
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    body:
      defaults: { max_tokens: 4000, seed: 7, temperature: 0.2, dimensions: 256 }
      override: { max_completion_tokens: 3000, user: tenant-a }
      drop: [encoding_format]
    models:
      m: { id: alpha-m }
      emb: { id: alpha-emb, kind: embedding, context: 1000, body: { defaults: { input_type: passage, truncate: END } } }
`,
    );
    // About 600 tokens: it fits the 1000-token window, but not with 4000 "output" tokens added to it.
    const input = "word ".repeat(600);
    const answer = await send(gateway, "POST", "/v1/embeddings", {
      body: { model: "emb", input, encoding_format: "base64" },
    });
    assert.equal(answer.status, 200, answer.text);
    const embeddingRequests = alpha.requests.filter((request) => request.path.endsWith("/embeddings"));
    assert.deepEqual(bodyOf(embeddingRequests[0]), {
      model: "alpha-emb",
      input,
      dimensions: 256,
      user: "tenant-a",
      input_type: "passage",
      truncate: "END",
    });
    await openAiClientFor(gateway).chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const chat = bodyOf(chatRequests(alpha)[0]);
    assert.deepEqual(
      [chat.max_tokens, chat.max_completion_tokens, chat.seed, chat.temperature],
      [4000, 3000, 7, 0.2],
      "the chat model gets them all",
    );
  });

  test("/v1/completions gets of its provider's rules only the fields legacy completions take; the model's own as written", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    body:
      defaults: { reasoning_effort: low, response_format: { type: json_object }, tool_choice: auto, logprobs: true, seed: 7, top_k: 40 }
      override: { max_completion_tokens: 300, parallel_tool_calls: false, temperature: 0.2 }
      drop: [frequency_penalty]
    models:
      m: { id: alpha-m, body: { override: { verbosity: low } } }
`,
    );
    const answer = await send(gateway, "POST", "/v1/completions", {
      body: { model: "m", prompt: "Once upon a time", frequency_penalty: 0.5, stop: ["\\n"] },
    });
    assert.equal(answer.status, 200, answer.text);
    const completions = alpha.requests.filter(
      (request) => request.path.endsWith("/completions") && !request.path.includes("chat"),
    );
    assert.deepEqual(bodyOf(completions[0]), {
      model: "alpha-m",
      prompt: "Once upon a time",
      stop: ["\\n"],
      seed: 7,
      top_k: 40,
      temperature: 0.2,
      // Chat's newer name for the output limit, under the only name the completions API has.
      max_tokens: 300,
      // The model's own rule applies as written, as on every kind.
      verbosity: "low",
    });
    await openAiClientFor(gateway).chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const chat = bodyOf(chatRequests(alpha)[0]);
    assert.deepEqual(
      [chat.reasoning_effort, chat.tool_choice, chat.logprobs, chat.max_completion_tokens, chat.max_tokens],
      ["low", "auto", true, 300, undefined],
      "the chat requests get them all, as written",
    );
  });

  test("a native Responses provider gets the rules' output limit as max_output_tokens, not a chat name it refuses", async (t) => {
    // As OpenAI's /responses answers a chat-only name: a 400 (before, every native request without a limit got one).
    const alpha = await strictResponsesMock(t, ["max_tokens", "max_completion_tokens"]);
    const gateway = await useGateway(
      t,
      nativeAlphaConfig(
        alpha,
        "      defaults: { max_tokens: 4000, temperature: 0.6 }\n",
        "{ id: alpha-m, context: 100000 }",
      ),
    );
    const client = openAiClientFor(gateway);
    const answer = await client.responses.create({ model: "m", input: "hi" });
    assert.equal(answer.output_text, "native here");
    const responsesSent = alpha.requests.filter((request) => request.path === "/v1/responses").map(bodyOf);
    assert.deepEqual(
      [responsesSent[0]?.max_output_tokens, responsesSent[0]?.temperature, "max_tokens" in (responsesSent[0] ?? {})],
      [4000, 0.6, false],
    );
    await client.responses.create({ model: "m", input: "hi", max_output_tokens: 50 });
    const own = alpha.requests.filter((request) => request.path === "/v1/responses").map(bodyOf)[1];
    assert.equal(own?.max_output_tokens, 50, "the client's own limit, not the default");
    await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    assert.equal(bodyOf(chatRequests(alpha)[0]).max_tokens, 4000, "the provider's chat requests get the chat name");
  });

  test("a native Responses provider gets reasoning_effort as reasoning.effort, response_format as text.format and no chat-only field", async (t) => {
    // As OpenAI's /responses answers a field it does not know: a 400 naming it.
    const chatOnly = [
      ...["reasoning_effort", "logprobs", "n", "stop", "presence_penalty", "frequency_penalty", "seed"],
      "response_format",
    ];
    const alpha = await strictResponsesMock(t, chatOnly);
    const gateway = await useGateway(
      t,
      nativeAlphaConfig(
        alpha,
        `      defaults: { reasoning_effort: high, top_logprobs: 2, logprobs: true, n: 1, stop: [END], seed: 7 }
      override:
        presence_penalty: 0.2
        frequency_penalty: 0.1
        response_format: { type: json_schema, json_schema: { name: answer, strict: true, schema: { type: object } } }
`,
        "{ id: alpha-m, context: 100000, reasoning: true }",
      ),
    );
    const client = openAiClientFor(gateway);
    const responsesSent = () => alpha.requests.filter((request) => request.path === "/v1/responses").map(bodyOf);
    const answer = await client.responses.create({ model: "m", input: "hi", reasoning: { summary: "auto" } });
    assert.equal(answer.output_text, "native here");
    const first = responsesSent()[0] ?? {};
    assert.deepEqual(
      first.reasoning,
      { summary: "auto", effort: "high" },
      "the default effort, in the Responses place",
    );
    assert.equal(first.top_logprobs, 2, "a field both APIs have goes as written");
    assert.deepEqual(
      first.text,
      { format: { type: "json_schema", name: "answer", strict: true, schema: { type: "object" } } },
      "response_format in the Responses place and shape",
    );
    assert.deepEqual(
      chatOnly.filter((name) => name in first),
      [],
    );
    await client.responses.create({ model: "m", input: "hi", reasoning: { effort: "low" } });
    assert.deepEqual(responsesSent()[1]?.reasoning, { effort: "low" }, "the client's own effort wins over a default");
    // The same provider's chat requests get the rules in chat names.
    await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const chat = bodyOf(chatRequests(alpha)[0]);
    assert.deepEqual(
      [chat.reasoning_effort, chat.logprobs, chat.stop, chat.presence_penalty],
      ["high", true, ["END"], 0.2],
    );
  });

  test("a reload that changes a deployment's rules forgets the feature it refused as not supported", async (t) => {
    const refusal: MockStep = {
      kind: "json",
      status: 400,
      body: { error: { message: "'logprobs' is not supported with this model", type: "invalid_request_error" } },
    };
    const { alpha, beta, gateway } = await scene(t, "");
    alpha.setDefault(CHAT_ROUTE, (request) =>
      (request.body as { logprobs?: unknown }).logprobs === undefined
        ? { kind: "json", status: 200, body: chatCompletion("alpha here", "alpha-m") }
        : refusal,
    );
    const first = await postChat(gateway, { model: "m", logprobs: true });
    assert.equal(first.headers["x-gateway-provider"], "beta", first.text);
    const second = await postChat(gateway, { model: "m", logprobs: true });
    assert.equal(second.headers["x-gateway-provider"], "beta");
    assert.equal(chatRequests(alpha).length, 1, "the refusal was learned: alpha ranks last for logprobs");

    writeFileSync(
      gateway.configPath,
      config(alpha.baseUrl, beta.baseUrl, "    body:\n      drop: [logprobs]").replace(
        "server:\n",
        `server:\n  # reloaded\n`,
      ),
    );
    const reloaded = await send(gateway, "POST", "/admin/reload", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(reloaded.status, 200, reloaded.text);
    const third = await postChat(gateway, { model: "m", logprobs: true });
    assert.equal(third.headers["x-gateway-provider"], "alpha", "the rules drop logprobs now: alpha is first again");
    assert.equal("logprobs" in bodyOf(chatRequests(alpha)[1]), false);
  });

  test("the route explanation names the fields a candidate's rules change (not their values); so does `route --explain`", async (t) => {
    const rules =
      "    body:\n      drop: [logprobs]\n      defaults: { temperature: 0.6 }\n      override: { user: operator-secret-value }";
    const { gateway } = await scene(t, rules);
    const explained = await send(gateway, "GET", "/v1/gateway/route?model=m");
    assert.equal(explained.status, 200, explained.text);
    const candidates = (explained.json as { candidates: { provider: string; body_rules: unknown }[] }).candidates;
    assert.deepEqual(
      candidates.map((candidate) => [candidate.provider, candidate.body_rules]),
      [
        ["alpha", { defaults: ["temperature"], override: ["user"], drop: ["logprobs"] }],
        ["beta", null],
      ],
    );
    assert.doesNotMatch(explained.text, /operator-secret-value/, "a value the operator configured is not shown");

    const dir = tempDir(t);
    const path = join(dir, "config.yaml");
    writeFileSync(path, config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", rules));
    const result = await runCli(["route", "m", "--explain", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^body: alpha\/alpha-m drops logprobs; fills in temperature; sets user$/m);
    assert.doesNotMatch(result.stdout, /body: beta/);
  });
});
