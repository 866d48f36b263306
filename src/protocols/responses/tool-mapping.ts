// Responses `tools` and `tool_choice` -> the Chat Completions ones. Chat providers refuse a `tool_choice` sent
// without `tools` (OpenAI: "'tool_choice' is only allowed when 'tools' are specified"), while the Responses API
// takes one (`auto` is even the default it echoes). So when no tool goes upstream, a choice that allows answering
// without a tool (`auto`, `none`) is dropped, and one that demands a tool call is refused here: dropping it would
// answer with text where the client required a call. A `namespace` tool's members go upstream as functions of
// their own, named by tool-names.ts.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { cutText } from "../../errors/shown-reason.ts";
import type { ChatTool, ChatToolChoice } from "../chat-completions.ts";
import { formatPath, unsupportedAt, validateAt } from "../validate.ts";
import { customToolAsFunction } from "./custom-tools.ts";
import {
  allowedToolsChoiceSchema,
  functionToolChoiceSchema,
  functionToolSchema,
  namespaceToolSchema,
  type ResponsesRequest,
} from "./request-schema.ts";
import { ToolNames } from "./tool-names.ts";
import { isClientToolSearch, TOOL_SEARCH_FUNCTION, toolSearchAsFunction } from "./tool-search.ts";

export interface ChatTools {
  /** The tools sent upstream (after `allowed_tools` filtering); empty when none go. */
  readonly tools: ChatTool[];
  /** Undefined when nothing should be sent, including every case without tools. */
  readonly toolChoice: ChatToolChoice | undefined;
  /** Types of the hosted tools left out (see HOSTED_TOOL_TYPES), in the request's order, without repeats. */
  readonly dropped: readonly string[];
}

/**
 * Tools OpenAI runs on its own servers, whose calls the model never hands to the client: behind a chat provider
 * nothing can run them, so they are left out and the model answers without them. Agent harnesses offer them
 * unasked (Codex sends `web_search` with every request by default), and refusing the request would refuse the
 * whole session. Tools the client runs itself (`computer`, `local_shell`, `shell`, `apply_patch`) are still
 * refused: their calls are item types a chat model cannot produce, and the client counts on them.
 */
const HOSTED_TOOL_TYPES: ReadonlySet<string> = new Set([
  "web_search",
  "web_search_2025_08_26",
  "web_search_preview",
  "web_search_preview_2025_03_11",
  "file_search",
  "code_interpreter",
  "image_generation",
  "mcp",
  "tool_search",
  "programmatic_tool_calling",
]);

/**
 * `names`: the request's tools as tool-names.ts names them upstream. `ownCount`: how many of `request.tools` are the
 * request's own; the rest were loaded by a client-run tool search (tool-search.ts), already one per name, and named
 * by the MCP server, so the client could not rename one named `tool_search`: that one is renamed upstream instead.
 */
export function toChatTools(
  request: Pick<ResponsesRequest, "tools" | "tool_choice">,
  names: ToolNames = ToolNames.of(request.tools ?? []),
  ownCount: number = request.tools?.length ?? 0,
): ChatTools {
  const requested = request.tools ?? [];
  const tools: ChatTool[] = [];
  const dropped = new Set<string>();
  const namespaced: NamespacedTools = { names, taken: new Set(), copiesLeftChars: COPIED_NOTES_CHARS };
  for (const tool of requested) {
    if ((tool.type === "function" || tool.type === "custom") && typeof tool.name === "string") {
      namespaced.taken.add(names.upstreamName(tool.name, undefined));
    }
    if (isClientToolSearch(tool)) namespaced.taken.add(TOOL_SEARCH_FUNCTION);
  }
  for (const [index, tool] of requested.entries()) {
    // The client runs this one itself: only the hosted `tool_search` is left out (tool-search.ts).
    if (isClientToolSearch(tool)) tools.push(toolSearchAsFunction(tool, ["tools", index]));
    else if (HOSTED_TOOL_TYPES.has(tool.type)) dropped.add(tool.type);
    else if (tool.type === "namespace") tools.push(...namespaceAsFunctions(tool, ["tools", index], namespaced));
    else tools.push(topLevelFunction(tool, ["tools", index], names));
  }
  refuseDuplicateNames(requested.slice(0, ownCount));
  const chosen = toChatToolChoice(request.tool_choice, tools, names);
  if (chosen.tools.length > 0) return { ...chosen, dropped: [...dropped] };
  if (chosen.toolChoice === "required") {
    throw new InvalidRequestError(
      `\`tool_choice\` requires a tool call, but there is no tool to call: \`tools\` is empty${dropped.size > 0 ? " once the hosted tools a chat provider cannot run are left out" : ""}, or \`allowed_tools\` names none of them.`,
      { param: "tool_choice", code: "invalid_value" },
    );
  }
  return { tools: [], toolChoice: undefined, dropped: [...dropped] };
}

