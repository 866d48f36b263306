// POST /v1/messages with what today's Anthropic clients send beyond plain text and tools, through the official
// @anthropic-ai/sdk against a scripted chat upstream: `search_result` blocks (a RAG tool's results, top level or in a
// `tool_result`), and a beta request as Claude Code and the Agent SDK send it (`anthropic-beta`, `context_management`,
// top-level and per-block `cache_control` with `ttl`, adaptive thinking, `service_tier`). The matrix of what each
// field becomes is docs/protocols.md "Anthropic Messages".
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

const CLIENT_KEY = "client-key-anthropic";

async function scene(t: Parameters<typeof oneProviderScene>[0]) {
  const { mock, gateway } = await oneProviderScene(t, {}, CLIENT_KEY);
  return { mock, gateway, client: new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 }) };
}

type SentMessage = { role: string; content: unknown; tool_call_id?: string };

function sentMessages(body: unknown): SentMessage[] {
  return ((body ?? {}) as { messages?: SentMessage[] }).messages ?? [];
}

const searchTool = {
  name: "search_docs",
  description: "Search the knowledge base",
  input_schema: { type: "object" as const, properties: { query: { type: "string" } }, required: ["query"] },
};

const ragConversation: Anthropic.MessageParam[] = [
  { role: "user", content: "How do I rotate keys?" },
  {
    role: "assistant",
    content: [{ type: "tool_use", id: "toolu_1", name: "search_docs", input: { query: "rotate keys" } }],
  },
  {
    role: "user",
    content: [
      {
        type: "tool_result",
        tool_use_id: "toolu_1",
        content: [
          {
            type: "search_result",
            source: "https://docs.example.com/keys",
            title: "Key rotation",
            content: [
              { type: "text", text: "Create the new key first." },
              { type: "text", text: "Then revoke the old one." },
            ],
            citations: { enabled: true },
            cache_control: { type: "ephemeral", ttl: "1h" },
          },
        ],
      },
      {
        type: "search_result",
        source: "kb://faq/7",
        title: "FAQ",
        content: [{ type: "text", text: "Keys never expire on their own." }],
      },
      { type: "text", text: "Answer from these." },
    ],
  },
];

