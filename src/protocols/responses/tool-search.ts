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
 * twice, or one the request offers already, counts once (the first wins), so loading never makes the duplicate
 * names the request's own tools are refused for. `earlier`: the tools loaded before the kept items and the input
 * (those a previous response's conversation loaded: `StoredResponse.loadedTools`), merged alike.
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
      searches.push(validateAt(toolSearchOutputItemSchema, item, [field, index]).tools);
    }
  }
  const loaded: JsonObject[] = [];
  const namespaces = new Map<string, LoadedNamespace>();
  const topLevel = new Set<unknown>();
  for (const tool of requestTools) {
    if (tool.type === "namespace" && typeof tool.name === "string" && Array.isArray(tool.tools)) {
      namespaces.set(tool.name, { members: undefined, names: new Set(tool.tools.map(nameOf)) });
    } else if (tool.name !== undefined || isClientToolSearch(tool)) topLevel.add(topLevelKey(tool));
  }
  for (const tool of searches.flat()) {
    if (tool.type === "namespace" && typeof tool.name === "string" && Array.isArray(tool.tools)) {
      const namespace = namespaces.get(tool.name) ?? { members: undefined, names: new Set() };
      namespaces.set(tool.name, namespace);
      for (const member of tool.tools) {
        if (namespace.names.has(nameOf(member))) continue;
        namespace.names.add(nameOf(member));
        if (namespace.members === undefined) {
          // Listed once, at its first new member: the members of later searches join this list.
          namespace.members = [];
          loaded.push({ ...tool, tools: namespace.members });
        }
        namespace.members.push(member);
      }
    } else if (!topLevel.has(topLevelKey(tool))) {
      topLevel.add(topLevelKey(tool));
      loaded.push(tool);
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
  /** The members loaded and not offered before; undefined until the first (the namespace is then listed). */
  members: unknown[] | undefined;
  /** Every member's name: the request's and the loaded ones. */
  readonly names: Set<unknown>;
}

function nameOf(tool: unknown): unknown {
  return tool !== null && typeof tool === "object" ? (tool as { name?: unknown }).name : undefined;
}

/** What the model reads as the search's result: the functions it may now call, by their upstream names. */
export function toolSearchOutputText(names: readonly string[]): string {
  if (names.length === 0) return "No tools were found.";
  return `Loaded tools, callable now: ${names.join(", ")}.`;
}
