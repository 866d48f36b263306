// A client-run `tool_search` tool (`execution: "client"`) over chat providers. Codex offers one to GPT-5 model names
// and keeps the tools of its MCP servers behind it (deferred: not in `tools` at all), so without it the model
// cannot reach them. Codex runs the search itself; all it needs from the model is the call, which makes it an
// ordinary function upstream, named `tool_search`, taking the parameters the client gave. The model's call of it
// comes back as a `tool_search_call` item whose `arguments` is the JSON object the model wrote. The client answers
// with a `tool_search_output` item listing the tools it loaded, which the model may call from then on: OpenAI adds
// them to the model's tools from that item, so the gateway adds them to the functions sent upstream (every request
// that holds the output offers the tools; a request continuing a kept response by `previous_response_id` offers
// those its conversation loaded, kept with the response), and the model reads the output as a tool message naming
// them. The hosted `tool_search` (`execution: "server"`) is still left out
// (tool-mapping.ts): nothing behind a chat provider could run it.
import { serverToolSearchSchema } from "../../responses-items.ts";
import type { ChatTool } from "../chat-completions.ts";
import { validateAt } from "../validate.ts";
import { clientToolSearchToolSchema, toolSearchOutputItemSchema } from "./request-schema.ts";

/** The upstream function's name: the tool has none of its own, and the model is told of it by this one. */
export const TOOL_SEARCH_FUNCTION = "tool_search";

type JsonObject = Record<string, unknown>;

export function isClientToolSearch(tool: unknown): boolean {
  if (tool === null || typeof tool !== "object") return false;
  const { type, execution } = tool as { type?: unknown; execution?: unknown };
  return type === "tool_search" && execution === "client";
}

export function toolSearchAsFunction(tool: unknown, path: readonly PropertyKey[]): ChatTool {
  const parsed = validateAt(clientToolSearchToolSchema, tool, path);
  const chatTool: ChatTool = {
    type: "function",
    function: {
      name: TOOL_SEARCH_FUNCTION,
      parameters: parsed.parameters ?? { type: "object", properties: { query: { type: "string" } } },
    },
  };
  if (typeof parsed.description === "string" && parsed.description !== "") {
    chatTool.function.description = parsed.description;
  }
  return chatTool;
}

/**
 * A `tool_search_call`'s arguments from the function arguments the model wrote: the JSON object they hold. Arguments
 * that are not JSON are passed on as the text they are, so the client's search reports the mistake to the model
 * rather than the gateway failing the whole answer.
 */
export function searchArgumentsOf(argumentsText: string): unknown {
  try {
    return JSON.parse(argumentsText) as unknown;
  } catch {
    return argumentsText;
  }
}

/** A `tool_search_call`'s arguments as the function arguments of the call it was upstream. */
export function searchArgumentsAsText(searchArguments: unknown): string {
  if (typeof searchArguments === "string") return searchArguments;
  return JSON.stringify(searchArguments ?? {});
}

/**
 * The tools the input's `tool_search_output` items loaded, as tools of the request: a namespace loaded twice (two
 * searches finding different tools of one MCP server) is one namespace with the members of both, and a tool loaded
 * twice, or one the request offers already, counts once, so loading never makes the duplicate names the request's
 * own tools are refused for. A tool loaded again is offered as its latest load lists it, in its first load's place
 * (an MCP server whose tool changed its schema between two searches: the model must write the arguments the tool
 * takes now; the first version used to stay); a tool the request offers itself stays the request's. `earlier`: the
 * tools loaded before the kept items and the input (those a previous response's conversation loaded:
 * `StoredResponse.loadedTools`), merged alike.
 */
