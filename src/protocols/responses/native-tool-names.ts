// Long tool names, and names with characters other than letters, digits, `_` and `-` (../long-tool-names.ts), on
// the way to a `responses_api: native` provider: OpenAI's Responses API refuses them as chat providers do, so the body sent natively gets the same shortened
// names as a translated one (in `tools`, namespaces' members, `tool_choice`, the input's calls and the tools its
// `tool_search_output` items loaded), and the provider's answer comes back under the client's names: JSON, and each
// streamed event that names a call or a loaded tool (`response.output_item.added` / `.done`,
// `response.function_call_arguments.done`) or holds a response snapshot.
// The answer is kept as the client sees it, so `previous_response_id`, `item_reference` and `input_items` read the
// client's names, and a continuation is shortened again on its way out. A body without such a name goes as it came.
import { isRecord } from "../../is-record.ts";
import { isUpstreamToolName, LongToolNames } from "../long-tool-names.ts";

type JsonObject = Record<string, unknown>;

/** Tool and call types whose `name` is a function name upstream (a namespace's `name` is its group's). */
const NAMED_TOOL_TYPES = new Set(["function", "custom"]);
const NAMED_CALL_TYPES = new Set(["function_call", "custom_tool_call"]);

export interface ShortenedNativeRequest {
  readonly body: JsonObject;
  readonly names: LongToolNames;
}

/** The native body with its long (or invalid) tool names renamed, or undefined when it has none (then it goes as it came). */
export function shortenNativeToolNames(body: JsonObject): ShortenedNativeRequest | undefined {
  if (!hasRenamedName(body)) return undefined;
  const names = new LongToolNames();
  // The names that go as they came first: a renamed form never takes one of them (long-tool-names.ts).
  names.claim([...arrayOf(body.tools), ...arrayOf(body.input)].map((item) => (isRecord(item) ? item.name : undefined)));
  const shortened: JsonObject = { ...body };
  if (Array.isArray(body.tools)) shortened.tools = body.tools.map((tool) => renamedTool(tool, names));
  if (isRecord(body.tool_choice)) {
    shortened.tool_choice = renamedChoice(body.tool_choice, qualifiedMembers(body.tools), names);
  }
  if (Array.isArray(body.input)) shortened.input = body.input.map((item) => renamedInputItem(item, names));
  return { body: shortened, names };
}

/** A native response object (an answer, or an event's snapshot) with the client's names; a copy when any changed. */
export function clientNamedResponse(response: JsonObject, names: LongToolNames): JsonObject {
  const output = Array.isArray(response.output)
    ? mapChanged(response.output, (item) => clientNamedItem(item, names))
    : undefined;
  const tools = Array.isArray(response.tools)
    ? mapChanged(response.tools, (tool) => clientNamedTool(tool, names))
    : undefined;
  const choice = isRecord(response.tool_choice) ? clientNamedChoice(response.tool_choice, names) : undefined;
  if (output === undefined && tools === undefined && choice === undefined) return response;
  return {
    ...response,
    ...(output === undefined ? {} : { output }),
    ...(tools === undefined ? {} : { tools }),
    ...(choice === undefined ? {} : { tool_choice: choice }),
  };
}

/**
 * A native stream event with the client's names (its snapshot aside: the relay rewrites that itself); the event
 * itself when it names no renamed call.
 */
export function clientNamedEvent(event: JsonObject, names: LongToolNames): JsonObject {
  if (isRecord(event.item)) {
    const item = clientNamedItem(event.item, names);
    return item === undefined ? event : { ...event, item };
  }
  // `response.function_call_arguments.done` names its call (the `openai` SDK passes it on to the client's handler).
  if (event.type === "response.function_call_arguments.done" && typeof event.name === "string") {
    const name = names.client(event.name);
    return name === event.name ? event : { ...event, name };
  }
  return event;
}

/** A function name OpenAI refuses as it is (an empty one is left for validation). */
function needsRenaming(name: unknown): name is string {
  return typeof name === "string" && name !== "" && !isUpstreamToolName(name);
}

function namedOf(value: unknown, types: ReadonlySet<string>): unknown {
  return isRecord(value) && typeof value.type === "string" && types.has(value.type) ? value.name : undefined;
}

