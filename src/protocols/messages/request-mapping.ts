// Anthropic Messages request -> Chat Completions request body. What is translated, passed on, ignored and
// refused is listed in docs/protocols.md; this file (with output-config.ts, content-parts.ts for a user turn's blocks
// and ../long-tool-names.ts for tool names chat providers take) is the source of truth for it.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import {
  type ChatContentPart,
  type ChatMessage,
  type ChatRequestBody,
  type ChatTool,
  type ChatToolCall,
  type ChatToolChoice,
  joinedReasoning,
  withToolTurnReasoningOnly,
} from "../chat-completions.ts";
import { LongToolNames } from "../long-tool-names.ts";
import { toolResultText } from "../tool-result-text.ts";
import { formatPath, validateBody } from "../validate.ts";
import { clientToolFunction } from "./client-tools.ts";
import {
  ASSISTANT_BLOCKS,
  anthropicPath,
  anthropicProblemText,
  blockAt,
  check,
  invalidBlock,
  TEXT_BLOCKS,
  USER_BLOCKS,
  unsupported,
  unsupportedBlock,
} from "./content-blocks.ts";
import { toChatParts, toolResultContent } from "./content-parts.ts";
import { applyOutputConfig } from "./output-config.ts";
import {
  countTokensRequestSchema,
  customToolSchema,
  type MessagesRequest,
  messagesRequestSchema,
  NOT_SET,
  textBlockSchema,
  toolResultBlockSchema,
  toolUseBlockSchema,
} from "./request-schema.ts";
import { UPSTREAM_STOP_MAX } from "./stop-sequences.ts";
import { checkToolPairing } from "./tool-pairing.ts";
import { upstreamUser } from "./upstream-user.ts";

export interface TranslatedMessagesRequest {
  readonly chatBody: ChatRequestBody;
  readonly isStream: boolean;
  /** To tell `stop_sequence` from `end_turn` when the provider names the stop string it hit. */
  readonly stopSequences: readonly string[];
  /** `thinking` is `enabled` or `adaptive`: reasoning text the provider returns is shown as `thinking` blocks. */
  readonly isThinkingShown: boolean;
  /**
   * `thinking.display: "omitted"`: thinking blocks come with empty `thinking` text, as Anthropic sends them then (the
   * model still reasons; the client is told where, not what).
   */
  readonly isThinkingOmitted: boolean;
  /** `max_tokens: 0` (Anthropic's cache pre-warming): the answer is sent back without its content. */
  readonly isOutputDropped: boolean;
  /** The tools' names upstream (a name over chat's 64 characters is shortened) and back. */
  readonly toolNames: LongToolNames;
}

type Path = readonly PropertyKey[];

/** `count`: the body of `count_tokens`, where `max_tokens` is not required. */
export function toChatRequest(body: unknown, purpose: "create" | "count" = "create"): TranslatedMessagesRequest {
  const request = validateBody(
    purpose === "count" ? countTokensRequestSchema : messagesRequestSchema,
    body,
    anthropicProblemText,
  );
  refuseMcpServers(request.mcp_servers);
  const messages: ChatMessage[] = [];
  const toolNames = new LongToolNames();
  // The names that go as they came first: a renamed form never takes one of them (long-tool-names.ts).
  toolNames.claim(toolNamesOf(request));
  const system = systemText(request.system);
  if (system !== "") messages.push({ role: "system", content: system });
  for (const [index, message] of request.messages.entries()) {
    const path = ["messages", index, "content"];
    if (message.role === "assistant") pushAssistant(messages, assistantMessage(message.content, path, toolNames));
    else if (message.role === "system") messages.push({ role: "system", content: textOf(message.content, path) });
    else messages.push(...userMessages(message.content, path));
  }
  // After the blocks were checked one by one above: a malformed block is named as such, not as a pairing problem.
  checkToolPairing(request.messages);
  const isStream = request.stream === true;
  const chatBody: ChatRequestBody = { model: request.model, messages: withToolTurnReasoningOnly(messages) };
  // `max_tokens: 0` asks Anthropic to write its prompt cache and generate nothing. Chat providers refuse a limit of 0,
  // and cache a prompt they were sent (OpenAI, DeepSeek, Gemini do so on their own): one token is asked for, and
  // the answer is sent back without it.
  const isOutputDropped = request.max_tokens === 0;
  if (request.max_tokens !== undefined) chatBody.max_tokens = isOutputDropped ? 1 : request.max_tokens;
  if (request.models !== undefined) chatBody.models = request.models;
  const tools = (request.tools ?? []).map((tool, index) => toChatTool(tool, ["tools", index], toolNames));
  // Chat providers refuse a `tool_choice` without `tools`, so with none it is not sent: fine for `auto` and `none`.
  // `any` and `tool` demand a call, and without the choice the model would answer with text instead: refused.
  const choice = toChatToolChoice(request.tool_choice, tools, toolNames);
  if (tools.length > 0) {
    chatBody.tools = tools;
    if (choice !== undefined) chatBody.tool_choice = choice;
    if (request.tool_choice?.disable_parallel_tool_use === true) chatBody.parallel_tool_calls = false;
  }
  const stopSequences = request.stop_sequences ?? [];
  // Past the first few, stop sequences are matched by the gateway (stop-sequences.ts).
  if (stopSequences.length > 0) chatBody.stop = stopSequences.slice(0, UPSTREAM_STOP_MAX);
  if (request.temperature !== undefined) chatBody.temperature = request.temperature;
  if (request.top_p !== undefined && request.top_p !== NOT_SET) chatBody.top_p = request.top_p;
  // `top_k` is not part of Chat Completions and is dropped.
  applyOutputConfig(request, chatBody);
  if (typeof request.metadata?.user_id === "string" && request.metadata.user_id !== "") {
    chatBody.user = upstreamUser(request.metadata.user_id);
  }
  if (isStream) {
    chatBody.stream = true;
    // Usage is needed for `message_delta`; asking for it explicitly also keeps the usage chunk from being
    // stripped as one the gateway injected.
    chatBody.stream_options = { include_usage: true };
  }
  const isThinkingShown = request.thinking?.type === "enabled" || request.thinking?.type === "adaptive";
  const isThinkingOmitted = isThinkingShown && request.thinking?.display === "omitted";
  return { chatBody, isStream, stopSequences, isThinkingShown, isThinkingOmitted, isOutputDropped, toolNames };
}

