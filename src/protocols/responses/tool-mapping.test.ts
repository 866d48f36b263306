import assert from "node:assert/strict";
import { test } from "node:test";
import type { GatewayError } from "../../errors/gateway-error.ts";
import { toChatTools } from "./tool-mapping.ts";

const tool = (name: string) => ({ type: "function", name, parameters: { type: "object", properties: {} } });

function refusalOf(request: Parameters<typeof toChatTools>[0]): unknown {
  try {
    toChatTools(request);
  } catch (error) {
    const { status, code, param } = error as GatewayError;
    return { status, code, param };
  }
  return "not refused";
}

test("responses tools: allowed_tools narrows the tools and sets the mode", () => {
  const { tools, toolChoice } = toChatTools({
    tools: [tool("a"), tool("b")],
    tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "b" }] },
  });
  assert.deepEqual(
    tools.map((entry) => entry.function.name),
    ["b"],
  );
  assert.equal(toolChoice, "required");
});

test("responses tools: a choice that allows answering without a tool is dropped when no tool goes upstream", () => {
  // Chat providers refuse `tool_choice` without `tools`; the Responses API takes it (`auto` is its default).
  const dropped = { tools: [], toolChoice: undefined, dropped: [] };
  assert.deepEqual(toChatTools({ tool_choice: "auto" }), dropped);
  assert.deepEqual(toChatTools({ tools: [], tool_choice: "none" }), dropped);
  assert.deepEqual(
    toChatTools({
      tools: [tool("a")],
      tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: "gone" }] },
    }),
    dropped,
  );
  assert.equal(toChatTools({ tools: [tool("a")], tool_choice: "none" }).toolChoice, "none", "with tools it stays");
  assert.deepEqual(toChatTools({ tools: [{ type: "web_search" }, { type: "file_search" }], tool_choice: "auto" }), {
    tools: [],
    toolChoice: undefined,
    dropped: ["web_search", "file_search"],
  });
});

test("responses tools: a choice that demands a call no tool can answer is a 400 naming tool_choice", () => {
  const refused = { status: 400, code: "invalid_value", param: "tool_choice" };
  assert.deepEqual(refusalOf({ tool_choice: "required" }), refused);
  assert.deepEqual(refusalOf({ tools: [], tool_choice: "required" }), refused);
  assert.deepEqual(
    refusalOf({
      tools: [tool("a")],
      tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "b" }] },
    }),
    refused,
  );
  assert.deepEqual(refusalOf({ tools: [tool("a")], tool_choice: { type: "function", name: "b" } }), refused);
  assert.deepEqual(refusalOf({ tool_choice: { type: "function", name: "b" } }), refused);
});
