// A Chat Completions answer -> the Responses API `response` object.
import { argumentsOrEmptyObject, type ChatMessage, joinedReasoning, readChatCompletion } from "../chat-completions.ts";
import type { IdSource } from "../ids.ts";
import { inputAsArguments, inputOfArguments } from "./custom-tools.ts";
import { gatewayEncryptedContent, reasoningText } from "./reasoning-text.ts";
import {
  buildResponse,
  finishToStatus,
  type OutputItem,
  type OutputMessageItem,
  type ResponseEcho,
  type ResponseObject,
} from "./response-object.ts";
import { namedAs, ToolNames } from "./tool-names.ts";
import { searchArgumentsAsText, searchArgumentsOf, TOOL_SEARCH_FUNCTION } from "./tool-search.ts";

export interface ResponseContext {
  readonly echo: ResponseEcho;
  readonly ids: IdSource;
  /** Unix seconds. */
  readonly createdAtSeconds: number;
  /** The model the gateway sent the request to; used when the upstream's answer names none. */
  readonly fallbackModel?: string;
  /** The request included `reasoning.encrypted_content`: a reasoning item carries the gateway's (reasoning-text.ts). */
  readonly includesEncryptedReasoning?: boolean;
}

export function toResponseObject(chatCompletion: unknown, context: ResponseContext): ResponseObject {
  const answer = readChatCompletion(chatCompletion);
  const output: OutputItem[] = [];
  if (answer.reasoning !== "") {
    output.push({
      id: context.ids("rs_"),
      type: "reasoning",
      status: "completed",
      summary: [{ type: "summary_text", text: answer.reasoning }],
      ...(context.includesEncryptedReasoning === true
        ? { encrypted_content: gatewayEncryptedContent(answer.reasoning) }
        : {}),
    });
  }
  if (answer.text !== "" || answer.refusal !== undefined) {
    const message: OutputMessageItem = {
      id: context.ids("msg_"),
      type: "message",
      status: "completed",
      role: "assistant",
      content: [],
    };
    if (answer.text !== "")
      message.content.push({ type: "output_text", text: answer.text, annotations: [], logprobs: answer.logprobs });
    if (answer.refusal !== undefined) message.content.push({ type: "refusal", refusal: answer.refusal });
    output.push(message);
  }
  const names = ToolNames.of(context.echo.tools);
  for (const call of answer.toolCalls) {
    const client = names.clientName(call.function.name);
    if (client.type === "tool_search") {
      output.push({
        id: context.ids("tsc_"),
        type: "tool_search_call",
        status: "completed",
        call_id: call.id,
        execution: "client",
        arguments: searchArgumentsOf(call.function.arguments),
      });
      continue;
    }
    if (client.type === "custom") {
      output.push({
        id: context.ids("ctc_"),
        type: "custom_tool_call",
        status: "completed",
        call_id: call.id,
        ...namedAs(client),
        input: inputOfArguments(call.function.arguments),
      });
      continue;
    }
    output.push({
      id: context.ids("fc_"),
      type: "function_call",
      status: "completed",
      call_id: call.id,
      ...namedAs(client),
      arguments: argumentsOrEmptyObject(call.function.arguments),
    });
  }
  const { status, incompleteReason } = finishToStatus(answer.finishReason);
  if (status === "incomplete") for (const item of output) item.status = "incomplete";
  return buildResponse(context.echo, {
    id: context.ids("resp_"),
    createdAtSeconds: context.createdAtSeconds,
    status,
    model: answer.model !== "" ? answer.model : (context.fallbackModel ?? ""),
    output,
    usage: answer.usage,
    incompleteReason,
  });
}

/**
 * A response's output as the chat messages a later turn sends back (for `previous_response_id`), its calls named
 * as upstream (`names`: the request's tools), with its reasoning when it called tools.
 */
export function outputToChatMessages(output: readonly OutputItem[], names: ToolNames): ChatMessage[] {
  let text = "";
  let reasoning: string | undefined;
  const toolCalls: NonNullable<Extract<ChatMessage, { role: "assistant" }>["tool_calls"]> = [];
  for (const item of output) {
    if (item.type === "function_call") {
      const call = { name: names.upstreamName(item.name, item.namespace), arguments: item.arguments };
      toolCalls.push({ id: item.call_id, type: "function", function: call });
      continue;
    }
    if (item.type === "custom_tool_call") {
      const call = { name: names.upstreamName(item.name, item.namespace), arguments: inputAsArguments(item.input) };
      toolCalls.push({ id: item.call_id, type: "function", function: call });
      continue;
    }
    if (item.type === "tool_search_call") {
      const call = { name: TOOL_SEARCH_FUNCTION, arguments: searchArgumentsAsText(item.arguments) };
      toolCalls.push({ id: item.call_id, type: "function", function: call });
      continue;
    }
    if (item.type === "reasoning") {
      reasoning = joinedReasoning(reasoning, reasoningText(item));
      continue;
    }
    // A native provider's answer may hold other item types too.
    if (item.type !== "message" || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (part.type === "output_text") text += part.text;
      else if (part.type === "refusal") text += part.refusal;
    }
  }
  if (text === "" && toolCalls.length === 0) return [];
  if (toolCalls.length === 0) return [{ role: "assistant", content: text }];
  // Only a turn that called tools keeps its reasoning: DeepSeek's thinking mode refuses such a turn without it in
  // later requests and ignores it after an answer without tools, which so costs no prompt tokens.
  return [
    {
      role: "assistant",
      content: text === "" ? null : text,
      tool_calls: toolCalls,
      ...(reasoning === undefined ? {} : { reasoning_content: reasoning }),
    },
  ];
}
