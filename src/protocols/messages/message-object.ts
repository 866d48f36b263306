// The Anthropic `message` object as the gateway returns it, and how chat's finish reasons and usage map onto it.
import { isRecord } from "../../is-record.ts";
import type { ChatUsage } from "../chat-completions.ts";

export type ContentBlock =
  /** Reasoning text a chat provider returned; `signature` is empty (there is none to verify, and it never goes back upstream). */
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";

export interface MessageUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface MessageObject {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: MessageUsage;
}

/**
 * `stop` is `stop_sequence` only when the provider names the stop string it hit (vLLM-style `stop_reason`) and it
 * is one the client asked for; otherwise `end_turn`. A `stop` with tool calls is `tool_use` (some providers say
 * `stop` there), a `tool_calls` without any is `end_turn`.
 */
export function toStopReason(
  finishReason: string | undefined,
  matchedStop: string | undefined,
  stopSequences: readonly string[],
  hasToolCalls: boolean,
): { stopReason: StopReason; stopSequence: string | null } {
  switch (finishReason) {
    case "length":
      return { stopReason: "max_tokens", stopSequence: null };
    case "tool_calls":
    case "function_call":
      // Some providers say `tool_calls` for an answer with text only; `tool_use` would send the client looking for
      // a tool_use block to run that is not there.
      return { stopReason: hasToolCalls ? "tool_use" : "end_turn", stopSequence: null };
    case "content_filter":
      return { stopReason: "refusal", stopSequence: null };
    default:
      if (hasToolCalls) return { stopReason: "tool_use", stopSequence: null };
      if (matchedStop !== undefined && stopSequences.includes(matchedStop)) {
        return { stopReason: "stop_sequence", stopSequence: matchedStop };
      }
      return { stopReason: "end_turn", stopSequence: null };
  }
}

/**
 * Anthropic counts cache reads and cache writes apart from `input_tokens`; chat's `prompt_tokens` includes both.
 */
export function toMessageUsage(usage: ChatUsage | undefined, promptTokensEstimate = 0): MessageUsage {
  if (usage === undefined) {
    return {
      input_tokens: promptTokensEstimate,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
  }
  return {
    input_tokens: Math.max(0, usage.promptTokens - usage.cachedTokens - usage.cacheWriteTokens),
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: usage.cacheWriteTokens,
    cache_read_input_tokens: usage.cachedTokens,
  };
}

/** Tool arguments are a JSON string in chat and an object in Anthropic; unparsable arguments become `{}`. */
export function parseToolInput(argumentsText: string): unknown {
  if (argumentsText.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(argumentsText);
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
}
