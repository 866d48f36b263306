// Claude Code's requests, replayed from what Claude Code 2.1.197 sent the gateway in a turn that runs one Bash
// command (test/fixtures/agent-cli/claude-code-2.1.197-bash-*.json): `POST /v1/messages?beta=true` with its beta
// headers, a `system` of text blocks with `cache_control`, a `system` turn after the user's, 24 tools,
// `thinking: {type: "adaptive"}`, `context_management`, `output_config.effort` and `metadata.user_id`; the second
// request sends back the model's thinking block (empty signature) and Bash call with the tool_result.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatStream, type MockStep, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const CLIENT_KEY = "client-key-claude";

interface CapturedRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
}

function captured(step: 1 | 2): CapturedRequest {
  const url = new URL(`../fixtures/agent-cli/claude-code-2.1.197-bash-${step}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as CapturedRequest;
}

async function scene(t: Parameters<typeof useMock>[0]): Promise<{ mock: MockUpstream; gateway: TestGateway }> {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: ${UPSTREAM_ID}, context: 200000, reasoning: true }
`,
  );
  return { mock, gateway };
}

/** Sends a captured request as Claude Code did: its path, headers and body, the client key in `x-api-key`. */
function replay(gateway: TestGateway, request: CapturedRequest, body: Record<string, unknown> = request.body) {
  return send(gateway, "POST", request.path, { body, headers: { ...request.headers, "x-api-key": CLIENT_KEY } });
}

interface SentChat {
  messages: { role: string; content: unknown; tool_call_id?: string; tool_calls?: unknown[] }[];
  tools?: { function: { name: string; parameters: unknown } }[];
}

function sent(mock: MockUpstream, index: number): SentChat {
  return chatRequests(mock)[index]?.body as SentChat;
}

/** The stream's events as `[event name, data]`. */
function events(streamText: string): [string, Record<string, unknown>][] {
  return streamText
    .split("\n\n")
    .filter((block) => block.startsWith("event: "))
    .map((block) => {
      const [eventLine = "", dataLine = ""] = block.split("\n");
      return [eventLine.slice("event: ".length), JSON.parse(dataLine.slice("data: ".length))];
    });
}

/** The first request with the billing header of another conversation (its last part changes with each). */
function withBillingSuffix(request: CapturedRequest, suffix: string): Record<string, unknown> {
  const system = (request.body.system as { type: string; text: string }[]).map((block) => ({
    ...block,
    text: block.text.replace(/cc_version=2\.1\.197\.\w+;/, `cc_version=2.1.197.${suffix};`),
  }));
  return { ...request.body, system };
}

describe("Claude Code 2.1.197's requests through the gateway", () => {
  test("the billing header block reaches no provider: the system prompt starts with Claude Code's own words, the same in every conversation", async (t) => {
    const { mock, gateway } = await scene(t);
    const request = captured(1);
    for (const suffix of ["47b", "2f7"]) {
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hi."], UPSTREAM_ID, { usage: true }) });
      const answer = await replay(gateway, request, withBillingSuffix(request, suffix));
      assert.equal(answer.status, 200, answer.text);
    }
    const [first, second] = [sent(mock, 0), sent(mock, 1)];
    const system = first.messages[0];
    assert.equal(system?.role, "system");
    assert.match(String(system?.content), /^You are a Claude agent, built on Anthropic's Claude Agent SDK\.\n/);
    assert.doesNotMatch(JSON.stringify(first.messages), /x-anthropic-billing-header/);
    // Two conversations' prompts share their whole prefix: the system prompt and the tools.
    assert.deepEqual(second.messages[0], first.messages[0]);
    assert.deepEqual(second.tools, first.tools);
  });

  test("a turn with thinking and a Bash call streams as Claude Code reads it, and its second request goes upstream whole", async (t) => {
    const { mock, gateway } = await scene(t);
    const bash = {
      id: "call_2",
      name: "Bash",
      arguments: JSON.stringify({ command: "echo agent-tool-ok", description: "Write the proof file" }),
    };
    const [roleChunk, ...callChunks] = toolCallStream(UPSTREAM_ID, [bash]);
    const thinking = {
      data: {
        id: "chatcmpl-tools",
        object: "chat.completion.chunk",
        created: 1767225600,
        model: UPSTREAM_ID,
        choices: [{ index: 0, delta: { reasoning_content: "Let me think." }, logprobs: null, finish_reason: null }],
      },
    };
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: [roleChunk ?? { raw: "" }, thinking, ...callChunks] });
    const first = await replay(gateway, captured(1));
    assert.equal(first.status, 200, first.text);
    const upstream = sent(mock, 0);
    assert.equal(upstream.tools?.length, 24);
    assert.ok(upstream.tools?.some((tool) => tool.function.name === "Bash"));
    const streamed = events(first.text);
    const blocks = streamed
      .filter(([name]) => name === "content_block_start")
      .map(([, data]) => (data.content_block as { type: string }).type);
    assert.deepEqual(blocks, ["thinking", "tool_use"]);
    const signature = streamed.find(([, data]) => (data.delta as { type?: string })?.type === "signature_delta");
    assert.ok(signature, "a thinking block ends with a signature_delta");
    const input = streamed
      .filter(([, data]) => (data.delta as { type?: string })?.type === "input_json_delta")
      .map(([, data]) => (data.delta as { partial_json: string }).partial_json)
      .join("");
    assert.deepEqual(JSON.parse(input), JSON.parse(bash.arguments));
    const delta = streamed.find(([name]) => name === "message_delta")?.[1];
    assert.equal((delta?.delta as { stop_reason?: string })?.stop_reason, "tool_use");

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Done."], UPSTREAM_ID, { usage: true }) });
    const second = await replay(gateway, captured(2));
    assert.equal(second.status, 200, second.text);
    const messages = sent(mock, 1).messages;
    const [call, result] = messages.slice(-2);
    assert.deepEqual(
      ((call?.tool_calls ?? []) as { id: string; function: { name: string } }[]).map((c) => [c.id, c.function.name]),
      [["call_2", "Bash"]],
    );
    assert.deepEqual([result?.role, result?.tool_call_id, result?.content], ["tool", "call_2", "agent-tool-ok"]);
  });
});

