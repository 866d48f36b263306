// The Chat Completions door's tool names that chat providers refuse, longer than 64 characters or with other
// characters than letters, digits, `_` and `-` (long-tool-names.ts): the request goes upstream with them renamed, in
// `tools`, `tool_choice`, the history's assistant tool calls and tool results' `name` alike, and in the deprecated
// `functions` / `function_call` fields old clients still send (the request's, and an assistant message's
// `function_call`), and the model's calls (`tool_calls`, or a legacy `function_call`) come back under the client's
// names, in a JSON answer and in each streamed chunk. Freeform `custom` tools and calls alike. A renamed form never
// takes a name the client gave another tool (long-tool-names.ts). A request with no such name is not copied, and its
// answer not read again.
import { isRecord, parseJsonRecord } from "../is-record.ts";
import { isUpstreamToolName, LongToolNames } from "./long-tool-names.ts";

/** A chat request whose long (or invalid) tool names were renamed, and the names to map the answer's calls back by. */
export interface ShortenedChatRequest {
  readonly body: Record<string, unknown>;
  readonly names: LongToolNames;
}

/**
 * The body with its long (or invalid) tool names renamed, or undefined when it has none (then it goes as it came). Read
 * leniently: the body is not validated yet, and what is not a named function is left as it is.
 */
export function shortenChatToolNames(body: unknown): ShortenedChatRequest | undefined {
  if (!isRecord(body) || !hasNameToRename(body)) return undefined;
  const names = new LongToolNames();
  // The names that go as they came first: a renamed form never takes one of them (long-tool-names.ts).
  names.claim(allNames(body));
  const shortened: Record<string, unknown> = { ...body };
  if (Array.isArray(body.tools)) shortened.tools = body.tools.map((tool) => renamedFunctionHolder(tool, names));
  if (isRecord(body.tool_choice)) shortened.tool_choice = renamedChoice(body.tool_choice, names);
  if (Array.isArray(body.functions)) shortened.functions = body.functions.map((fn) => renamedFunction(fn, names));
  if (isRecord(body.function_call)) shortened.function_call = renamedFunction(body.function_call, names);
  if (Array.isArray(body.messages)) shortened.messages = body.messages.map((message) => renamedMessage(message, names));
  return { body: shortened, names };
}

/** A JSON chat answer with its calls' names as the client named the tools (the text itself when none changes). */
export function clientNamedAnswer(bodyText: string, names: LongToolNames): string {
  const answer = parseJsonRecord(bodyText);
  if (answer === undefined || !Array.isArray(answer.choices)) return bodyText;
  let isChanged = false;
  for (const choice of answer.choices) {
    if (isRecord(choice) && isRecord(choice.message) && restoreMessageCalls(choice.message, names)) isChanged = true;
  }
  return isChanged ? JSON.stringify(answer) : bodyText;
}

/** Renames a chunk's streamed calls back to the client's names in place; returns whether it changed. */
export function restoreChunkToolNames(chunk: Record<string, unknown>, names: LongToolNames): boolean {
  if (!Array.isArray(chunk.choices)) return false;
  let isChanged = false;
  for (const choice of chunk.choices) {
    if (isRecord(choice) && isRecord(choice.delta) && restoreMessageCalls(choice.delta, names)) isChanged = true;
  }
  return isChanged;
}

/** A message's (or a delta's) `tool_calls` and legacy `function_call` under the client's names, in place. */
function restoreMessageCalls(message: Record<string, unknown>, names: LongToolNames): boolean {
  let isChanged = restoreName(message.function_call, names);
  if (!Array.isArray(message.tool_calls)) return isChanged;
  for (const call of message.tool_calls) {
    if (isRecord(call) && restoreName(call.function ?? call.custom, names)) isChanged = true;
  }
  return isChanged;
}

/** A `{name, ...}` function under the client's name, in place; returns whether it changed. */
function restoreName(fn: unknown, names: LongToolNames): boolean {
  if (!isRecord(fn) || typeof fn.name !== "string") return false;
  const client = names.client(fn.name);
  if (client === fn.name) return false;
  fn.name = client;
  return true;
}

/** A function name chat providers refuse as it is (an empty one is left for validation to refuse). */
function needsRenaming(name: unknown): boolean {
  return typeof name === "string" && name !== "" && !isUpstreamToolName(name);
}

/** The name of a `{name}` (a legacy function, a legacy named `function_call`). */
function nameOf(fn: unknown): unknown {
  return isRecord(fn) ? fn.name : undefined;
}

/**
 * Where a tool, a call or a named tool choice holds its name: `function`, or `custom` for the freeform tools (OpenAI's
 * `{type: "custom", custom: {name, format}}`, answered with `{type: "custom", custom: {name, input}}` calls) some
 * clients send the chat API as they send the Responses API; a name providers refuse there is refused as well.
 */
function namedPart(holder: unknown): Record<string, unknown> | undefined {
  if (!isRecord(holder)) return undefined;
  if (isRecord(holder.function)) return holder.function;
  return holder.type === "custom" && isRecord(holder.custom) ? holder.custom : undefined;
}