/**
 * A custom tool sharing its name with another tool would be one function upstream among two, and its calls could
 * not be told apart (function tools of one name go upstream as they came, as before custom tools were taken).
 */
function refuseDuplicateNames(tools: readonly { type: string; name?: unknown }[]): void {
  const seen = new Map<unknown, string>();
  const hasToolSearch = tools.some(isClientToolSearch);
  for (const [index, tool] of tools.entries()) {
    // A namespace's name is no function's name: its members go upstream under names of their own.
    if (tool.type === "namespace") continue;
    if (hasToolSearch && tool.name === TOOL_SEARCH_FUNCTION) {
      throw new InvalidRequestError(
        `A tool is named \`${TOOL_SEARCH_FUNCTION}\`, the name the client-run \`tool_search\` tool takes upstream: rename it.`,
        { param: formatPath(["tools", index, "name"]), code: "invalid_value" },
      );
    }
    const earlier = seen.get(tool.name);
    if (earlier !== undefined && (earlier === "custom" || tool.type === "custom")) {
      throw new InvalidRequestError(
        `Two tools are named \`${String(tool.name)}\`: a \`custom\` tool's name must be unique among the tools.`,
        { param: formatPath(["tools", index, "name"]), code: "invalid_value" },
      );
    }
    seen.set(tool.name, tool.type);
  }
}

interface NamespacedTools {
  readonly names: ToolNames;
  /** Upstream names given out so far (top-level tools' and members'). */
  readonly taken: Set<string>;
  /** Characters of namespace descriptions still to be copied into members after the first (COPIED_NOTES_CHARS). */
  copiesLeftChars: number;
}

/**
 * At most this many characters of namespace descriptions are repeated into a request's members beyond each
 * namespace's first member. Repeated into every member without a bound, a 1 MB description over 400 members made a
 * 400 MB upstream body (1 GB of memory, 6 s of one core) from a 1 MB request, and the 20 MB body limit allowed far
 * worse. Real namespaces (an MCP server's few lines over its dozen tools) stay well under it.
 */
const COPIED_NOTES_CHARS = 64 * 1024;
/** A namespace's name as a member's description repeats it (a flat name is cut at 64 characters too). */
const NOTE_NAME_CHARS = 64;

/**
 * A namespace's members as upstream functions, each named by tool-names.ts and told its namespace in its
 * description (the namespace's description is "shown to the model"; a chat function has nowhere else for it).
 * `defer_loading` is not honoured: the hosted `tool_search` that would load such a tool is left out, so every
 * member is offered at once.
 */
function namespaceAsFunctions(tool: unknown, path: readonly PropertyKey[], namespaced: NamespacedTools): ChatTool[] {
  const namespace = validateAt(namespaceToolSchema, tool, path);
  return namespace.tools.map((member, index) => {
    const memberPath = [...path, "tools", index];
    if (member.type !== "function" && member.type !== "custom") {
      throw unsupportedAt(
        `A \`namespace\` tool groups \`function\` and \`custom\` tools; a member of type \`${String(member.type).slice(0, 64)}\` is not supported.`,
        [...memberPath, "type"],
      );
    }
    const chatTool = toChatTool(member, memberPath);
    const upstreamName = namespaced.names.upstreamName(chatTool.function.name, namespace.name);
    if (namespaced.taken.has(upstreamName)) {
      throw new InvalidRequestError(
        `The namespace \`${namespace.name}\` has two tools named \`${chatTool.function.name}\`, or one whose name chat providers would take for another tool's (\`${upstreamName}\`): a namespace's tools must be unique by name.`,
        { param: formatPath([...memberPath, "name"]), code: "invalid_value" },
      );
    }
    namespaced.taken.add(upstreamName);
    const described = [chatTool.function.description ?? "", namespaceNote(namespace, index, namespaced)];
    const description = described.filter((part) => part !== "").join("\n\n");
    const renamed: ChatTool["function"] = { ...chatTool.function, name: upstreamName };
    if (description !== "") renamed.description = description;
    return { type: "function", function: renamed };
  });
}

/**
 * What a member's description says of its namespace: its name and description. The first member gets it whole; the
 * others too while the request's copies stay within COPIED_NOTES_CHARS, else the namespace's name alone (cut).
 */
