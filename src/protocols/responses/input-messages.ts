// Responses input items -> chat messages, for a request's `input` and a kept conversation's items (request-mapping.ts
// translates the rest of the request). What is translated and refused is listed in docs/protocols.md.
import { InvalidRequestError, ResourceNotFoundError } from "../../errors/gateway-error.ts";
import { hostedItemSchema, serverToolSearchSchema } from "../../responses-items.ts";
import {
  type ChatContentPart,
  type ChatMessage,
  type ChatToolCall,
  joinedReasoning,
  withToolTurnReasoningOnly,
} from "../chat-completions.ts";
import { toolResultText } from "../tool-result-text.ts";
import { formatPath, unsupportedAt, validateAt } from "../validate.ts";
import { splitOutput, toChatMessage } from "./content-parts.ts";
import { inputAsArguments } from "./custom-tools.ts";
import { NOT_STORED } from "./not-kept-answers.ts";
import { reasoningText } from "./reasoning-text.ts";
import {
  customToolCallItemSchema,
  customToolCallOutputItemSchema,
  functionCallItemSchema,
  functionCallOutputItemSchema,
  itemReferenceSchema,
  toolSearchCallItemSchema,
  toolSearchOutputItemSchema,
} from "./request-schema.ts";
import type { OutputItem } from "./response-object.ts";
import type { StoredResponse } from "./response-store.ts";
import type { ToolNames } from "./tool-names.ts";
import { searchArgumentsAsText, TOOL_SEARCH_FUNCTION, toolSearchOutputText } from "./tool-search.ts";

/** What the mapping reads from kept responses (a ResponseStore, or nothing when the client keeps no state). */
export interface ResponseLookup {
  get(id: string): StoredResponse | undefined;
  findItem(id: string): OutputItem | undefined;
  /**
   * The kept response whose output item this is, or that brought the input item of this chainItemKey
   * (duplicate-items.ts); absent: not known.
   */
  responseWithItem?(id: string): StoredResponse | undefined;
  /** The items of a kept conversation (`conversation`), oldest first; undefined: no such conversation. */
  conversationItems?(id: string): readonly Record<string, unknown>[] | undefined;
  /** The ids a kept conversation's items were given by the client (StoredConversation.clientIds). */
  conversationClientIds?(id: string): readonly string[] | undefined;
  /** A response this process answered but failed to keep (KeptResponses.notKept): its absence is said so. */
  isNotKept?(id: string): boolean;
  /** The answer this process failed to keep whose output item this is (KeptResponses.notKeptItem), if any. */
  notKeptResponseOfItem?(itemId: string): string | undefined;
  /** A kept conversation's item ids -> the ids the client gave them (StoredConversation.clientIds). */
  conversationClientIdMap?(id: string): Readonly<Record<string, string>> | undefined;
}

type Path = readonly PropertyKey[];

/**
 * Input items -> chat messages. A run of assistant items (messages and function calls, in either order) is one
 * assistant turn with text and calls; images (and files) in a function call's output cannot go in a `tool` message,
 * so they follow the run of tool messages in a user message (an output of only those says so: tool-result-text.ts).
 * A call of a namespace's member is named as upstream (`toolNames`).
 */