/**
 * Anthropic's MCP connector: Anthropic's side calls the servers' tools for the model, which no chat provider does.
 * Left out (as it was until 2026-12-08), the model answered without the tools the client gave it, as if it had none.
 */
function refuseMcpServers(servers: readonly unknown[] | null | undefined): void {
  if (servers === undefined || servers === null || servers.length === 0) return;
  throw unsupported(
    "`mcp_servers` (Anthropic's MCP connector) is not supported: chat providers cannot call an MCP server's tools. Connect the server in the client and send its tools as custom tools with `input_schema`, as Claude Code does.",
    ["mcp_servers"],
  );
}

function systemText(system: MessagesRequest["system"]): string {
  return system === undefined ? "" : textOf(system, ["system"], withoutBillingHeader);
}

/**
 * Claude Code (2.1.197) starts `system` with a text block `x-anthropic-billing-header: cc_version=2.1.197.47b;
 * cc_entrypoint=sdk-cli;`: attribution that Anthropic's API reads, not words for the model. Its last part changes
 * from one conversation to the next (`.123`, `.47b`, `.2f7` seen), and as the first words of the prompt it made the
 * tens of thousands of tokens of system prompt and tools that follow a new prefix for the provider's prompt cache
 * in each conversation. It reaches no provider.
 */
const BILLING_HEADER_PREFIX = "x-anthropic-billing-header:";

/**
 * A text block less its billing header line. Only that line: a client or proxy that joins `system`'s blocks into one
 * puts it before the whole system prompt, which dropping the block dropped with it.
 */
function withoutBillingHeader(text: string): string {
  if (!text.startsWith(BILLING_HEADER_PREFIX)) return text;
  const lineEnd = text.indexOf("\n");
  return lineEnd < 0 ? "" : text.slice(lineEnd + 1);
}

/**
 * Text-only content (the `system` field, a `system` turn): a string, or text blocks joined by line breaks, each as
 * `keptText` keeps it (a block it empties is left out; checked first, so a bad block is named at its own position).
 */
function textOf(
  content: string | readonly unknown[],
  path: Path,
  keptText: (text: string) => string = (text) => text,
): string {
  if (typeof content === "string") return keptText(content);
  const texts: string[] = [];
  for (const [index, value] of content.entries()) {
    const blockPath = [...path, index];
    const block = blockAt(value, blockPath, TEXT_BLOCKS);
    // Anthropic refuses these too (its wording): invalid, not a gap of the gateway's.
    if (block.type !== "text") {
      throw invalidBlock(
        `${anthropicPath(blockPath)}: Input tag '${block.type.slice(0, 64)}' found using 'type' does not match any of the expected tags: 'text'`,
        [...blockPath, "type"],
      );
    }
    const text = check(textBlockSchema, block, blockPath);
    const kept = keptText(text.text);
    if (kept !== "" || text.text === "") texts.push(kept);
  }
  return texts.join("\n");
}

