import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GatewayError } from "../../errors/gateway-error.ts";
import { type ResponseLookup, toChatRequest, toCountedPrompt } from "./request-mapping.ts";
import type { StoredResponse } from "./response-store.ts";
import { toChatTools } from "./tool-mapping.ts";
import { ToolNames } from "./tool-names.ts";
import { loadedTools, searchArgumentsOf } from "./tool-search.ts";

const member = (name: string) => ({ type: "function", name, parameters: { type: "object", properties: {} } });
const output = (tools: unknown[]) => ({ type: "tool_search_output", call_id: "call_1", tools });

describe("tool search", () => {
  test("two searches loading tools of one namespace load it once, with the members of both, each once", () => {
    const input = [
      output([{ type: "namespace", name: "mcp__a", tools: [member("x"), member("y")] }]),
      output([{ type: "namespace", name: "mcp__a", tools: [member("y"), member("z")] }, member("top")]),
    ];
    const loaded = loadedTools(input, []);
    assert.deepEqual(
      loaded.map((tool) => [tool.name, (tool.tools as { name: string }[] | undefined)?.map((inner) => inner.name)]),
      [
        ["mcp__a", ["x", "y", "z"]],
        ["top", undefined],
      ],
    );
  });

  test("a tool loaded again is offered as its latest load lists it, in its first place; the request's own stays", () => {
    const withKey = (name: string, key: string) => ({
      type: "function",
      name,
      parameters: { type: "object", properties: { [key]: { type: "string" } } },
    });
    const earlier = [{ type: "namespace", name: "mcp__a", description: "old", tools: [withKey("x", "v1")] }];
    const input = [
      output([withKey("top", "v1"), { type: "namespace", name: "mcp__a", tools: [withKey("y", "v1")] }]),
      output([
        { type: "namespace", name: "mcp__a", description: "new", tools: [withKey("x", "v2"), withKey("y", "v2")] },
        withKey("top", "v2"),
        withKey("own", "v2"),
      ]),
    ];
    const loaded = loadedTools(input, [withKey("own", "v0")], [], earlier);
    const keysOf = (tool: unknown) =>
      Object.keys((tool as { parameters: { properties: object } }).parameters.properties);
    assert.deepEqual(
      loaded.map((tool) =>
        tool.type === "namespace"
          ? [
              tool.name,
              tool.description,
              (tool.tools as { name: string }[]).map((inner) => [inner.name, keysOf(inner)]),
            ]
          : [tool.name, keysOf(tool)],
      ),
      [
        [
          "mcp__a",
          "new",
          [
            ["x", ["v2"]],
            ["y", ["v2"]],
          ],
        ],
        ["top", ["v2"]],
      ],
    );
  });

  test("a search output listing the client-run tool_search itself adds no second `tool_search` function", () => {
    const search = { type: "tool_search", execution: "client" };
    const requestTools = [search];
    const input = [output([search, member("found")]), output([search])];
    const tools = [...requestTools, ...loadedTools(input, requestTools)];
    const chat = toChatTools({ tools: tools as { type: string }[] }, ToolNames.of(tools));
    assert.deepEqual(
      chat.tools.map((tool) => tool.function.name),
      ["tool_search", "found"],
    );
    // Loaded twice by a request that offers none: offered once.
    const alone = loadedTools(input, []);
    assert.equal(alone.filter((tool) => tool.type === "tool_search").length, 1);
  });

  test("a loaded tool the request offers already is not offered twice (no duplicate-name refusal)", () => {
    const requestTools = [
      member("top"),
      { type: "namespace", name: "mcp__a", tools: [member("x")] },
      { type: "tool_search", execution: "client", parameters: { type: "object", properties: {} } },
    ];
    const input = [output([member("top"), { type: "namespace", name: "mcp__a", tools: [member("x"), member("w")] }])];
    const tools = [...requestTools, ...loadedTools(input, requestTools)];
    const chat = toChatTools({ tools: tools as { type: string }[] }, ToolNames.of(tools));
    assert.deepEqual(
      chat.tools.map((tool) => tool.function.name),
      ["top", "mcp__a__x", "tool_search", "mcp__a__w"],
    );
  });

  test("a hosted tool_search is still left out; only the client-run one goes upstream", () => {
    const chat = toChatTools({ tools: [{ type: "tool_search" }] }, ToolNames.of([]));
    assert.deepEqual(chat.tools, []);
    assert.deepEqual(chat.dropped, ["tool_search"]);
  });

  test("arguments that are not JSON reach the client as the text the model wrote", () => {
    assert.deepEqual(searchArgumentsOf('{"query":"q"}'), { query: "q" });
    assert.equal(searchArgumentsOf("query: q"), "query: q");
  });
  test("tools a kept conversation's tool_search_output loaded are offered to a request continuing it", () => {
    // The model reads the kept output as "Loaded tools, callable now: found": without the tool it cannot call it.
    const kept = [
      { type: "message", role: "user", content: "find a tool" },
      { type: "tool_search_call", call_id: "call_1", arguments: { query: "x" } },
      output([member("found")]),
    ];
    const lookup: ResponseLookup = {
      get: () => undefined,
      findItem: () => undefined,
      conversationItems: (id) => (id === "conv_kept" ? kept : undefined),
    };
    const search = { type: "tool_search", execution: "client" };
    const continued = toChatRequest(
      { model: "m", tools: [search], conversation: "conv_kept", input: "use it" },
      lookup,
    );
    assert.deepEqual(
      continued.chatBody.tools?.map((tool) => tool.function.name),
      ["tool_search", "found"],
    );
    // A malformed output in the input is still named at its own index, not shifted by the kept items.
    assert.throws(
      () =>
        toChatRequest(
          { model: "m", tools: [search], conversation: "conv_kept", input: [{ ...output([]), tools: "no" }] },
          lookup,
        ),
      (error: GatewayError) => error.status === 400 && error.param === "input[0].tools",
    );
  });

  test("tools a previous response's conversation loaded are offered to a request continuing it, counted, and kept again with the new ones", () => {
    const search = { type: "tool_search", execution: "client" };
    const previous = {
      response: { id: "resp_1", status: "completed", output: [], tools: [search] },
      // The search call this request's output answers, as the kept conversation holds it (an output answering no
      // call is refused since the Responses door checks call ids).
      conversation: [
        { role: "user", content: "find a tool" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "tool_search", arguments: "{}" } }],
        },
      ],
      loadedTools: [{ type: "namespace", name: "mcp__a", tools: [member("x")] }, member("found")],
    } as unknown as StoredResponse;
    const lookup: ResponseLookup = {
      get: (id) => (id === "resp_1" ? previous : undefined),
      findItem: () => undefined,
    };
    const body = {
      model: "m",
      tools: [search, member("found")],
      previous_response_id: "resp_1",
      input: [output([{ type: "namespace", name: "mcp__a", tools: [member("y")] }])],
    };
    const continued = toChatRequest(body, lookup);
    assert.deepEqual(
      continued.chatBody.tools?.map((tool) => tool.function.name),
      ["tool_search", "found", "mcp__a__x", "mcp__a__y"],
    );
    // Kept: the earlier ones and the new member, in one namespace; `found` too, though this request offers it itself.
    assert.deepEqual(
      continued.loadedTools.map((tool) => [
        tool.name,
        (tool.tools as { name: string }[] | undefined)?.map((m) => m.name),
      ]),
      [
        ["mcp__a", ["x", "y"]],
        ["found", undefined],
      ],
    );
    assert.deepEqual(
      toCountedPrompt(body, lookup).tools.map((tool) => tool.function.name),
      ["tool_search", "found", "mcp__a__x", "mcp__a__y"],
    );
    // A request continuing nothing keeps only what its own input loaded.
    assert.deepEqual(toChatRequest({ model: "m", input: "hi" }, lookup).loadedTools, []);
  });
});