describe("messages API: blocks and fields of today's Anthropic clients", () => {
  test("search_result blocks reach the provider as text with their title and source, in a tool result and a user turn", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Create, then revoke.", VENDOR_MODEL_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 64,
      tools: [searchTool],
      messages: ragConversation,
    });
    assert.deepEqual(message.content[0], { type: "text", text: "Create, then revoke.", citations: null });
    const sent = sentMessages(chatRequests(mock)[0]?.body);
    const tool = sent.find((entry) => entry.role === "tool");
    assert.equal(
      tool?.content,
      "Search result: Key rotation\nSource: https://docs.example.com/keys\n\nCreate the new key first.\nThen revoke the old one.",
    );
    assert.equal(tool?.tool_call_id, "toolu_1");
    assert.equal(sent.at(-1)?.role, "user");
    assert.equal(
      sent.at(-1)?.content,
      "Search result: FAQ\nSource: kb://faq/7\n\nKeys never expire on their own.\nAnswer from these.",
    );
    // count_tokens takes the same conversation (before, both were a 400 naming `search_result`).
    const counted = await client.messages.countTokens({ model: "m", tools: [searchTool], messages: ragConversation });
    assert.ok(counted.input_tokens > 0, JSON.stringify(counted));
    assert.equal(chatRequests(mock).length, 1, "count_tokens sends nothing upstream");
  });

  test("a search_result without its title is a 400 at its position, as Anthropic's API names it", async (t) => {
    const { mock, client } = await scene(t);
    const bad = { type: "search_result", source: "kb://1", content: [] } as unknown as Anthropic.SearchResultBlockParam;
    await assert.rejects(
      client.messages.create({ model: "m", max_tokens: 8, messages: [{ role: "user", content: [bad] }] }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError, String(error));
        const body = error.error as { error?: { message?: string } };
        assert.match(body.error?.message ?? "", /^messages\.0\.content\.0\.title: `title` is required/);
        return true;
      },
    );
    assert.equal(chatRequests(mock).length, 0);
  });

  test("mcp_servers (Anthropic's MCP connector) is a 400 naming it, not left out: the model would lack the tools", async (t) => {
    const { mock, client } = await scene(t);
    await assert.rejects(
      client.beta.messages.create({
        model: "m",
        max_tokens: 8,
        betas: ["mcp-client-2025-04-04"],
        mcp_servers: [{ type: "url", url: "https://mcp.example.com/sse", name: "crm" }],
        messages: [{ role: "user", content: "List my open deals." }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError, String(error));
        const body = error.error as { error?: { type?: string; message?: string } };
        assert.equal(body.error?.type, "invalid_request_error");
        assert.match(body.error?.message ?? "", /^`mcp_servers` \(Anthropic's MCP connector\) is not supported/);
        return true;
      },
    );
    assert.equal(chatRequests(mock).length, 0, "nothing was sent upstream");
  });

  test("a beta request as Claude Code streams it: accepted, and Anthropic-only fields do not reach the chat provider", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Done", "."], VENDOR_MODEL_ID) });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 });
    const stream = client.beta.messages.stream({
      model: "m",
      max_tokens: 256,
      betas: ["context-management-2025-06-27", "interleaved-thinking-2025-05-14", "prompt-caching-scope-2026-01-05"],
      system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral", ttl: "1h" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "Hi", cache_control: { type: "ephemeral" } }] }],
      tools: [{ ...searchTool, cache_control: { type: "ephemeral", ttl: "5m" } }],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
      thinking: { type: "adaptive" },
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      metadata: { user_id: "user-1" },
      service_tier: "auto",
      top_k: 5,
    });
    const message = await stream.finalMessage();
    assert.deepEqual(
      message.content.map((block) => (block.type === "text" ? block.text : block.type)),
      ["Done."],
    );
    const recorded = chatRequests(mock)[0];
    const body = (recorded?.body ?? {}) as Record<string, unknown>;
    for (const field of ["context_management", "betas", "service_tier", "top_k", "cache_control", "thinking"]) {
      assert.equal(body[field], undefined, `${field} is not sent to a chat provider`);
    }
    assert.equal(recorded?.headers["anthropic-beta"], undefined, "the beta header is not forwarded");
    assert.equal(body.parallel_tool_calls, false);
    assert.equal(body.user, "user-1");
    const tools = body.tools as { function: Record<string, unknown> }[];
    assert.deepEqual(Object.keys(tools[0]?.function ?? {}).sort(), ["description", "name", "parameters"]);
    assert.deepEqual(sentMessages(body).slice(0, 2), [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Hi" },
    ]);
  });

  test("bash and text editor client tools go as function tools with their input schema; a server tool is a 400 naming it", async (t) => {
    const { mock, client } = await scene(t);
    const toolCall = { id: "call_1", type: "function", function: { name: "bash", arguments: '{"command":"ls -la"}' } };
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: {
        ...chatCompletion("", VENDOR_MODEL_ID),
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: null, tool_calls: [toolCall] },
            finish_reason: "tool_calls",
          },
        ],
      },
    });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 64,
      tools: [
        { type: "bash_20250124", name: "bash" },
        { type: "text_editor_20250728", name: "str_replace_based_edit_tool", max_characters: 10000 },
      ],
      messages: [{ role: "user", content: "List the files." }],
    });
    assert.equal(message.stop_reason, "tool_use");
    const use = message.content.find((block) => block.type === "tool_use");
    assert.deepEqual(use && { name: use.name, input: use.input }, { name: "bash", input: { command: "ls -la" } });
    type SentTool = { type: string; function: { name: string; parameters: Record<string, unknown> } };
    const tools = ((chatRequests(mock)[0]?.body ?? {}) as { tools?: SentTool[] }).tools ?? [];
    assert.deepEqual(
      tools.map((tool) => [tool.type, tool.function.name]),
      [
        ["function", "bash"],
        ["function", "str_replace_based_edit_tool"],
      ],
    );
    const [bash, editor] = tools.map((tool) => tool.function.parameters as { properties: Record<string, unknown> });
    assert.deepEqual(Object.keys(bash?.properties ?? {}), ["command", "restart"]);
    assert.deepEqual(editor?.properties.command, {
      type: "string",
      enum: ["view", "create", "str_replace", "insert"],
      description: "The command to run.",
    });

    await assert.rejects(
      client.messages.create({
        model: "m",
        max_tokens: 8,
        tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }],
        messages: [{ role: "user", content: "News?" }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError, String(error));
        const body = error.error as { error?: { message?: string } };
        assert.match(body.error?.message ?? "", /^Tools of type `web_search_20250305` are not supported/);
        return true;
      },
    );
    assert.equal(chatRequests(mock).length, 1, "the refused request sent nothing upstream");
  });

  test("top_k and top_p of -1 (LangChain JS ChatAnthropic's defaults: not set) are taken and not sent; 1.5 is a 400", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello.", VENDOR_MODEL_ID) });
    // What ChatAnthropic's invocationParams sends when only the model is configured. (This SDK's types no longer
    // list the sampling fields; older ones, which LangChain pins, do.)
    const langChainBody = {
      model: "m",
      max_tokens: 2048,
      temperature: 1,
      top_k: -1,
      top_p: -1,
      messages: [{ role: "user", content: "Hi" }],
    } as unknown as Anthropic.MessageCreateParamsNonStreaming;
    const message = await client.messages.create(langChainBody);
    assert.equal(message.content[0]?.type === "text" ? message.content[0].text : "", "Hello.");
    const body = (chatRequests(mock)[0]?.body ?? {}) as Record<string, unknown>;
    assert.equal(body.temperature, 1);
    assert.equal("top_p" in body, false, "top_p -1 is not sent");
    assert.equal("top_k" in body, false);
    await assert.rejects(
      client.messages.create({ ...langChainBody, top_p: 1.5 } as Anthropic.MessageCreateParamsNonStreaming),
      (error: unknown) => error instanceof Anthropic.BadRequestError && /top_p/.test(error.message),
    );
    assert.equal(chatRequests(mock).length, 1);
  });
});