export function inputMessages(
  input: string | unknown[] | undefined,
  lookup: ResponseLookup,
  toolNames: ToolNames,
  field = "input",
  calledIds?: Set<string>,
): ChatMessage[] {
  if (input === undefined) return [];
  if (typeof input === "string") return [{ role: "user", content: input }];
  const messages: ChatMessage[] = [];
  let pendingImages: ChatContentPart[] = [];
  // A reasoning item's text, for the assistant message it led to (the next one); dropped if something else comes.
  let pendingReasoning: string | undefined;
  const push = (message: ChatMessage): void => {
    if (message.role === "assistant" && pendingReasoning !== undefined) {
      pushMessage(messages, { ...message, reasoning_content: pendingReasoning });
    } else {
      pushMessage(messages, message);
    }
    pendingReasoning = undefined;
  };
  const flushImages = (): void => {
    if (pendingImages.length === 0) return;
    push({ role: "user", content: pendingImages });
    pendingImages = [];
  };
  for (const [index, raw] of input.entries()) {
    const path = [field, index];
    const item = resolveReference(raw, path, lookup);
    const type = typeof item.type === "string" ? item.type : "message";
    if (type !== "function_call_output" && type !== "custom_tool_call_output" && type !== "tool_search_output") {
      flushImages();
    }
    const serverSearch = serverToolSearchSchema(item);
    if (serverSearch !== undefined) {
      // A tool search OpenAI ran (responses-items.ts): left out, as a hosted tool's items are.
      validateAt(serverSearch, item, path);
      continue;
    }
    switch (type) {
      case "message":
        push(toChatMessage(item, path));
        break;
      case "function_call": {
        const call = validateAt(functionCallItemSchema, item, path);
        calledIds?.add(call.call_id);
        const toolCall: ChatToolCall = {
          id: call.call_id,
          type: "function",
          function: { name: toolNames.upstreamName(call.name, call.namespace), arguments: call.arguments },
        };
        push({ role: "assistant", content: null, tool_calls: [toolCall] });
        break;
      }
      case "custom_tool_call": {
        // Upstream, a custom tool is a function taking one string (custom-tools.ts).
        const call = validateAt(customToolCallItemSchema, item, path);
        calledIds?.add(call.call_id);
        const toolCall: ChatToolCall = {
          id: call.call_id,
          type: "function",
          function: {
            name: toolNames.upstreamName(call.name, call.namespace),
            arguments: inputAsArguments(call.input),
          },
        };
        push({ role: "assistant", content: null, tool_calls: [toolCall] });
        break;
      }
      case "function_call_output":
      case "custom_tool_call_output": {
        const result = validateAt(
          type === "function_call_output" ? functionCallOutputItemSchema : customToolCallOutputItemSchema,
          item,
          path,
        );
        refuseUnansweredOutput(calledIds, result.call_id, type, path);
        const output =
          typeof result.output === "string"
            ? { text: result.output, images: [] }
            : splitOutput(result.output, [...path, "output"]);
        push({
          role: "tool",
          tool_call_id: result.call_id,
          content: toolResultText(output.text, output.images),
        });
        pendingImages.push(...output.images);
        break;
      }
      case "tool_search_call": {
        // Upstream, the client-run tool search is a function (tool-search.ts).
        const call = validateAt(toolSearchCallItemSchema, item, path);
        calledIds?.add(call.call_id);
        const toolCall: ChatToolCall = {
          id: call.call_id,
          type: "function",
          function: { name: TOOL_SEARCH_FUNCTION, arguments: searchArgumentsAsText(call.arguments) },
        };
        push({ role: "assistant", content: null, tool_calls: [toolCall] });
        break;
      }
      case "tool_search_output": {
        // The tools it loaded are offered upstream from here on (withLoadedTools); the model reads their names.
        const result = validateAt(toolSearchOutputItemSchema, item, path);
        refuseUnansweredOutput(calledIds, result.call_id, type, path);
        const loaded = result.tools.flatMap((tool) => upstreamNamesOf(tool, toolNames));
        push({ role: "tool", tool_call_id: result.call_id, content: toolSearchOutputText(loaded) });
        break;
      }
      case "reasoning":
        // Goes back as the next assistant message's `reasoning_content` (chat-completions.ts says who needs it).
        pendingReasoning = joinedReasoning(pendingReasoning, reasoningText(item));
        break;
      default: {
        const hosted = hostedItemSchema(type);
        if (hosted === undefined) {
          throw unsupportedAt(
            `Input items of type \`${String(type).slice(0, 64)}\` are not supported: chat providers only take messages, function and custom tool calls and their outputs.`,
            [...path, "type"],
          );
        }
        // A hosted tool's call (web search, MCP, ...), kept from a native provider's answer: checked as OpenAI checks
        // it, then left out. Nothing behind a chat provider ran it or can, and its tool is not offered upstream
        // (tool-mapping.ts): the model sees the conversation's messages around it, not the call nor its results.
        validateAt(hosted, item, path);
        break;
      }
    }
  }
  flushImages();
  return withToolTurnReasoningOnly(messages);
}

/** The upstream function names a loaded tool goes by: a namespace's members' (tool-names.ts), else its own. */
function upstreamNamesOf(tool: Record<string, unknown>, names: ToolNames): string[] {
  const { name, tools } = tool;
  if (typeof name !== "string") return [];
  if (tool.type !== "namespace") return [names.upstreamName(name, undefined)];
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((member: unknown) => {
    const memberName = (member as { name?: unknown } | null)?.name;
    return typeof memberName === "string" ? [names.upstreamName(memberName, name)] : [];
  });
}

/**
 * Appends a message, joining assistant output to an assistant message right before it. A streamed answer can
 * be [function_call, message] (text after the call); sent back as two assistant messages, the calls would not be
 * followed by their `tool` messages, which chat providers refuse. The texts join without a separator, as the
 * `previous_response_id` path joins them (response-mapping.ts `outputToChatMessages`): they are pieces of one
 * chat answer.
 */