function assistantMessage(
  content: string | readonly unknown[],
  path: Path,
  toolNames: LongToolNames,
): Extract<ChatMessage, { role: "assistant" }> {
  if (typeof content === "string") return { role: "assistant", content };
  let text = "";
  const reasonings: string[] = [];
  const toolCalls: ChatToolCall[] = [];
  for (const [index, value] of content.entries()) {
    const blockPath = [...path, index];
    const block = blockAt(value, blockPath, ASSISTANT_BLOCKS);
    switch (block.type) {
      case "text":
        text += check(textBlockSchema, block, blockPath).text;
        break;
      case "tool_use": {
        const use = check(toolUseBlockSchema, block, blockPath);
        toolCalls.push({
          id: use.id,
          type: "function",
          function: { name: toolNames.upstream(use.name), arguments: JSON.stringify(use.input ?? {}) },
        });
        break;
      }
      case "thinking": {
        // Goes back as `reasoning_content` (chat-completions.ts says who needs it). Read leniently, as when thinking
        // was dropped: a block without its text is no reason to refuse the turn.
        const { thinking } = block as { thinking?: unknown };
        if (typeof thinking === "string" && thinking !== "") reasonings.push(thinking);
        break;
      }
      case "redacted_thinking":
        // Anthropic's encrypted reasoning: no chat provider can read it.
        break;
      default:
        throw unsupportedBlock(block, blockPath, ASSISTANT_BLOCKS, "Assistant content blocks");
    }
  }
  const reasoning = reasonings.length === 0 ? {} : { reasoning_content: reasonings.join("\n") };
  if (toolCalls.length === 0) return { role: "assistant", content: text, ...reasoning };
  return { role: "assistant", content: text === "" ? null : text, tool_calls: toolCalls, ...reasoning };
}

/**
 * Anthropic combines consecutive turns of one role into one turn, so `[assistant: tool_use A] [assistant: tool_use
 * B] [user: both results]` is a valid request. Sent as two assistant messages, call A would not be followed by its
 * `tool` message, which chat providers refuse (OpenAI: "An assistant message with 'tool_calls' must be followed by
 * tool messages..."): consecutive assistant turns become one message, text joined as within a turn.
 */
function pushAssistant(messages: ChatMessage[], message: Extract<ChatMessage, { role: "assistant" }>): void {
  const last = messages.at(-1);
  if (last?.role !== "assistant") {
    messages.push(message);
    return;
  }
  const text = (last.content ?? "") + (message.content ?? "");
  const toolCalls = [...(last.tool_calls ?? []), ...(message.tool_calls ?? [])];
  last.content = text === "" && toolCalls.length > 0 ? null : text;
  if (toolCalls.length > 0) last.tool_calls = toolCalls;
  const reasoning = joinedReasoning(last.reasoning_content, message.reasoning_content);
  if (reasoning !== undefined) last.reasoning_content = reasoning;
}

/** A user turn's blocks that leave no chat content and are not refused themselves (content-parts.ts toChatParts). */
const THINKING_ONLY =
  "holds only `thinking` or `redacted_thinking` blocks, which belong to assistant turns and are dropped from a user turn";

function isThinkingBlock(value: unknown): boolean {
  return isRecord(value) && (value.type === "thinking" || value.type === "redacted_thinking");
}

/**
 * One Anthropic user turn -> chat messages: its `tool_result` blocks become `tool` messages (they must follow
 * the assistant's calls directly), then the rest is one user message. Images inside a tool result cannot go in a
 * `tool` message, so they open that user message (a result of only images or documents says so:
 * tool-result-text.ts).
 */
