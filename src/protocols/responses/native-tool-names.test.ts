import assert from "node:assert/strict";
import { test } from "node:test";
import { upstreamToolName } from "../long-tool-names.ts";
import { clientNamedEvent, clientNamedResponse, shortenNativeToolNames } from "./native-tool-names.ts";

const LONG = `mcp__wiki__${"find_pages_".repeat(6)}`;
const SHORT = upstreamToolName(LONG);

test("a native body without long names is not copied; one with them is shortened everywhere a function is named", () => {
  assert.equal(shortenNativeToolNames({ tools: [{ type: "function", name: "f" }], input: "hi" }), undefined);
  const body = {
    tools: [
      { type: "function", name: LONG },
      { type: "custom", name: "grammar_tool" },
      { type: "namespace", name: "crm", tools: [{ type: "function", name: LONG }] },
      { type: "web_search" },
    ],
    tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: LONG }] },
    input: [
      { type: "function_call", call_id: "c", name: LONG, arguments: "{}" },
      { type: "custom_tool_call", call_id: "d", name: LONG, input: "x" },
      { type: "message", role: "user", content: "hi", name: LONG },
    ],
  };
  const shortened = shortenNativeToolNames(body);
  assert.ok(shortened !== undefined);
  assert.deepEqual(shortened.body, {
    tools: [
      { type: "function", name: SHORT },
      { type: "custom", name: "grammar_tool" },
      { type: "namespace", name: "crm", tools: [{ type: "function", name: SHORT }] },
      { type: "web_search" },
    ],
    tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: SHORT }] },
    input: [
      { type: "function_call", call_id: "c", name: SHORT, arguments: "{}" },
      { type: "custom_tool_call", call_id: "d", name: SHORT, input: "x" },
      { type: "message", role: "user", content: "hi", name: LONG },
    ],
  });
  assert.equal(body.tools[0]?.name, LONG, "the client's body is not changed");

  const names = shortened.names;
  const answer = { output: [{ type: "function_call", name: SHORT }, { type: "message" }], tools: shortened.body.tools };
  const named = clientNamedResponse(answer, names);
  assert.deepEqual(named.output, [{ type: "function_call", name: LONG }, { type: "message" }]);
  assert.deepEqual(named.tools, body.tools);
  const untouched = { output: [{ type: "function_call", name: "f" }] };
  assert.equal(clientNamedResponse(untouched, names), untouched);
  assert.deepEqual(
    clientNamedEvent({ type: "response.function_call_arguments.done", name: SHORT.toUpperCase() }, names),
    { type: "response.function_call_arguments.done", name: LONG },
  );
  const delta = { type: "response.function_call_arguments.delta", delta: "{" };
  assert.equal(clientNamedEvent(delta, names), delta);
});

test("a native body's names with characters OpenAI refuses are renamed too", () => {
  const shortened = shortenNativeToolNames({ tools: [{ type: "function", name: "crm.find contact" }] });
  const name = (shortened?.body.tools as { name: string }[] | undefined)?.[0]?.name ?? "";
  assert.match(name, /^crm_find_contact_[0-9a-f]{8}$/);
  assert.equal(shortened?.names.client(name), "crm.find contact");
  assert.equal(shortenNativeToolNames({ tools: [{ type: "function", name: "" }] }), undefined, "left to validation");
});

test("the tools a tool_search_output loaded are renamed in the input, and a hosted search's output maps back", () => {
  const loaded = [{ type: "namespace", name: "wiki", tools: [{ type: "function", name: LONG }] }];
  const item = { type: "tool_search_output", call_id: "s", execution: "client", tools: loaded };
  const shortened = shortenNativeToolNames({ tools: [{ type: "tool_search", execution: "client" }], input: [item] });
  assert.ok(shortened !== undefined, "a loaded tool's long name alone is reason to rename");
  const sent = (shortened.body.input as (typeof item)[])[0];
  assert.deepEqual(sent?.tools, [{ type: "namespace", name: "wiki", tools: [{ type: "function", name: SHORT }] }]);
  assert.equal(item.tools[0]?.tools[0]?.name, LONG, "the client's item is not changed");
  // A hosted search (`execution: "server"`) lists what it loaded under the names the provider was given.
  const hosted = { type: "tool_search_output", execution: "server", tools: sent?.tools };
  assert.deepEqual(clientNamedResponse({ output: [hosted] }, shortened.names).output, [{ ...hosted, tools: loaded }]);
  const event = clientNamedEvent({ type: "response.output_item.done", item: hosted }, shortened.names);
  assert.deepEqual(event.item, { ...hosted, tools: loaded });
});

test("a member chosen by its qualified `<namespace>.<name>` keeps that form, its member's upstream name after the dot", () => {
  const tools = [{ type: "namespace", name: "crm", tools: [{ type: "function", name: "find" }] }];
  const plain = { tools, tool_choice: { type: "function", name: "crm.find" } };
  assert.equal(shortenNativeToolNames(plain), undefined, "nothing to rename: the body goes as it came");
  const body = {
    tools: [...tools, { type: "namespace", name: "wiki", tools: [{ type: "function", name: LONG }] }],
    tool_choice: {
      type: "allowed_tools",
      mode: "required",
      tools: [
        { type: "function", name: `wiki.${LONG}` },
        { type: "function", name: "crm.find" },
      ],
    },
  };
  const shortened = shortenNativeToolNames(body);
  assert.ok(shortened !== undefined);
  const chosen = { type: "allowed_tools", mode: "required", tools: [`wiki.${SHORT}`, "crm.find"] };
  const sent = shortened.body.tool_choice as { tools: { name: string }[] };
  assert.deepEqual({ ...sent, tools: sent.tools.map((tool) => tool.name) }, chosen);
  const echoed = clientNamedResponse({ tool_choice: sent, tools: shortened.body.tools }, shortened.names);
  assert.deepEqual(echoed.tool_choice, body.tool_choice);
  // A top-level tool of the qualified name itself is the one chosen (it is renamed, having a dot).
  const topLevel = shortenNativeToolNames({
    tools: [...tools, { type: "function", name: "crm.find" }],
    tool_choice: { type: "function", name: "crm.find" },
  });
  assert.equal((topLevel?.body.tool_choice as { name?: string } | undefined)?.name, upstreamToolName("crm.find"));
});
