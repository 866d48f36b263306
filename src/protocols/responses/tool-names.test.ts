import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { upstreamToolName } from "../long-tool-names.ts";
import { asClientCalls, flatName, ToolNames } from "./tool-names.ts";

/** OpenAI's rule for a function's name, which most chat providers copy. */
const VALID_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const fn = (name: string) => ({ type: "function", name });
const namespace = (name: string, ...tools: unknown[]) => ({ type: "namespace", name, description: "d", tools });

describe("namespace members' upstream names", () => {
  test("joined by `__`, not doubled after Codex's `mcp__<server>__`, other characters made `_`", () => {
    assert.equal(flatName("crm", "lookup"), "crm__lookup");
    assert.equal(flatName("mcp__github__", "create_issue"), "mcp__github__create_issue");
    assert.equal(flatName("crm.v2", "find by id"), "crm_v2__find_by_id");
  });

  test("a name over 64 characters is cut and ends with a hash of the pair: valid, stable, and apart from its neighbour", () => {
    const long = "x".repeat(70);
    const first = flatName("mcp__server__", `${long}_one`);
    const second = flatName("mcp__server__", `${long}_two`);
    assert.match(first, VALID_NAME);
    assert.equal(first.length, 64);
    assert.notEqual(first, second, "same first 55 characters, different tools");
    assert.equal(flatName("mcp__server__", `${long}_one`), first, "the same on every request");
  });

  test("a member whose flat name is another tool's too gets a hashed name; every name maps back", () => {
    const names = ToolNames.of([
      fn("crm__lookup"),
      namespace("crm", fn("lookup"), { type: "custom", name: "note" }),
      namespace("a.b", fn("x")),
      namespace("a_b", fn("x")),
    ]);
    const member = names.upstreamName("lookup", "crm");
    assert.notEqual(member, "crm__lookup", "the top-level function keeps its name");
    assert.match(member, /^crm__lookup_[0-9a-f]{8}$/);
    assert.deepEqual(names.clientName(member), { type: "function", name: "lookup", namespace: "crm" });
    assert.deepEqual(names.clientName("crm__lookup"), { type: "function", name: "crm__lookup", namespace: undefined });
    assert.deepEqual(names.clientName(names.upstreamName("note", "crm")), {
      type: "custom",
      name: "note",
      namespace: "crm",
    });
    const dotted = names.upstreamName("x", "a.b");
    const underscored = names.upstreamName("x", "a_b");
    assert.notEqual(dotted, underscored, "a_b__x twice: both hashed, apart");
    for (const name of [member, dotted, underscored]) assert.match(name, VALID_NAME);
    assert.deepEqual(names.clientName(dotted), { type: "function", name: "x", namespace: "a.b" });
    assert.deepEqual(names.clientName("made_up"), { type: "function", name: "made_up", namespace: undefined });
  });

  test("a call of a member the request no longer offers is named by the plain rule", () => {
    assert.equal(ToolNames.of([]).upstreamName("lookup", "crm"), "crm__lookup");
    assert.equal(ToolNames.of([]).upstreamName("lookup", undefined), "lookup");
  });

  test("tool_choice names: {name, namespace}, `<namespace>.<name>` (dots in the namespace too), a top-level name", () => {
    const names = ToolNames.of([fn("top"), namespace("crm", fn("lookup")), namespace("a.b", fn("c"))]);
    assert.equal(names.chosenName("lookup", "crm"), "crm__lookup");
    assert.equal(names.chosenName("crm.lookup", undefined), "crm__lookup");
    assert.equal(names.chosenName("a.b.c", null), "a_b__c");
    assert.equal(names.chosenName("top", undefined), "top");
    assert.equal(names.chosenName("lookup", undefined), undefined, "a member is not a top-level tool");
    assert.equal(names.chosenName("crm__lookup", undefined), undefined, "nor named by its upstream name");
    assert.deepEqual(names.membersOf("crm"), ["crm__lookup"]);
  });

  test("a qualified tool_choice name is one lookup: a name of dots does not hold the event loop", () => {
    const names = ToolNames.of([namespace("a.b", fn("c")), namespace("a", fn("b.c")), namespace("crm", fn("x"))]);
    // Two members spell `a.b.c`: the shorter namespace is meant, as when each dot was tried in turn.
    assert.equal(names.chosenName("a.b.c", undefined), names.upstreamName("b.c", "a"));
    // Before, every dot was tried with a lookup as long as the name: 60,000 dots took about 6 s of one core (and a
    // 160 KB name several minutes), inside a request body well under body_limit_bytes.
    const startedAt = performance.now();
    assert.equal(names.chosenName(".".repeat(60_000), undefined), undefined);
    assert.equal(names.chosenName(`crm${".".repeat(60_000)}x`, null), undefined);
    assert.ok(performance.now() - startedAt < 1_000, `took ${Math.round(performance.now() - startedAt)} ms`);
  });

  test("read leniently: junk, unnamed tools and a missing `tools` are skipped", () => {
    const names = ToolNames.of([null, "x", { type: "custom" }, namespace("n", null, { type: "function" }, fn("ok"))]);
    assert.deepEqual(names.clientName("n__ok"), { type: "function", name: "ok", namespace: "n" });
    assert.deepEqual(ToolNames.of(undefined).clientName("n__ok").namespace, undefined);
  });

  test("kept calls listed back as the client made them: namespaced, and a custom member's call with its output", () => {
    const names = ToolNames.of([namespace("crm", fn("lookup"), { type: "custom", name: "note" })]);
    assert.deepEqual(
      asClientCalls(
        [
          { type: "function_call", call_id: "c1", name: "crm__lookup", arguments: "{}" },
          { type: "function_call", call_id: "c2", name: "crm__note", arguments: '{"input":"hi"}' },
          { type: "function_call_output", call_id: "c1", output: "a" },
          { type: "function_call_output", call_id: "c2", output: "b" },
        ],
        names,
      ),
      [
        { type: "function_call", call_id: "c1", name: "lookup", namespace: "crm", arguments: "{}" },
        { type: "custom_tool_call", call_id: "c2", name: "note", namespace: "crm", input: "hi" },
        { type: "function_call_output", call_id: "c1", output: "a" },
        { type: "custom_tool_call_output", call_id: "c2", output: "b" },
      ],
    );
  });

  test("a function named tool_search beside the client-run search gets a name of its own; both map back", () => {
    const search = { type: "tool_search", execution: "client" };
    const names = ToolNames.of([search, fn("tool_search")]);
    const renamed = names.upstreamName("tool_search", undefined);
    assert.match(renamed, /^tool_search_[0-9a-f]{8}$/);
    assert.match(renamed, VALID_NAME);
    assert.equal(ToolNames.of([fn("tool_search"), search]).upstreamName("tool_search", null), renamed, "stable");
    assert.deepEqual(names.clientName(renamed), { type: "function", name: "tool_search", namespace: undefined });
    assert.deepEqual(names.clientName("tool_search"), {
      type: "tool_search",
      name: "tool_search",
      namespace: undefined,
    });
    // A tool_choice naming the function means the function.
    assert.equal(names.chosenName("tool_search", undefined), renamed);
    assert.deepEqual(asClientCalls([{ type: "function_call", call_id: "c", name: renamed, arguments: "{}" }], names), [
      { type: "function_call", call_id: "c", name: "tool_search", arguments: "{}" },
    ]);
    // Without the client-run search (a continuation that stopped offering it) the same name, both ways: the
    // conversation's calls of the function and of the search stay apart.
    const without = ToolNames.of([fn("tool_search")]);
    assert.equal(without.upstreamName("tool_search", undefined), renamed);
    assert.equal(without.chosenName("tool_search", undefined), renamed);
    assert.deepEqual(without.clientName(renamed), { type: "function", name: "tool_search", namespace: undefined });
    // Neither offered: a call of the function in the history still goes, and comes back, under the name it had.
    assert.equal(ToolNames.of([]).upstreamName("tool_search", undefined), renamed);
    assert.deepEqual(ToolNames.of([]).clientName(renamed), {
      type: "function",
      name: "tool_search",
      namespace: undefined,
    });
  });
});