export function loadedTools(
  input: unknown,
  requestTools: readonly JsonObject[],
  keptItems: readonly unknown[] = [],
  earlier: readonly JsonObject[] = [],
): JsonObject[] {
  const sources: [string, readonly unknown[]][] = [
    // A kept conversation's items come before the input, as the model reads them (request-mapping.ts).
    ["conversation", keptItems],
    ["input", Array.isArray(input) ? input : []],
  ];
  const searches: (readonly JsonObject[])[] = [earlier];
  for (const [field, items] of sources) {
    for (const [index, item] of items.entries()) {
      if (item === null || typeof item !== "object" || (item as JsonObject).type !== "tool_search_output") continue;
      // A search OpenAI ran itself is a hosted item, left out for a chat provider (input-messages.ts).
      if (serverToolSearchSchema(item as JsonObject) !== undefined) continue;
      searches.push(validateAt(toolSearchOutputItemSchema, item, [field, index]).tools);
    }
  }
  const loaded: JsonObject[] = [];
  const namespaces = new Map<string, LoadedNamespace>();
  /** Top-level tools by topLevelKey: where in `loaded` a loaded one is (undefined: the request's own). */
  const topLevel = new Map<unknown, number | undefined>();
  for (const tool of requestTools) {
    if (tool.type === "namespace" && typeof tool.name === "string" && Array.isArray(tool.tools)) {
      namespaces.set(tool.name, { listed: undefined, offered: new Set(tool.tools.map(nameOf)), members: new Map() });
    } else if (tool.name !== undefined || isClientToolSearch(tool)) topLevel.set(topLevelKey(tool), undefined);
  }
  for (const tool of searches.flat()) {
    if (tool.type === "namespace" && typeof tool.name === "string" && Array.isArray(tool.tools)) {
      const namespace = namespaces.get(tool.name) ?? { listed: undefined, offered: new Set(), members: new Map() };
      namespaces.set(tool.name, namespace);
      for (const member of tool.tools) {
        const name = nameOf(member);
        if (namespace.offered.has(name)) continue;
        if (namespace.listed === undefined) {
          // Listed once, at its first new member: the members of later searches join this list.
          namespace.listed = { ...tool, tools: [] };
          loaded.push(namespace.listed);
        } else {
          // Loaded again: its latest description (and other fields) with every member loaded so far.
          Object.assign(namespace.listed, { ...tool, tools: namespace.listed.tools });
        }
        const members = namespace.listed.tools;
        const at = namespace.members.get(name);
        if (at === undefined) {
          namespace.members.set(name, members.length);
          members.push(member);
        } else members[at] = member;
      }
    } else {
      const key = topLevelKey(tool);
      if (!topLevel.has(key)) {
        topLevel.set(key, loaded.length);
        loaded.push(tool);
      } else {
        const at = topLevel.get(key);
        if (at !== undefined) loaded[at] = tool;
      }
    }
  }
  return loaded;
}

/** The client-run `tool_search` among top-level tools: it has no name, and no function's name is this. */
const CLIENT_SEARCH_KEY = Symbol("client-run tool_search");

/**
 * What tells top-level tools apart: a name, or for the client-run `tool_search` (which has none) a key of its own,
 * so a search output listing that tool itself adds no second search, while a loaded function that happens to be
 * named `tool_search` (an MCP server's) is still offered, under a name of its own upstream (tool-names.ts).
 */
function topLevelKey(tool: Readonly<Record<string, unknown>>): unknown {
  return isClientToolSearch(tool) ? CLIENT_SEARCH_KEY : tool.name;
}

interface LoadedNamespace {
  /** The namespace as listed in the loaded tools, with the members the request does not offer; undefined until the
   * first of those (the namespace is then listed). */
  listed: (JsonObject & { tools: unknown[] }) | undefined;
  /** The names of the members the request offers itself (a load does not replace those). */
  readonly offered: Set<unknown>;
  /** A loaded member's name -> its place in `listed.tools`. */
  readonly members: Map<unknown, number>;
}

function nameOf(tool: unknown): unknown {
  return tool !== null && typeof tool === "object" ? (tool as { name?: unknown }).name : undefined;
}

/** What the model reads as the search's result: the functions it may now call, by their upstream names. */
export function toolSearchOutputText(names: readonly string[]): string {
  if (names.length === 0) return "No tools were found.";
  return `Loaded tools, callable now: ${names.join(", ")}.`;
}