function hasRenamedName(body: JsonObject): boolean {
  const tools: readonly unknown[] = Array.isArray(body.tools) ? body.tools : [];
  const isRenamedTool = (tool: unknown): boolean => needsRenaming(namedOf(tool, NAMED_TOOL_TYPES));
  if (tools.some((tool) => isRenamedTool(tool) || (isNamespace(tool) && tool.tools.some(isRenamedTool)))) return true;
  const qualified = qualifiedMembers(tools);
  // A member chosen by its qualified name is renamed when the member is (found among the tools above).
  const isRenamedChoice = (choice: unknown): boolean => {
    const name = namedOf(choice, NAMED_TOOL_TYPES);
    return !(typeof name === "string" && qualified.has(name)) && isRenamedTool(choice);
  };
  const choice = body.tool_choice;
  if (isRenamedChoice(choice) || allowedTools(choice)?.some(isRenamedChoice) === true) return true;
  if (!Array.isArray(body.input)) return false;
  return body.input.some(
    (item) =>
      needsRenaming(namedOf(item, NAMED_CALL_TYPES)) ||
      loadedToolsOf(item)?.some((tool) => isRenamedTool(tool) || (isNamespace(tool) && tool.tools.some(isRenamedTool))),
  );
}

/**
 * The tools a `tool_search_output` item loaded (a client-run search's, in the input; a hosted one's, in the output):
 * the model may call them from then on, by the names the item gives them.
 */
function loadedToolsOf(item: unknown): unknown[] | undefined {
  return isRecord(item) && item.type === "tool_search_output" && Array.isArray(item.tools) ? item.tools : undefined;
}

/** An input item with its names as they go upstream: a call's, or those of the tools a search output loaded. */
function renamedInputItem(item: unknown, names: LongToolNames): unknown {
  const loaded = loadedToolsOf(item);
  if (loaded === undefined) return renamedNamed(item, NAMED_CALL_TYPES, names);
  return { ...(item as JsonObject), tools: loaded.map((tool) => renamedTool(tool, names)) };
}

function isNamespace(tool: unknown): tool is JsonObject & { tools: unknown[] } {
  return isRecord(tool) && tool.type === "namespace" && Array.isArray(tool.tools);
}

/** A tool, call or choice of one of `types` with its name as it goes upstream; the value itself when unchanged. */
function renamedNamed(value: unknown, types: ReadonlySet<string>, names: LongToolNames): unknown {
  const name = namedOf(value, types);
  if (typeof name !== "string") return value;
  // Every name is known, so a call answered in another case of one kept as it came is no shortened name's.
  const upstream = names.upstream(name);
  return upstream === name ? value : { ...(value as JsonObject), name: upstream };
}

function renamedTool(tool: unknown, names: LongToolNames): unknown {
  if (!isNamespace(tool)) return renamedNamed(tool, NAMED_TOOL_TYPES, names);
  return { ...tool, tools: tool.tools.map((member) => renamedNamed(member, NAMED_TOOL_TYPES, names)) };
}

interface QualifiedMember {
  readonly namespace: string;
  readonly name: string;
}

/**
 * The namespaces' members by the qualified name a tool choice may give one, `<namespace>.<name>`: the Agents SDK
 * names a `toolNamespace()` member so (`{type: "function", name: "crm.lookup"}`) and OpenAI takes it. Such a name
 * has a dot, so the rule for other names renamed it to a function no tool had, and the provider refused the
 * request (one with no name to rename otherwise too). A top-level tool of that very name is the one meant, and of two
 * namespaces spelling it alike (`a.b` + `c`, `a` + `b.c`) the shorter, as translated requests read it
 * (tool-names.ts chosenName).
 */
function qualifiedMembers(tools: unknown): Map<string, QualifiedMember> {
  const list: readonly unknown[] = Array.isArray(tools) ? tools : [];
  const topLevel = new Set(list.map((tool) => namedOf(tool, NAMED_TOOL_TYPES)));
  const members = new Map<string, QualifiedMember>();
  for (const tool of list) {
    if (!isNamespace(tool) || typeof tool.name !== "string") continue;
    for (const member of tool.tools) {
      const name = namedOf(member, NAMED_TOOL_TYPES);
      if (typeof name !== "string" || name === "") continue;
      const qualified = `${tool.name}.${name}`;
      const earlier = members.get(qualified);
      if (topLevel.has(qualified) || (earlier !== undefined && earlier.namespace.length <= tool.name.length)) continue;
      members.set(qualified, { namespace: tool.name, name });
    }
  }
  return members;
}