test("a top-level function named longer than 64 goes upstream shortened (also as a tool choice, or in history only) and maps back", () => {
  const long = `mcp__server__${"x".repeat(60)}`;
  const names = ToolNames.of([fn(long), fn("short")]);
  const upstream = names.upstreamName(long, undefined);
  assert.match(upstream, VALID_NAME);
  assert.equal(upstream, upstreamToolName(long), "the rule every door shares");
  assert.equal(names.chosenName(long, undefined), upstream);
  assert.deepEqual(names.clientName(upstream), { type: "function", name: long, namespace: undefined });
  assert.equal(names.upstreamName("short", undefined), "short");
  // A call in the history of a tool the request no longer offers: the same name it went upstream under before.
  assert.equal(ToolNames.of([]).upstreamName(long, undefined), upstream);
});

test("a renamed tool's upstream name answered in another case maps back, unless another tool's reads the same", () => {
  const long = `mcp__Wiki__${"FindPages".repeat(7)}`;
  const names = ToolNames.of([
    { type: "function", name: long },
    { type: "function", name: "Get_Weather" },
    { type: "namespace", name: "mcp__GitHub__", tools: [{ type: "function", name: "Create.Issue" }] },
  ]);
  const upstream = names.upstreamName(long, undefined);
  assert.deepEqual(names.clientName(upstream.toLowerCase()), { type: "function", name: long, namespace: undefined });
  assert.deepEqual(names.clientName("mcp__github__create_issue"), {
    type: "function",
    name: "Create.Issue",
    namespace: "mcp__GitHub__",
  });
  assert.equal(names.clientName("get_weather").name, "get_weather", "a name sent as it came is left");
  const ambiguous = ToolNames.of([
    { type: "function", name: long },
    { type: "function", name: upstream.toLowerCase() },
  ]);
  assert.equal(ambiguous.clientName(upstream.toUpperCase()).name, upstream.toUpperCase());
});

test("a top-level tool named like another's renamed form keeps its name; the renamed one is hashed again; each maps back", () => {
  const literal = upstreamToolName("server.tool");
  for (const tools of [
    [fn("server.tool"), fn(literal)],
    [fn(literal), fn("server.tool")],
  ]) {
    const names = ToolNames.of(tools);
    const renamed = names.upstreamName("server.tool", undefined);
    assert.equal(names.upstreamName(literal, undefined), literal);
    assert.notEqual(renamed, literal);
    assert.equal(renamed, upstreamToolName("server.tool", 1), "the same in either order");
    assert.match(renamed, VALID_NAME);
    assert.equal(names.chosenName("server.tool", undefined), renamed);
    assert.deepEqual(names.clientName(renamed), { type: "function", name: "server.tool", namespace: undefined });
    assert.deepEqual(names.clientName(literal), { type: "function", name: literal, namespace: undefined });
  }
});
