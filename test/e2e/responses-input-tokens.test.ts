// POST /v1/responses/input_tokens end to end with the openai SDK's `responses.inputTokens.count()`: the gateway's
// own estimate of the translated prompt (the same as count_tokens gives the same prompt on the Messages door), no
// upstream call, a kept previous response counted in, the client key checked, refusals in OpenAI's shape.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  modelOf,
  oneProviderScene,
  openAiClient,
  send,
  sentContentsOf,
  serveEveryChat,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

const CLIENT_KEY = "client-key-counting";

async function scene(t: Parameters<typeof useMock>[0]) {
  return oneProviderScene(t, {}, CLIENT_KEY);
}

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "Current weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

describe("responses.inputTokens.count()", () => {
  test("the gateway's estimate of the translated prompt, as count_tokens gives it, without an upstream call", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const short = await client.responses.inputTokens.count({ model: "m", input: "Hi" });
    assert.equal(short.object, "response.input_tokens");
    assert.ok(short.input_tokens > 0, String(short.input_tokens));

    const instructions = "You are a helpful assistant.";
    const question = "Tell me a long story about the sea and the ships on it, please.";
    const long = await client.responses.inputTokens.count({
      model: "m",
      instructions,
      input: [{ role: "user", content: question }],
      tools: [weatherTool],
    });
    assert.ok(long.input_tokens > short.input_tokens + 10, `${long.input_tokens} vs ${short.input_tokens}`);
    // The same prompt through the Messages door translates to the same chat prompt, so to the same count.
    const counted = await send(gateway, "POST", "/v1/messages/count_tokens", {
      headers: { "x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01" },
      body: {
        model: "m",
        system: instructions,
        messages: [{ role: "user", content: question }],
        tools: [{ name: weatherTool.name, description: weatherTool.description, input_schema: weatherTool.parameters }],
      },
    });
    assert.equal(counted.status, 200, counted.text);
    assert.deepEqual(counted.json, { input_tokens: long.input_tokens });
    // `model` is optional in OpenAI's count: the plain estimate then (no calibration has been learned here).
    assert.deepEqual(await client.responses.inputTokens.count({ input: "Hi" }), short);
    assert.equal(chatRequests(mock).length, 0);
  });

  test("previous_response_id: the kept conversation is counted in", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("The sea was calm and the ships sailed home before the storm.", "vendor/m-instruct"),
    });
    const first = await client.responses.create({ model: "m", input: "Tell me about the sea." });
    const alone = await client.responses.inputTokens.count({ model: "m", input: "And then?" });
    const continued = await client.responses.inputTokens.count({
      model: "m",
      input: "And then?",
      previous_response_id: first.id,
    });
    assert.ok(continued.input_tokens > alone.input_tokens + 10, `${continued.input_tokens} vs ${alone.input_tokens}`);
    assert.equal(chatRequests(mock).length, 1, "counting called no upstream");
  });

  test("refusals as on /v1/responses, in OpenAI's shape; the client key is checked", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const refusals: [OpenAI.Responses.InputTokenCountParams, number, string | null][] = [
      [{ model: "m", input: "x", tool_choice: "required" }, 400, "tool_choice"],
      [{ model: "m", input: "x", tools: [{ type: "local_shell" }] }, 400, "tools[0].type"],
      [{ model: "m", input: "x", previous_response_id: "resp_unknown" }, 400, "previous_response_id"],
    ];
    for (const [body, status, param] of refusals) {
      await assert.rejects(client.responses.inputTokens.count(body), (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.status, status, error.message);
        assert.equal(error.param, param);
        return true;
      });
    }
    const badInput = await send(gateway, "POST", "/v1/responses/input_tokens", {
      headers: { authorization: `Bearer ${CLIENT_KEY}` },
      body: { model: "m", input: 42 },
    });
    assert.equal(badInput.status, 400, badInput.text);
    assert.equal(errorOf(badInput).type, "invalid_request_error");
    await assert.rejects(
      openAiClient(gateway, "wrong-key").responses.inputTokens.count({ model: "m", input: "x" }),
      OpenAI.AuthenticationError,
    );
    assert.equal(chatRequests(mock).length, 0);
  });

  test('truncation: "auto": the input counted as it would be sent, its oldest items left out to fit', async (t) => {
    const { mock, client } = await oneProviderScene(t, { keys: ", context: 500" }, CLIENT_KEY);
    const older = { role: "user" as const, content: "cat ".repeat(300).trim() };
    const last = { role: "user" as const, content: "fox ".repeat(300).trim() };
    const whole = await client.responses.inputTokens.count({ model: "m", input: [older, last] });
    const auto = await client.responses.inputTokens.count({ model: "m", truncation: "auto", input: [older, last] });
    const sent = await client.responses.inputTokens.count({ model: "m", input: [last] });
    // OpenAI's count takes `truncation` ("auto": items dropped from the beginning to fit the context window).
    assert.equal(auto.input_tokens, sent.input_tokens, `${auto.input_tokens} vs ${whole.input_tokens}`);
    assert.ok(whole.input_tokens > sent.input_tokens + 200, `${whole.input_tokens} vs ${sent.input_tokens}`);
    // What fits is counted whole, and `disabled` counts everything (the request would be a 400, not shorter).
    const fitting = await client.responses.inputTokens.count({ model: "m", truncation: "auto", input: [last] });
    assert.deepEqual(fitting, sent);
    const disabled = await client.responses.inputTokens.count({
      model: "m",
      truncation: "disabled",
      input: [older, last],
    });
    assert.deepEqual(disabled, whole);
    assert.equal(chatRequests(mock).length, 0);
  });

  test('truncation: "auto" with `models` fallbacks: counted whole when a fallback holds it, as the request is sent', async (t) => {
    const mock = await useMock(t);
    serveEveryChat(mock, "Whole.");
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: small-m, context: 500 }
      big: { id: big-m, context: 5000 }
`,
    );
    const client = openAiClient(gateway);
    const older = { role: "user" as const, content: "cat ".repeat(300).trim() };
    const last = { role: "user" as const, content: "fox ".repeat(300).trim() };
    // `models` is the gateway's extension (the SDK types no such field).
    const request = { model: "m", models: ["big"], truncation: "auto" as const, input: [older, last] };
    const whole = await client.responses.inputTokens.count({ model: "m", input: [older, last] });
    const auto = await client.responses.inputTokens.count(request as OpenAI.Responses.InputTokenCountParams);
    assert.equal(auto.input_tokens, whole.input_tokens, "the fallback holds it whole: nothing is left out");
    // What POST /v1/responses does with the same body: `big` is sent every item.
    await client.responses.create(request as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    assert.deepEqual(sentContentsOf(chatRequests(mock)[0]), [older.content, last.content]);
    assert.equal(modelOf(chatRequests(mock)[0]), "big-m");
  });
});
