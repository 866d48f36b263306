import assert from "node:assert/strict";
import { test } from "node:test";
import { threadCpuMs } from "../../../test/helpers/thread-cpu.ts";
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

test("responses tools: a namespace's members go upstream as functions of their own, told their namespace", () => {
  const { tools } = toChatTools({
    tools: [
      tool("top"),
      {
        type: "namespace",
        name: "mcp__github__",
        description: "GitHub's tools.",
        tools: [
          { ...tool("create_issue"), description: "Opens an issue.", strict: true },
          { type: "custom", name: "note", description: "Free text." },
          { type: "function", name: "search", defer_loading: true },
        ],
      },
    ],
  });
  assert.deepEqual(
    tools.map((entry) => entry.function.name),
    ["top", "mcp__github__create_issue", "mcp__github__note", "mcp__github__search"],
  );
  const [, issue, note, search] = tools;
  assert.equal(issue?.function.description, "Opens an issue.\n\nNamespace `mcp__github__`: GitHub's tools.");
  assert.equal(issue?.function.strict, true);
  assert.deepEqual(issue?.function.parameters, { type: "object", properties: {} });
  assert.deepEqual(note?.function.parameters.required, ["input"], "a custom member is a function of one string");
  assert.match(String(note?.function.description), /^Free text\.[\s\S]*Namespace `mcp__github__`: GitHub's tools\.$/);
  assert.equal(
    search?.function.description,
    "Namespace `mcp__github__`: GitHub's tools.",
    "deferred: sent all the same",
  );
});

test("responses tools: tool_choice names a namespaced function by `<namespace>.<name>` or with `namespace`", () => {
  const tools = [tool("top"), { type: "namespace", name: "crm", description: "CRM", tools: [tool("lookup")] }];
  const expected = { type: "function", function: { name: "crm__lookup" } };
  assert.deepEqual(toChatTools({ tools, tool_choice: { type: "function", name: "crm.lookup" } }).toolChoice, expected);
  assert.deepEqual(
    toChatTools({ tools, tool_choice: { type: "function", name: "lookup", namespace: "crm" } }).toolChoice,
    expected,
  );
  assert.deepEqual(refusalOf({ tools, tool_choice: { type: "function", name: "lookup" } }), {
    status: 400,
    code: "invalid_value",
    param: "tool_choice",
  });
  const allowed = toChatTools({
    tools,
    tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "namespace", name: "crm" }] },
  });
  assert.deepEqual(
    allowed.tools.map((entry) => entry.function.name),
    ["crm__lookup"],
  );
  const qualified = toChatTools({
    tools,
    tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "crm.lookup" }] },
  });
  assert.deepEqual(
    qualified.tools.map((entry) => entry.function.name),
    ["crm__lookup"],
  );
});

test("responses tools: a malformed namespace is a 400 naming the field", () => {
  const ns = (fields: Record<string, unknown>) => ({ tools: [tool("a"), { type: "namespace", ...fields }] });
  assert.deepEqual(refusalOf(ns({ tools: [tool("x")] })), {
    status: 400,
    code: "invalid_value",
    param: "tools[1].name",
  });
  assert.deepEqual(refusalOf(ns({ name: "n", tools: "x" })), {
    status: 400,
    code: "invalid_value",
    param: "tools[1].tools",
  });
  assert.deepEqual(refusalOf(ns({ name: "n", tools: [tool("x"), { type: "web_search" }] })), {
    status: 400,
    code: "unsupported_value",
    param: "tools[1].tools[1].type",
  });
  assert.deepEqual(refusalOf(ns({ name: "n", tools: [{ type: "function" }] })), {
    status: 400,
    code: "invalid_value",
    param: "tools[1].tools[0].name",
  });
  assert.deepEqual(refusalOf(ns({ name: "n", tools: [tool("x"), tool("x")] })), {
    status: 400,
    code: "invalid_value",
    param: "tools[1].tools[1].name",
  });
  assert.equal(refusalOf(ns({ name: "a", tools: [tool("x")] })), "not refused", "a namespace may share a tool's name");
});

test("responses tools: a namespace listed many times in allowed_tools costs its members once", () => {
  const members = Array.from({ length: 3_000 }, (_, index) => tool(`f${index}`));
  const request = (listings: number) =>
    ({
      tools: [{ type: "namespace", name: "big", description: "d", tools: members }, tool("other")],
      tool_choice: {
        type: "allowed_tools",
        mode: "auto",
        tools: Array(listings).fill({ type: "namespace", name: "big" }),
      },
    }) as Parameters<typeof toChatTools>[0];
  toChatTools(request(1)); // warm: the schemas' first use is not what is measured
  // This thread's CPU time, not the clock: a loaded machine's other processes are not the code's cost.
  const {
    value: { tools, toolChoice },
    ms: elapsedMs,
  } = threadCpuMs(() => toChatTools(request(150_000)));
  assert.equal(tools.length, 3_000, "the namespace's members, not the top-level tool it did not list");
  assert.equal(tools[0]?.function.name, "big__f0");
  assert.equal(toolChoice, "auto");
  // Before, each listing added every member again: this 3.5 MB body took about 10 s of one core (20 MB, minutes).
  assert.ok(elapsedMs < 2_000, `took ${Math.round(elapsedMs)} ms of CPU`);
});

test("responses tools: a long namespace description is not copied into every member without a bound", () => {
  const description = "d".repeat(200_000);
  const members = Array.from({ length: 200 }, (_, index) => tool(`f${index}`));
  const namespace = { type: "namespace", name: "crm", description, tools: members };
  const { tools } = toChatTools({ tools: [namespace] } as Parameters<typeof toChatTools>[0]);
  // Before, each of the 200 members carried the 200 KB description: a 40 MB upstream body from a 0.2 MB request.
  const sent = JSON.stringify(tools).length;
  assert.ok(sent < 3 * JSON.stringify(namespace).length, `${sent} characters sent`);
  assert.equal(tools[0]?.function.description, `Namespace \`crm\`: ${description}`, "the first member has it whole");
  assert.equal(tools[1]?.function.description, "Namespace `crm` (described with its first tool).");
  // A short one still goes with every member (the test above): only the copies past 64 KB are left out.
  const short = { ...namespace, description: "x".repeat(1_000) };
  const { tools: shortTools } = toChatTools({ tools: [short] } as Parameters<typeof toChatTools>[0]);
  const copied = shortTools.filter((entry) => entry.function.description?.endsWith("x".repeat(1_000)));
  assert.ok(copied.length > 60 && copied.length < 70, `${copied.length} members told the whole description`);
});

test("responses tools: a long namespace name quoted in its members' note is cut before an emoji, not inside it", () => {
  // The cut (64 UTF-16 units) falls between the first emoji's halves: a lone surrogate in the upstream body is one
  // that strict JSON readers refuse.
  const name = `${"n".repeat(63)}${"\u{1F600}".repeat(3)}`;
  const members = Array.from({ length: 200 }, (_, index) => tool(`f${index}`));
  const namespace = { type: "namespace", name, description: "d".repeat(70_000), tools: members };
  const { tools } = toChatTools({ tools: [namespace] } as Parameters<typeof toChatTools>[0]);
  const note = tools[1]?.function.description ?? "";
  assert.ok(note.isWellFormed(), JSON.stringify(note));
  assert.equal(note, `Namespace \`${"n".repeat(63)}…\` (described with its first tool).`);
});