/** The name of a `{function: {name}}` or `{custom: {name}}` (a tool, a call, a named tool choice). */
function functionName(holder: unknown): unknown {
  return namedPart(holder)?.name;
}

/** Every name the body gives a tool, a call or a result (for `LongToolNames.claim`). */
function allNames(body: Record<string, unknown>): unknown[] {
  const found: unknown[] = [];
  if (Array.isArray(body.tools)) found.push(...body.tools.map(functionName));
  found.push(functionName(body.tool_choice), nameOf(body.function_call));
  found.push(...(allowedTools(body.tool_choice) ?? []).map(functionName));
  if (Array.isArray(body.functions)) found.push(...body.functions.map(nameOf));
  if (!Array.isArray(body.messages)) return found;
  for (const message of body.messages) {
    if (!isRecord(message)) continue;
    if (Array.isArray(message.tool_calls)) found.push(...message.tool_calls.map(functionName));
    found.push(nameOf(message.function_call), isResultMessage(message) ? message.name : undefined);
  }
  return found;
}

function hasNameToRename(body: Record<string, unknown>): boolean {
  if (Array.isArray(body.tools) && body.tools.some((tool) => needsRenaming(functionName(tool)))) return true;
  if (needsRenaming(functionName(body.tool_choice))) return true;
  const allowed = allowedTools(body.tool_choice);
  if (allowed?.some((tool) => needsRenaming(functionName(tool))) === true) return true;
  if (Array.isArray(body.functions) && body.functions.some((fn) => needsRenaming(nameOf(fn)))) return true;
  if (needsRenaming(nameOf(body.function_call))) return true;
  if (!Array.isArray(body.messages)) return false;
  return body.messages.some(
    (message) =>
      isRecord(message) &&
      ((Array.isArray(message.tool_calls) && message.tool_calls.some((call) => needsRenaming(functionName(call)))) ||
        needsRenaming(nameOf(message.function_call)) ||
        (isResultMessage(message) && needsRenaming(message.name))),
  );
}

/**
 * A `tool` (or legacy `function`) message names the function whose result it is in Mistral's form (`name` beside
 * `tool_call_id`, as Mistral's own examples send it): left long, it named a function the upstream was never offered
 * while the call it answers went shortened.
 */
function isResultMessage(message: Record<string, unknown>): boolean {
  return message.role === "tool" || message.role === "function";
}

/** A history message with its calls' names, or a result's `name`, as they go upstream. */
function renamedMessage(message: unknown, names: LongToolNames): unknown {
  if (!isRecord(message)) return message;
  if (isRecord(message.function_call)) {
    // An old client's assistant turn: a legacy call, `tool_calls` beside it renamed too.
    const renamed: Record<string, unknown> = {
      ...message,
      function_call: renamedFunction(message.function_call, names),
    };
    if (Array.isArray(message.tool_calls)) {
      renamed.tool_calls = message.tool_calls.map((call) => renamedFunctionHolder(call, names));
    }
    return renamed;
  }
  if (Array.isArray(message.tool_calls)) {
    return { ...message, tool_calls: message.tool_calls.map((call) => renamedFunctionHolder(call, names)) };
  }
  if (isResultMessage(message) && needsRenaming(message.name))
    return { ...message, name: names.upstream(message.name as string) };
  return message;
}

/** `{..., function: {name, ...}}` (or `custom`) with the name as it goes upstream (itself when it is no long name). */
function renamedFunctionHolder(holder: unknown, names: LongToolNames): unknown {
  const part = namedPart(holder);
  const name = part?.name;
  if (typeof name !== "string" || name === "" || !isRecord(holder) || part === undefined) return holder;
  // A name kept as it came is known too: a call answered in another case of it is no shortened name's.
  const upstream = names.upstream(name);
  if (upstream === name) return holder;
  const field = isRecord(holder.function) ? "function" : "custom";
  return { ...holder, [field]: { ...part, name: upstream } };
}

/** A legacy `{name, ...}` (a `functions` entry, a named `function_call`) with its name as it goes upstream. */
function renamedFunction(fn: unknown, names: LongToolNames): unknown {
  const name = nameOf(fn);
  if (typeof name !== "string" || name === "" || !isRecord(fn)) return fn;
  const upstream = names.upstream(name);
  return upstream === name ? fn : { ...fn, name: upstream };
}

/** `{type: "function", function: {name}}`, or `{type: "allowed_tools", allowed_tools: {tools: [...]}}`, renamed. */
function renamedChoice(choice: Record<string, unknown>, names: LongToolNames): unknown {
  const allowed = allowedTools(choice);
  if (allowed === undefined) return renamedFunctionHolder(choice, names);
  const inner = choice.allowed_tools as Record<string, unknown>;
  return { ...choice, allowed_tools: { ...inner, tools: allowed.map((tool) => renamedFunctionHolder(tool, names)) } };
}

/** An `allowed_tools` tool choice's tools (OpenAI's: `{type: "allowed_tools", allowed_tools: {mode, tools}}`). */
function allowedTools(choice: unknown): unknown[] | undefined {
  if (!isRecord(choice) || !isRecord(choice.allowed_tools)) return undefined;
  const tools = choice.allowed_tools.tools;
  return Array.isArray(tools) ? tools : undefined;
}
