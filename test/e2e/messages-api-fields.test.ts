// POST /v1/messages end to end, for what the Anthropic SDK sends and reads beyond the basics in
// messages-api.test.ts (kept apart to stay under 400 lines): structured outputs, effort and strict tools, the
// `request-id` header, documents in the token estimate, and Node's socket-level errors in Anthropic's shape.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { jsonSchemaOutputFormat } from "@anthropic-ai/sdk/helpers/json-schema";
import { CHAT_ROUTE, chatRequests, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const CLIENT_KEY = "client-key-anthropic";

/** `modelOptions`: more keys of the model `m` (`, context: 8000`); `server`: more server keys, each on its line. */
async function scene(t: Parameters<typeof useMock>[0], modelOptions = "", server = "") {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
${server}providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: ${UPSTREAM_ID}${modelOptions} }
`,
  );
  return { mock, gateway, client: new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 }) };
}

const weatherTool = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

/** A raw HTTP exchange on a new connection: everything the server wrote until it closed. */
function rawExchange(gateway: TestGateway, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connect(gateway.port, "127.0.0.1", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });
    socket.on("close", () => resolve(text));
    socket.on("error", reject);
  });
}

describe("messages API: fields the SDK sends and reads", () => {
  test("a system turn inside messages (the SDK's SystemMessageParam) reaches the provider as a system message there", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Terse.", UPSTREAM_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 32,
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello! How can I help?" },
        { role: "system", content: "From now on, answer in one word." },
        { role: "user", content: "How are you?" },
      ],
    });
    assert.deepEqual(message.content, [{ type: "text", text: "Terse.", citations: null }]);
    const sent = chatRequests(mock)[0]?.body as { messages: { role: string; content: unknown }[] };
    assert.deepEqual(
      sent.messages.map((entry) => entry.role),
      ["user", "assistant", "system", "user"],
    );
    assert.equal(sent.messages[2]?.content, "From now on, answer in one word.");
  });

  test("messages.parse(): output_config.format is response_format upstream; effort and a strict tool are passed on", async (t) => {
    const { mock, client } = await scene(t, ", json_schema: true, reasoning: true");
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] } as const;
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion('{"city":"Paris"}', UPSTREAM_ID) });
    const message = await client.messages.parse({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "Which city?" }],
      tools: [{ ...weatherTool, strict: true }],
      output_config: { format: jsonSchemaOutputFormat(schema), effort: "max" },
    });
    assert.deepEqual(message.parsed_output, { city: "Paris" });
    const sent = (chatRequests(mock)[0]?.body ?? {}) as Record<string, unknown>;
    assert.deepEqual(sent.response_format, {
      type: "json_schema",
      json_schema: { name: "output", schema: { ...schema, additionalProperties: false } },
    });
    assert.equal(sent.reasoning_effort, "high");
    assert.deepEqual(sent.tools, [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: weatherTool.description,
          parameters: weatherTool.input_schema,
          strict: true,
        },
      },
    ]);
  });

  test("the request id reaches the SDK as `request-id`: JSON answers, streams and errors", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: "x" }],
    });
    assert.match(message._request_id ?? "", /^req-/);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hi."], UPSTREAM_ID, { usage: true }) });
    const stream = client.messages.stream({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] });
    await stream.finalMessage();
    assert.match(stream.request_id ?? "", /^req-/);
    await assert.rejects(
      client.messages.create({ model: "no-such-model", max_tokens: 10, messages: [{ role: "user", content: "x" }] }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.NotFoundError, String(error));
        assert.match(error.requestID ?? "", /^req-/);
        assert.equal(error.requestID, (error.error as { request_id?: string }).request_id);
        return true;
      },
    );
  });

  test("tool_choice any or tool with no tool to call is a 400 naming tool_choice; auto and none without tools are sent without it", async (t) => {
    const { mock, client } = await scene(t);
    const base = { model: "m", max_tokens: 10, messages: [{ role: "user" as const, content: "x" }] };
    const refusals = [
      { ...base, tool_choice: { type: "any" as const } },
      { ...base, tools: [], tool_choice: { type: "tool" as const, name: "get_weather" } },
      { ...base, tools: [weatherTool], tool_choice: { type: "tool" as const, name: "get_time" } },
    ];
    for (const request of refusals) {
      await assert.rejects(client.messages.create(request), (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError, String(error));
        const body = error.error as { type?: string; error?: { type?: string; message?: string } };
        assert.equal(body.type, "error");
        assert.equal(body.error?.type, "invalid_request_error");
        assert.match(body.error?.message ?? "", /`tool_choice`/);
        return true;
      });
    }
    // Before, these were sent without the choice and a text answer came back where a tool call was required.
    assert.equal(chatRequests(mock).length, 0);

    for (const type of ["auto", "none"] as const) {
      mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
      const message = await client.messages.create({ ...base, tool_choice: { type } });
      assert.deepEqual(message.content, [{ type: "text", text: "Hi.", citations: null }]);
    }
    const sent = chatRequests(mock).map((request) => request.body as Record<string, unknown>);
    assert.deepEqual(
      sent.map((body) => [body.tools, body.tool_choice]),
      [
        [undefined, undefined],
        [undefined, undefined],
      ],
    );
  });

  test("a PDF document is counted by its size, in countTokens and in the context check", async (t) => {
    const { mock, client } = await scene(t, ", context: 8000");
    const data = Buffer.alloc(600_000, 7).toString("base64");
    const messages = [
      {
        role: "user" as const,
        content: [
          {
            type: "document" as const,
            source: { type: "base64" as const, media_type: "application/pdf" as const, data },
          },
          { type: "text" as const, text: "Summarize" },
        ],
      },
    ];
    const counted = await client.messages.countTokens({ model: "m", messages });
    assert.ok(counted.input_tokens >= 18_000, String(counted.input_tokens));
    await assert.rejects(client.messages.create({ model: "m", max_tokens: 100, messages }), Anthropic.APIError);
    assert.equal(chatRequests(mock).length, 0, "an 8,000-token model is not sent an 18,000-token prompt");
  });

  test("JSON and stream agree when the upstream is vague: `tool_calls` with text only ends the turn, no usage is estimated", async (t) => {
    const { mock, client } = await scene(t);
    const body = { ...chatCompletion("Just text", UPSTREAM_ID), usage: undefined };
    body.choices = body.choices.map((choice) => ({ ...choice, finish_reason: "tool_calls" }));
    mock.enqueue(CHAT_ROUTE, { kind: "json", body });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Just", " text"], UPSTREAM_ID, { finishReason: "tool_calls" }),
    });
    const request = {
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user" as const, content: "Tell me a long story about the sea and the ships on it." }],
    };
    const json = await client.messages.create(request);
    const streamed = await client.messages.stream(request).finalMessage();
    for (const message of [json, streamed]) {
      assert.equal(message.stop_reason, "end_turn");
      assert.ok(message.usage.input_tokens > 10, `${message.usage.input_tokens}: the prompt's estimate, not 0`);
    }
    assert.equal(json.usage.input_tokens, streamed.usage.input_tokens);
  });

  test("a prompt with a document does not teach the calibration (its size-based count is no tokenizer's)", async (t) => {
    const { mock, client } = await scene(t);
    const text = { model: "m", messages: [{ role: "user" as const, content: "many words ".repeat(400) }] };
    const before = await client.messages.countTokens(text);
    const data = Buffer.alloc(600_000, 7).toString("base64");
    const source = { type: "base64" as const, media_type: "application/pdf" as const, data };
    // The provider reports far fewer tokens than the estimate: learned, every text prompt would shrink with it.
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("A summary.", UPSTREAM_ID, { prompt_tokens: 900, completion_tokens: 2 }),
    });
    await client.messages.create({
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: [{ type: "document", source }] }],
    });
    assert.equal((await client.messages.countTokens(text)).input_tokens, before.input_tokens);
  });

  test("max_tokens 0 (Anthropic's cache pre-warming): the prompt is sent with a one-token limit, the answer has no content", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("Sure", UPSTREAM_ID, { prompt_tokens: 40, completion_tokens: 1 }),
    });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Sure"], UPSTREAM_ID, { finishReason: "length" }) });
    const request = {
      model: "m",
      max_tokens: 0,
      system: "A long system prompt worth caching.",
      messages: [{ role: "user" as const, content: "Warm up" }],
    };
    const json = await client.messages.create(request);
    const texts: string[] = [];
    const streamed = await client.messages
      .stream(request)
      .on("text", (text) => texts.push(text))
      .finalMessage();
    for (const message of [json, streamed]) {
      assert.deepEqual(message.content, []);
      assert.equal(message.stop_reason, "max_tokens");
    }
    assert.deepEqual(texts, [], "no text event: the client asked for no response");
    assert.equal(json.usage.input_tokens, 40);
    // A chat provider takes no limit of 0; its prompt cache is written by a request that generates one token.
    assert.deepEqual(
      chatRequests(mock).map((sent) => (sent.body as { max_tokens?: unknown }).max_tokens),
      [1, 1],
    );
    // The same body counted (clients send one body to both): its `max_tokens` of 0 is no reason to refuse it.
    const counted = await client.messages.countTokens(request as Anthropic.MessageCountTokensParams);
    assert.ok(counted.input_tokens > 0);
  });

  test("Node's socket-level errors on /v1/messages come in Anthropic's shape: a slow body (408), huge headers (431)", async (t) => {
    const { gateway } = await scene(t, "", "  request_timeout_ms: 600\n  headers_timeout_ms: 400\n");
    const head = `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: ${CLIENT_KEY}\r\ncontent-type: application/json\r\n`;
    const slow = await rawExchange(gateway, `${head}content-length: 100\r\n\r\n{"model"`);
    const [slowHead = "", slowBody = ""] = slow.split("\r\n\r\n");
    assert.match(slowHead, /^HTTP\/1\.1 408 /);
    const requestId = /^request-id: (.+)$/m.exec(slowHead)?.[1];
    assert.match(requestId ?? "", /^req-/);
    assert.deepEqual(JSON.parse(slowBody), {
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "The request was not received in time; the connection is closed.",
      },
      request_id: requestId,
    });
    const huge = await rawExchange(gateway, `${head}x-big: ${"a".repeat(20_000)}\r\ncontent-length: 2\r\n\r\n{}`);
    const [hugeHead = "", hugeBody = ""] = huge.split("\r\n\r\n");
    assert.match(hugeHead, /^HTTP\/1\.1 431 /);
    assert.equal((JSON.parse(hugeBody) as { type?: string }).type, "error");
    // The same overflow on a chat route keeps the OpenAI shape.
    const chat = await rawExchange(
      gateway,
      `${head.replace("/v1/messages", "/v1/chat/completions")}x-big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    assert.equal(
      (JSON.parse(chat.split("\r\n\r\n")[1] ?? "") as { error?: { code?: string } }).error?.code,
      "headers_too_large",
    );
  });
});
