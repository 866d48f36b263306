// A Chat Completions answer -> the Anthropic `message` object.
import { estimatedUsageMark, readChatCompletion } from "../chat-completions.ts";
import type { IdSource } from "../ids.ts";
import type { LongToolNames } from "../long-tool-names.ts";
import {
  type ContentBlock,
  type MessageObject,
  parseToolInput,
  textBlock,
  toMessageUsage,
  toStopReason,
} from "./message-object.ts";
import { cutAtStopSequence, UPSTREAM_STOP_MAX } from "./stop-sequences.ts";

export interface MessageContext {
  readonly ids: IdSource;
  readonly stopSequences: readonly string[];
  /** The request enabled `thinking`: reasoning text becomes a `thinking` block (as Anthropic sends none otherwise). */
  readonly isThinkingShown?: boolean;
  /** `thinking.display: "omitted"`: a thinking block without its text (request-mapping.ts). */
  readonly isThinkingOmitted?: boolean;
  /** The model the gateway sent the request to; used when the upstream's answer names none. */
  readonly fallbackModel?: string;
  /**
   * The gateway's estimate of the prompt, for `input_tokens` when the upstream reports no usage (as the stream
   * translator does); a function because most answers carry usage and need no estimate.
   */
  readonly estimatePromptTokens?: () => number;
  /** The request's tool names: a call comes back named as the client named the tool. */
  readonly toolNames?: LongToolNames;
  /** `max_tokens: 0`: the token the provider was asked for is not shown (request-mapping.ts). */
  readonly isOutputDropped?: boolean;
}

export function toMessageObject(chatCompletion: unknown, context: MessageContext): MessageObject {
  const answer = readChatCompletion(chatCompletion);
  // Stop sequences beyond those sent upstream (stop-sequences.ts): the text ends at the first, and so does the answer.
  const stop =
    context.stopSequences.length > UPSTREAM_STOP_MAX
      ? cutAtStopSequence(answer.text, context.stopSequences)
      : { text: answer.text, matched: undefined };
  const isStopped = stop.matched !== undefined;
  const content: ContentBlock[] = [];
  if (context.isThinkingShown === true && answer.reasoning !== "") {
    const thinking = context.isThinkingOmitted === true ? "" : answer.reasoning;
    content.push({ type: "thinking", thinking, signature: "" });
  }
  if (stop.text !== "") content.push(textBlock(stop.text));
  // A model's own refusal (chat's `message.refusal`) is what Anthropic sends as ordinary text: its own block after
  // any text, so an answer carrying both loses neither (and a client can tell them apart).
  if (answer.refusal !== undefined && answer.refusal !== "" && !isStopped) content.push(textBlock(answer.refusal));
  for (const call of isStopped ? [] : answer.toolCalls) {
    content.push({
      type: "tool_use",
      id: call.id,
      name: context.toolNames?.client(call.function.name) ?? call.function.name,
      input: parseToolInput(call.function.arguments),
      caller: { type: "direct" },
    });
  }
  const isOutputDropped = context.isOutputDropped === true;
  // `max_tokens: 0` ends at its limit, however the one token the provider generated ended.
  const { stopReason, stopSequence, stopDetails } = toStopReason(
    isOutputDropped ? "length" : isStopped ? "stop" : answer.finishReason,
    stop.matched ?? answer.matchedStop,
    context.stopSequences,
    answer.toolCalls.length > 0 && !isStopped,
  );
  return {
    id: context.ids("msg_"),
    type: "message",
    role: "assistant",
    model: answer.model !== "" ? answer.model : (context.fallbackModel ?? ""),
    content: isOutputDropped ? [] : content,
    stop_reason: stopReason,
    stop_sequence: stopSequence,
    stop_details: stopDetails,
    container: null,
    diagnostics: null,
    usage: toMessageUsage(answer.usage, answer.usage === undefined ? context.estimatePromptTokens?.() : undefined),
    ...estimatedUsageMark(answer.usage),
  };
}
