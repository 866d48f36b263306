// Function tools through POST /v1/responses where chat providers and clients differ from OpenAI's happy path,
// with the official openai SDK as the client: calls streamed without `tool_calls[].index` (Gemini), output
// replayed with its text after its call, `tool_choice` with no tool left to send upstream, and `custom` tools
// (Codex's free-form `apply_patch`), which chat providers take as a function of one string.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { readChatChunks } from "../../src/protocols/__fixtures__/fixtures.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, send, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

const scene = oneProviderScene;

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

function toolChunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-tools",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

function sentMessages(mock: MockUpstream, index: number): unknown {
  return (chatRequests(mock)[index]?.body as { messages?: unknown } | undefined)?.messages;
}

describe("responses API: tool calls from quirky providers and clients", () => {
  test("a stream with each call whole in its own chunk and no index (Gemini) gives one function_call per call", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: readChatChunks("indexless-tool-calls").map((data) => ({ data })) });
    const final = await client.responses
      .stream({ model: "m", input: "Weather in Paris and Rome?", tools: [weatherTool] })
      .finalResponse();
    assert.deepEqual(
      final.output.map((item) => (item.type === "function_call" ? [item.call_id, item.arguments] : item.type)),
      [
        ["call_1", '{"city":"Paris"}'],
        ["call_2", '{"city":"Rome"}'],
      ],
    );
  });

  test("output whose text follows its call, sent back with the call's output: one assistant turn, then the tool message", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        toolChunk({
          role: "assistant",
          tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }],
        }),
        toolChunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] }),
        toolChunk({ content: "Let me look that up." }),
        toolChunk({}, "tool_calls"),
      ],
    });
    const first = await client.responses
      .stream({ model: "m", input: "Weather in Paris?", tools: [weatherTool], store: false })
      .finalResponse();
    assert.deepEqual(
      first.output.map((item) => item.type),
      ["function_call", "message"],
    );
    // Sent back as it came, the way the Agents SDK and hand-written loops do.
    const replayed = first.output.flatMap((item): OpenAI.Responses.ResponseInputItem[] =>
      item.type === "function_call" || item.type === "message" ? [item] : [],
    );
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny.", UPSTREAM_ID) });
    const second = await client.responses.create({
      model: "m",
      tools: [weatherTool],
      store: false,
      input: [
        { role: "user", content: "Weather in Paris?" },
        ...replayed,
        { type: "function_call_output", call_id: "call_1", output: "sunny" },
      ],
    });
    assert.equal(second.output_text, "Sunny.");
    assert.deepEqual(sentMessages(mock, 1), [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "Let me look that up.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ]);
  });

  test("tool_choice with no tool to send: auto and none are dropped, a required call is a 400 naming tool_choice", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    const auto = await client.responses.create({ model: "m", input: "hi", tool_choice: "auto" });
    assert.equal(auto.tool_choice, "auto", "the response repeats what the client sent");
    await client.responses.create({ model: "m", input: "hi", tools: [], tool_choice: "none" });
    for (const request of chatRequests(mock)) {
      const body = request.body as Record<string, unknown>;
      assert.ok(!("tool_choice" in body) && !("tools" in body), `no tool_choice without tools: ${request.bodyText}`);
    }
    const demands: OpenAI.Responses.ResponseCreateParamsNonStreaming[] = [
      { model: "m", input: "hi", tool_choice: "required" },
      {
        model: "m",
        input: "hi",
        tools: [weatherTool],
        tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "get_time" }] },
      },
      { model: "m", input: "hi", tools: [weatherTool], tool_choice: { type: "function", name: "get_time" } },
    ];
    for (const request of demands) {
      await assert.rejects(client.responses.create(request), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.type, "invalid_request_error");
        assert.equal(error.param, "tool_choice");
        assert.match(error.message, /tool/);
        return true;
      });
    }
    assert.equal(chatRequests(mock).length, 2, "the refused requests sent nothing upstream");
  });

  describe("custom tools (free-form input, as Codex sends apply_patch)", () => {
    const PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello "world"\n*** End Patch';
    const applyPatch = {
      type: "custom" as const,
      name: "apply_patch",
      description: "Use the `apply_patch` tool to edit files.",
      format: {
        type: "grammar" as const,
        syntax: "lark" as const,
        definition: 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF',
      },
    };
    const callChunks = (): SseScript[] => [
      toolChunk({
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_p", type: "function", function: { name: "apply_patch", arguments: "" } }],
      }),
      toolChunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify({ input: PATCH }).slice(0, 20) } }] }),
      toolChunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify({ input: PATCH }).slice(20) } }] }),
      toolChunk({}, "tool_calls"),
    ];

    test("goes upstream as a function taking one string, told the grammar; the call comes back as custom_tool_call", async (t) => {
      const { mock, client } = await scene(t);
      mock.enqueue(CHAT_ROUTE, {
        kind: "json",
        body: {
          id: "chatcmpl-custom",
          object: "chat.completion",
          created: 1767225600,
          model: UPSTREAM_ID,
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: null,
                tool_calls: [
                  {
                    id: "call_p",
                    type: "function",
                    function: { name: "apply_patch", arguments: JSON.stringify({ input: PATCH }) },
                  },
                ],
              },
              finish_reason: "tool_calls",
            },
          ],
          usage: { prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 },
        },
      });
      const response = await client.responses.create({
        model: "m",
        input: "Add hello.txt",
        tools: [applyPatch, weatherTool],
        tool_choice: { type: "custom", name: "apply_patch" },
      });
      const [item] = response.output;
      assert.equal(item?.type, "custom_tool_call");
      assert.ok(item?.type === "custom_tool_call");
      assert.equal(item.input, PATCH);
      assert.equal(item.call_id, "call_p");
      assert.equal(item.name, "apply_patch");
      assert.deepEqual(response.tools[0], applyPatch, "the response repeats the client's tools");
      const sent = chatRequests(mock)[0]?.body as {
        tools?: { function: Record<string, unknown> }[];
        tool_choice?: unknown;
      };
      const upstreamTool = sent.tools?.[0]?.function;
      assert.equal(upstreamTool?.name, "apply_patch");
      assert.deepEqual((upstreamTool?.parameters as { required?: unknown } | undefined)?.required, ["input"]);
      assert.match(String(upstreamTool?.description), /edit files[\s\S]*lark grammar:\nstart: begin_patch/);
      assert.deepEqual(sent.tool_choice, { type: "function", function: { name: "apply_patch" } });
      assert.equal(sent.tools?.[1]?.function.name, "get_weather", "function tools go as before");
    });

    test("streamed: custom_tool_call_input events give the SDK the whole input; sent back, the call and its output are a function call and a tool message", async (t) => {
      const { mock, client } = await scene(t);
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: callChunks() });
      const stream = client.responses.stream({ model: "m", input: "Add hello.txt", tools: [applyPatch] });
      const seen: string[] = [];
      for await (const event of stream) seen.push(event.type);
      const final = await stream.finalResponse();
      assert.ok(seen.includes("response.custom_tool_call_input.done"), seen.join(" "));
      assert.ok(!seen.includes("response.function_call_arguments.delta"), seen.join(" "));
      const [item] = final.output;
      assert.ok(item?.type === "custom_tool_call", JSON.stringify(final.output));
      assert.equal(item.input, PATCH);

      mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", UPSTREAM_ID) });
      const next = await client.responses.create({
        model: "m",
        tools: [applyPatch],
        input: [
          { role: "user", content: "Add hello.txt" },
          { type: "custom_tool_call", call_id: item.call_id, name: item.name, input: item.input },
          { type: "custom_tool_call_output", call_id: item.call_id, output: "Success. Updated: A hello.txt" },
        ],
      });
      assert.equal(next.output_text, "Done.");
      assert.deepEqual(sentMessages(mock, 1), [
        { role: "user", content: "Add hello.txt" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_p",
              type: "function",
              function: { name: "apply_patch", arguments: JSON.stringify({ input: PATCH }) },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_p", content: "Success. Updated: A hello.txt" },
      ]);

      // Listed back as the client sent them, not as the function call they were upstream.
      const listed = await client.responses.inputItems.list(next.id, { order: "asc" });
      assert.deepEqual(
        listed.data.map((entry) =>
          entry.type === "custom_tool_call"
            ? [entry.type, entry.input]
            : entry.type === "message"
              ? entry.role
              : entry.type,
        ),
        ["user", ["custom_tool_call", PATCH], "custom_tool_call_output"],
      );

      // The kept response carries the call too: a later turn by previous_response_id sends it back the same way.
      mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done again.", UPSTREAM_ID) });
      await client.responses.create({
        model: "m",
        tools: [applyPatch],
        previous_response_id: final.id,
        input: [{ type: "custom_tool_call_output", call_id: item.call_id, output: "ok" }],
      });
      const replayed = sentMessages(mock, 2) as { role: string; tool_calls?: unknown }[];
      assert.deepEqual(replayed.at(1)?.tool_calls, [
        {
          id: "call_p",
          type: "function",
          function: { name: "apply_patch", arguments: JSON.stringify({ input: PATCH }) },
        },
      ]);
    });

    test("a custom tool named like another tool is a 400 naming it; nothing goes upstream", async (t) => {
      const { mock, client } = await scene(t);
      await assert.rejects(
        client.responses.create({
          model: "m",
          input: "hi",
          tools: [{ ...weatherTool }, { type: "custom", name: "get_weather" }],
        }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.param, "tools[1].name");
          return true;
        },
      );
      assert.equal(chatRequests(mock).length, 0);
    });
  });

  test("hosted tools (web_search as Codex offers it by default, image_generation) are left out and said so in a header; one demanded by tool_choice is a 400", async (t) => {
    const { mock, client } = await scene(t);
    const codexTools = [
      { type: "web_search", external_web_access: false },
      weatherTool,
      { type: "image_generation", output_format: "png" },
    ] as OpenAI.Responses.Tool[];
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("No search needed.", UPSTREAM_ID) });
    const { data, response } = await client.responses
      .create({ model: "m", input: "hi", tools: codexTools, tool_choice: "auto", store: false })
      .withResponse();
    assert.equal(data.output_text, "No search needed.");
    assert.equal(response.headers.get("x-gateway-dropped-tools"), "web_search, image_generation");
    assert.deepEqual(data.tools, codexTools, "the response repeats the client's tools");
    const sent = chatRequests(mock)[0]?.body as { tools?: { function: { name: string } }[] };
    assert.deepEqual(
      sent.tools?.map((tool) => tool.function.name),
      ["get_weather"],
    );

    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [toolChunk({ role: "assistant", content: "Streamed." }), toolChunk({}, "stop")],
    });
    const streamed = await client.responses
      .create({ model: "m", input: "hi", tools: [{ type: "web_search" }], stream: true, store: false })
      .withResponse();
    assert.equal(streamed.response.headers.get("x-gateway-dropped-tools"), "web_search");
    for await (const _event of streamed.data) {
      // drained
    }
    assert.ok(!("tools" in ((chatRequests(mock)[1]?.body ?? {}) as object)), "nothing left to send");

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Plain.", UPSTREAM_ID) });
    const plain = await client.responses.create({ model: "m", input: "hi", store: false }).withResponse();
    assert.equal(plain.response.headers.get("x-gateway-dropped-tools"), null);

    for (const body of [
      { model: "m", input: "hi", tools: [{ type: "web_search" }], tool_choice: { type: "web_search" } },
      { model: "m", input: "hi", tools: [{ type: "web_search" }], tool_choice: "required" },
    ] as OpenAI.Responses.ResponseCreateParamsNonStreaming[]) {
      await assert.rejects(client.responses.create(body), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.match(error.param ?? "", /^tool_choice/);
        return true;
      });
    }
    assert.equal(chatRequests(mock).length, 3, "the refused requests sent nothing upstream");
  });

  test("a request shaped as Codex CLI sends it (second turn, streamed) is served: the patch call comes back as Codex reads it", async (t) => {
    const { mock, gateway } = await scene(t);
    const PATCH = "*** Begin Patch\n*** Update File: a.txt\n@@\n-old\n+new\n*** End Patch";
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        toolChunk({ role: "assistant", content: "Patching." }),
        toolChunk({
          tool_calls: [
            {
              index: 0,
              id: "call_2",
              type: "function",
              function: { name: "apply_patch", arguments: JSON.stringify({ input: PATCH }) },
            },
          ],
        }),
        toolChunk({}, "tool_calls"),
        {
          data: {
            id: "c",
            object: "chat.completion.chunk",
            created: 1,
            model: UPSTREAM_ID,
            choices: [],
            usage: { prompt_tokens: 900, completion_tokens: 40, total_tokens: 940 },
          },
        },
      ],
    });
    // Fields and item types as codex-rs's ResponsesApiRequest serialises them.
    const body = {
      model: "m",
      instructions: "You are Codex, a coding agent.",
      input: [
        { type: "message", role: "developer", content: [{ type: "input_text", text: "<permissions instructions>" }] },
        {
          type: "message",
          role: "user",
          content: [{ type: "input_text", text: "<environment_context>cwd</environment_context>" }],
        },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Change old to new in a.txt" }] },
        {
          type: "reasoning",
          id: "rs_1",
          summary: [{ type: "summary_text", text: "Look first." }],
          encrypted_content: "gAAAA",
        },
        { type: "function_call", name: "exec_command", arguments: '{"cmd":"cat a.txt"}', call_id: "call_1" },
        { type: "function_call_output", call_id: "call_1", output: "old\n" },
      ],
      tools: [
        {
          type: "function",
          name: "exec_command",
          description: "Runs a command.",
          strict: false,
          parameters: {
            type: "object",
            properties: { cmd: { type: "string" } },
            required: ["cmd"],
            additionalProperties: false,
          },
        },
        {
          type: "custom",
          name: "apply_patch",
          description: "Edit files.",
          format: { type: "grammar", syntax: "lark", definition: "start: begin_patch hunk+ end_patch" },
        },
        { type: "web_search", external_web_access: false },
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
      reasoning: { effort: "medium", summary: "auto" },
      store: false,
      stream: true,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "0199-session",
      text: { verbosity: "low" },
    };
    const answer = await send(gateway, "POST", "/v1/responses", {
      body,
      headers: { authorization: "Bearer x", "openai-beta": "responses=experimental", session_id: "0199-session" },
    });
    assert.equal(answer.status, 200, answer.text);
    const events = answer.text
      .split("\n\n")
      .flatMap((frame) => frame.split("\n").filter((line) => line.startsWith("data: ")))
      .map(
        (line) =>
          JSON.parse(line.slice(6)) as {
            type: string;
            item?: { type: string; input?: string; call_id?: string };
            response?: { usage?: { input_tokens: number } };
          },
      );
    const done = events.filter((event) => event.type === "response.output_item.done").map((event) => event.item);
    assert.deepEqual(
      done.map((item) => item?.type),
      ["message", "custom_tool_call"],
    );
    assert.equal(done[1]?.input, PATCH);
    assert.equal(done[1]?.call_id, "call_2");
    const completed = events.at(-1);
    assert.equal(completed?.type, "response.completed");
    assert.equal(completed?.response?.usage?.input_tokens, 900);
    const sent = chatRequests(mock)[0]?.body as {
      messages: { role: string }[];
      tools: { function: { name: string } }[];
    };
    assert.deepEqual(
      sent.messages.map((message) => message.role),
      ["system", "system", "user", "user", "assistant", "tool"],
    );
    assert.deepEqual(
      sent.tools.map((tool) => tool.function.name),
      ["exec_command", "apply_patch"],
    );
  });
});