/** A PNG's first bytes: what a screenshot's tool_result carries, in base64. */
const PNG_BASE64 = "iVBORw0KGgo=";

/**
 * A provider that checks tool messages as some do: a `tool` message with empty content is a 400 (the wording a
 * strict OpenAI-compatible server uses); anything else is answered with a stream.
 */
function refusingEmptyToolContent(request: RecordedRequest): MockStep {
  const body = request.body as SentChat;
  const empty = body.messages.findIndex((message) => message.role === "tool" && message.content === "");
  if (empty >= 0) {
    return {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `messages[${empty}].content: content must not be empty`,
          type: "invalid_request_error",
          param: `messages[${empty}].content`,
          code: null,
        },
      },
    };
  }
  return { kind: "sse", events: chatStream(["I see the screenshot."], UPSTREAM_ID, { usage: true }) };
}

/** Claude Code's second request, its Bash result replaced by `content` (the screenshot a Read of a PNG returns). */
function withToolResult(content: unknown[], isError = false): Record<string, unknown> {
  const request = captured(2);
  const messages = (request.body.messages as { role: string; content: unknown }[]).slice(0, -1);
  const result = { tool_use_id: "call_2", type: "tool_result", content, is_error: isError };
  return { ...request.body, messages: [...messages, { role: "user", content: [result] }] };
}

describe("a tool result of images only", () => {
  test("reaches a provider that refuses an empty tool message: the tool message says where the image is, the image follows", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.setDefault(CHAT_ROUTE, refusingEmptyToolContent);
    const image = { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_BASE64 } };
    const answer = await replay(gateway, captured(2), withToolResult([image]));
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /I see the screenshot\./);
    assert.equal(chatRequests(mock).length, 1, "served at its first attempt");
    const [call, result, user] = sent(mock, 0).messages.slice(-3);
    assert.equal(call?.role, "assistant");
    assert.deepEqual(
      [result?.role, result?.tool_call_id, result?.content],
      ["tool", "call_2", "(image attached below)"],
    );
    assert.deepEqual(user, {
      role: "user",
      content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${PNG_BASE64}` } }],
    });
  });

  test("two images are counted, an error result keeps its prefix, and a result with text is sent as its text", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.setDefault(CHAT_ROUTE, refusingEmptyToolContent);
    const image = { type: "image", source: { type: "url", url: "https://example.com/shot.png" } };
    const cases: [unknown[], boolean, string][] = [
      [[image, image], false, "(2 images attached below)"],
      [[image], true, "Error: (image attached below)"],
      [[{ type: "text", text: "Screenshot:" }, image], false, "Screenshot:"],
    ];
    for (const [index, [content, isError, expected]] of cases.entries()) {
      const answer = await replay(gateway, captured(2), withToolResult(content, isError));
      assert.equal(answer.status, 200, answer.text);
      const tool = sent(mock, index).messages.find((message) => message.role === "tool");
      assert.equal(tool?.content, expected);
    }
  });
});

describe("Claude Code's start", () => {
  test("its `HEAD /` without a key (a warm-up at each start) is answered 200, and so is `GET /`: no 401, no upstream call", async (t) => {
    const { mock, gateway } = await scene(t);
    const head = await send(gateway, "HEAD", "/");
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    const get = await send(gateway, "GET", "/");
    assert.equal(get.status, 200);
    assert.deepEqual(get.json, { status: "ok" });
    assert.equal(mock.requests.length, 0);
    // Only `/` and `/ok` are open: any other path still wants the key.
    assert.equal((await send(gateway, "GET", "/v1/models")).status, 401);
    assert.equal((await send(gateway, "HEAD", "/v1/models")).status, 401);
  });
});