/** `{type: "function", name}`, or `{type: "allowed_tools", tools: [...]}` (Responses' form), renamed. */
function renamedChoice(choice: JsonObject, qualified: Map<string, QualifiedMember>, names: LongToolNames): unknown {
  const allowed = allowedTools(choice);
  if (allowed === undefined) return renamedChosen(choice, qualified, names);
  return { ...choice, tools: allowed.map((tool) => renamedChosen(tool, qualified, names)) };
}

/** A chosen tool as it goes upstream: a member's qualified name with the member's upstream name after its namespace. */
function renamedChosen(chosen: unknown, qualified: Map<string, QualifiedMember>, names: LongToolNames): unknown {
  const name = namedOf(chosen, NAMED_TOOL_TYPES);
  const member = typeof name === "string" ? qualified.get(name) : undefined;
  if (member === undefined) return renamedNamed(chosen, NAMED_TOOL_TYPES, names);
  const upstream = `${member.namespace}.${names.upstream(member.name)}`;
  return upstream === name ? chosen : { ...(chosen as JsonObject), name: upstream };
}

function allowedTools(choice: unknown): unknown[] | undefined {
  return isRecord(choice) && choice.type === "allowed_tools" && Array.isArray(choice.tools) ? choice.tools : undefined;
}

/** `value` with its `name` as the client named it, or undefined when that is its name already. */
function clientNamed(value: unknown, types: ReadonlySet<string>, names: LongToolNames): JsonObject | undefined {
  const name = namedOf(value, types);
  if (typeof name !== "string") return undefined;
  const client = names.client(name);
  return client === name ? undefined : { ...(value as JsonObject), name: client };
}

/** An output item (a call, or a hosted search's output listing the tools it loaded) under the client's names. */
function clientNamedItem(item: unknown, names: LongToolNames): JsonObject | undefined {
  const loaded = loadedToolsOf(item);
  if (loaded === undefined) return clientNamed(item, NAMED_CALL_TYPES, names);
  const tools = mapChanged(loaded, (tool) => clientNamedTool(tool, names));
  return tools === undefined ? undefined : { ...(item as JsonObject), tools };
}

function clientNamedTool(tool: unknown, names: LongToolNames): JsonObject | undefined {
  if (!isNamespace(tool)) return clientNamed(tool, NAMED_TOOL_TYPES, names);
  const members = mapChanged(tool.tools, (member) => clientNamed(member, NAMED_TOOL_TYPES, names));
  return members === undefined ? undefined : { ...tool, tools: members };
}

function clientNamedChoice(choice: JsonObject, names: LongToolNames): JsonObject | undefined {
  const allowed = allowedTools(choice);
  if (allowed === undefined) return clientNamedChosen(choice, names);
  const tools = mapChanged(allowed, (tool) => clientNamedChosen(tool, names));
  return tools === undefined ? undefined : { ...choice, tools };
}

/** A chosen tool under the client's name: a renamed one's, or a member's qualified `<namespace>.<upstream name>`. */
function clientNamedChosen(chosen: unknown, names: LongToolNames): JsonObject | undefined {
  const renamed = clientNamed(chosen, NAMED_TOOL_TYPES, names);
  const name = namedOf(chosen, NAMED_TOOL_TYPES);
  if (renamed !== undefined || typeof name !== "string") return renamed;
  // An upstream name has no dot: the last one ends the namespace.
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const member = name.slice(dot + 1);
  const client = names.client(member);
  return client === member ? undefined : { ...(chosen as JsonObject), name: `${name.slice(0, dot)}.${client}` };
}

/** `list` with each element `change` returns a replacement for replaced; undefined when none was. */
function mapChanged(list: readonly unknown[], change: (value: unknown) => unknown): unknown[] | undefined {
  let isChanged = false;
  const mapped = list.map((value) => {
    const replaced = change(value);
    if (replaced === undefined) return value;
    isChanged = true;
    return replaced;
  });
  return isChanged ? mapped : undefined;
}

function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}