function pushMessage(messages: ChatMessage[], message: ChatMessage): void {
  const last = messages.at(-1);
  if (message.role !== "assistant" || last?.role !== "assistant") {
    messages.push(message);
    return;
  }
  if (message.content !== null && message.content !== "") last.content = (last.content ?? "") + message.content;
  if (message.tool_calls !== undefined) last.tool_calls = [...(last.tool_calls ?? []), ...message.tool_calls];
  const reasoning = joinedReasoning(last.reasoning_content, message.reasoning_content);
  if (reasoning !== undefined) last.reasoning_content = reasoning;
}

function resolveReference(raw: unknown, path: Path, lookup: ResponseLookup): Record<string, unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new InvalidRequestError(`\`${formatPath(path)}\` must be an object.`, {
      param: formatPath(path),
      code: "invalid_value",
    });
  }
  const item = raw as Record<string, unknown>;
  if (item.type !== "item_reference") return item;
  const reference = validateAt(itemReferenceSchema, item, path);
  const found = lookup.findItem(reference.id);
  const notKeptIn = found === undefined ? lookup.notKeptResponseOfItem?.(reference.id) : undefined;
  if (notKeptIn !== undefined) {
    // A 400, as for `previous_response_id`: the client was answered, the answer is nowhere to be found again.
    throw new InvalidRequestError(
      `Item with id '${reference.id}' is an item of response '${notKeptIn}', which ${NOT_STORED}; send the item itself in \`input\` instead.`,
      { param: formatPath([...path, "id"]), code: "item_not_found" },
    );
  }
  if (found === undefined) {
    throw new ResourceNotFoundError(
      `Item with id '${reference.id}' not found: it belongs to no kept response (never stored, expired or deleted).`,
      { param: formatPath([...path, "id"]), code: "item_not_found" },
    );
  }
  return found as unknown as Record<string, unknown>;
}

/** What OpenAI calls each kind of output in its refusal. */
const OUTPUT_NAMES: Readonly<Record<string, string>> = {
  function_call_output: "function call output",
  custom_tool_call_output: "custom tool call output",
  tool_search_output: "tool search output",
};

/**
 * An output whose `call_id` names no call before it (in the input, or in the history `previous_response_id` or
 * `conversation` brings): OpenAI's 400, in its words. Sent on, it was a `tool` message every chat provider refused
 * in its own words. `calledIds` undefined: not checked (a kept conversation's items, read back as they were kept). The
 * Conversations door refuses the same way (conversation-items.ts `refuseUnansweredOutputs`).
 */
export function refuseUnansweredOutput(
  calledIds: ReadonlySet<string> | undefined,
  callId: string,
  type: string,
  path: Path,
): void {
  if (calledIds === undefined || calledIds.has(callId)) return;
  throw new InvalidRequestError(
    `No tool call found for ${OUTPUT_NAMES[type] ?? "output"} with call_id ${callId.slice(0, 100)}.`,
    { param: formatPath([...path, "call_id"]), code: "invalid_value" },
  );
}

/** The ids of the tool calls in translated history, for the outputs of the input after it. */
export function calledIdsOf(messages: readonly ChatMessage[]): Set<string> {
  const ids = new Set<string>();
  for (const message of messages) {
    if (message.role === "assistant") for (const call of message.tool_calls ?? []) ids.add(call.id);
  }
  return ids;
}

/**
 * The messages less any `tool` message answering no call before it, the same array when there is none. The input's
 * own outputs were checked (refuseUnansweredOutput); such a message comes from history the gateway rebuilt shorter: a
 * turn kept on a conversation holds its own items and points to the conversation for the rest
 * (kept-conversation-history.ts), so once the conversation (or its call item) is deleted, the turn's output of that
 * conversation's call answers nothing. OpenAI's turn keeps its whole input and is continued; sent, the orphan is
 * refused by the chat door's rule (chat-message-rules.ts) in words about `messages` the client never sent.
 */
export function withoutOrphanOutputs(messages: ChatMessage[]): ChatMessage[] {
  const called = new Set<string>();
  let kept: ChatMessage[] | undefined;
  for (const [index, message] of messages.entries()) {
    if (message.role === "assistant") for (const call of message.tool_calls ?? []) called.add(call.id);
    const isOrphan = message.role === "tool" && !called.has(message.tool_call_id);
    if (isOrphan && kept === undefined) kept = messages.slice(0, index);
    else if (!isOrphan) kept?.push(message);
  }
  return kept ?? messages;
}