function namespaceNote(
  namespace: { readonly name: string; readonly description?: string | null | undefined },
  index: number,
  namespaced: NamespacedTools,
): string {
  const { name, description } = namespace;
  if (typeof description !== "string" || description === "") return "";
  const note = `Namespace \`${name}\`: ${description}`;
  if (index === 0) return note;
  if (note.length <= namespaced.copiesLeftChars) {
    namespaced.copiesLeftChars -= note.length;
    return note;
  }
  const shown = name.length <= NOTE_NAME_CHARS ? name : cutText(name, NOTE_NAME_CHARS + 1);
  return `Namespace \`${shown}\` (described with its first tool).`;
}

/** A top-level function or custom tool, under its upstream name (its own but for a renamed one: tool-names.ts). */
function topLevelFunction(tool: { type: string }, path: readonly PropertyKey[], names: ToolNames): ChatTool {
  const chatTool = toChatTool(tool, path);
  const upstreamName = names.upstreamName(chatTool.function.name, undefined);
  return upstreamName === chatTool.function.name
    ? chatTool
    : { type: "function", function: { ...chatTool.function, name: upstreamName } };
}

function toChatTool(tool: { type: string }, path: readonly PropertyKey[]): ChatTool {
  if (tool.type === "custom") return customToolAsFunction(tool, path);
  if (tool.type !== "function") {
    throw unsupportedAt(
      `Tools of type \`${String(tool.type).slice(0, 64)}\` are built into OpenAI's service and cannot run behind a chat provider; only \`function\`, \`custom\` and \`namespace\` tools are supported.`,
      [...path, "type"],
    );
  }
  const parsed = validateAt(functionToolSchema, tool, path);
  const chatTool: ChatTool = {
    type: "function",
    function: { name: parsed.name, parameters: parsed.parameters ?? { type: "object", properties: {} } },
  };
  if (typeof parsed.description === "string") chatTool.function.description = parsed.description;
  // `strict: false` is the chat default; sending it only when true keeps the body valid for strict providers.
  if (parsed.strict === true) chatTool.function.strict = true;
  return chatTool;
}

function toChatToolChoice(
  choice: ResponsesRequest["tool_choice"],
  tools: ChatTool[],
  names: ToolNames,
): Pick<ChatTools, "tools" | "toolChoice"> {
  if (choice === undefined || choice === null) return { tools, toolChoice: undefined };
  if (typeof choice === "string") {
    if (choice === "none" || choice === "auto" || choice === "required") return { tools, toolChoice: choice };
    throw unsupportedAt("`tool_choice` must be `none`, `auto`, `required` or an object.", ["tool_choice"]);
  }
  if (choice.type === "function" || choice.type === "custom") {
    const named = validateAt(functionToolChoiceSchema, choice, ["tool_choice"]);
    // A namespace's member is named `{name, namespace}` or `<namespace>.<name>` (tool-names.ts `chosenName`).
    const upstreamName = names.chosenName(named.name, named.namespace);
    // OpenAI refuses this too; a chat provider might instead ignore the choice and answer without the call.
    if (upstreamName === undefined || !tools.some((tool) => tool.function.name === upstreamName)) {
      const shown = typeof named.namespace === "string" ? `${named.namespace}.${named.name}` : named.name;
      throw new InvalidRequestError(`\`tool_choice\` names the function \`${shown}\`, which is not in \`tools\`.`, {
        param: "tool_choice",
        code: "invalid_value",
      });
    }
    return { tools, toolChoice: { type: "function", function: { name: upstreamName } } };
  }
  if (choice.type === "allowed_tools") {
    const allowed = validateAt(allowedToolsChoiceSchema, choice, ["tool_choice"]);
    const allowedNames = new Set<string>();
    // A namespace's members are added once however often it is listed: each listing cost all of its members, and
    // a body of many listings of a large namespace held the event loop for seconds to minutes.
    const allowedNamespaces = new Set<string>();
    for (const entry of allowed.tools) {
      if (typeof entry.name !== "string") continue;
      if (entry.type !== "namespace") allowedNames.add(names.chosenName(entry.name, entry.namespace) ?? entry.name);
      else if (!allowedNamespaces.has(entry.name)) {
        allowedNamespaces.add(entry.name);
        for (const member of names.membersOf(entry.name)) allowedNames.add(member);
      }
    }
    return { tools: tools.filter((tool) => allowedNames.has(tool.function.name)), toolChoice: allowed.mode };
  }
  throw unsupportedAt(
    `\`tool_choice\` of type \`${choice.type}\` names a built-in tool a chat provider cannot run; use \`function\`, \`custom\` or \`allowed_tools\`.`,
    ["tool_choice", "type"],
  );
}