function userMessages(content: string | readonly unknown[], path: Path): ChatMessage[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const toolMessages: ChatMessage[] = [];
  const resultImages: ChatContentPart[] = [];
  const parts: ChatContentPart[] = [];
  for (const [index, value] of content.entries()) {
    const blockPath = [...path, index];
    const block = blockAt(value, blockPath, USER_BLOCKS);
    if (block.type === "tool_result") {
      const result = check(toolResultBlockSchema, block, blockPath);
      const content = toolResultContent(result.content, [...blockPath, "content"]);
      const text = toolResultText(content.text, content.images);
      // Chat has no error flag on tool results; the model reads it from the text.
      toolMessages.push({
        role: "tool",
        tool_call_id: result.tool_use_id,
        content: result.is_error === true ? `Error: ${text}` : text,
      });
      resultImages.push(...content.images);
    } else {
      parts.push(...toChatParts(block, blockPath, USER_BLOCKS));
    }
  }
  const userParts = [...resultImages, ...parts];
  if (userParts.length === 0) {
    // Left empty, the chat body would have no message for this turn (or none at all, refused as "`messages` must
    // not be empty"); Anthropic refuses an empty user turn too.
    if (toolMessages.length === 0) {
      // A turn of thinking blocks is not empty as sent: said so, or the client looks for a missing block in vain.
      const what = content.length > 0 && content.every(isThinkingBlock) ? THINKING_ONLY : "must not be empty";
      throw new InvalidRequestError(
        `\`${formatPath(path)}\` ${what}: a user turn needs at least one text, image, document, search_result or tool_result block.`,
        { param: formatPath(path), code: "invalid_value" },
      );
    }
    return toolMessages;
  }
  const isTextOnly = userParts.every((part) => part.type === "text");
  // Plain text goes as a string: some chat providers accept content arrays only with images.
  const user: ChatMessage = isTextOnly
    ? { role: "user", content: userParts.map((part) => (part.type === "text" ? part.text : "")).join("\n") }
    : { role: "user", content: userParts };
  return [...toolMessages, user];
}

function toChatTool(
  tool: { name: string; type?: string | null | undefined },
  path: Path,
  toolNames: LongToolNames,
): ChatTool {
  const client = typeof tool.type === "string" ? clientToolFunction(tool.type) : undefined;
  if (client !== undefined) {
    const { description, parameters } = client;
    return { type: "function", function: { name: toolNames.upstream(tool.name), description, parameters } };
  }
  if (tool.type !== undefined && tool.type !== null && tool.type !== "custom") {
    throw unsupported(
      `Tools of type \`${tool.type.slice(0, 64)}\` are not supported: Anthropic runs them on its side, which no chat provider does (the gateway takes the client tools \`bash_*\` and \`text_editor_*\`). Leave it out, or define a tool you run as a custom tool with \`input_schema\`.`,
      [...path, "type"],
    );
  }
  const parsed = check(customToolSchema, tool, path);
  const chatTool: ChatTool = {
    type: "function",
    function: { name: toolNames.upstream(parsed.name), parameters: parsed.input_schema },
  };
  if (parsed.description !== undefined) chatTool.function.description = parsed.description;
  // `strict: false` is the chat default; sending it only when true keeps the body valid for strict providers.
  if (parsed.strict === true) chatTool.function.strict = true;
  return chatTool;
}

function toChatToolChoice(
  choice: MessagesRequest["tool_choice"],
  tools: readonly ChatTool[],
  toolNames: LongToolNames,
): ChatToolChoice | undefined {
  if (choice === undefined) return undefined;
  switch (choice.type) {
    case "auto":
      return "auto";
    case "any":
      if (tools.length === 0) throw noToolToCall("any");
      return "required";
    case "none":
      return "none";
    case "tool": {
      if (tools.length === 0) throw noToolToCall("tool");
      if (choice.name === undefined) {
        throw new InvalidRequestError("`tool_choice.name` is required when `tool_choice.type` is `tool`.", {
          param: "tool_choice.name",
          code: "invalid_value",
        });
      }
      // A chat provider may refuse a choice naming no tool it was given, or ignore it and answer without the call.
      const chosen = toolNames.upstream(choice.name);
      if (!tools.some((tool) => tool.function.name === chosen)) {
        throw new InvalidRequestError(`\`tool_choice\` names the tool \`${choice.name}\`, which is not in \`tools\`.`, {
          param: "tool_choice",
          code: "invalid_value",
        });
      }
      return { type: "function", function: { name: chosen } };
    }
  }
}

function noToolToCall(type: "any" | "tool"): InvalidRequestError {
  return new InvalidRequestError(
    `\`tool_choice\` of type \`${type}\` requires a tool call, but there is no tool to call: \`tools\` is empty or missing.`,
    { param: "tool_choice", code: "invalid_value" },
  );
}

/** Every name the request gives a tool or a `tool_use` block of its history (for `LongToolNames.claim`). */
function toolNamesOf(request: {
  readonly tools?: readonly unknown[] | undefined;
  readonly messages: readonly unknown[];
}): unknown[] {
  const found: unknown[] = (request.tools ?? []).map((tool) => (isRecord(tool) ? tool.name : undefined));
  for (const message of request.messages) {
    if (!isRecord(message) || !Array.isArray(message.content)) continue;
    for (const block of message.content) if (isRecord(block) && block.type === "tool_use") found.push(block.name);
  }
  return found;
}
