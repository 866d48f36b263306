// The Anthropic `message` object as the gateway returns it, and how chat's finish reasons and usage map onto it.
import { parseJsonRecord } from "../../is-record.ts";
import type { ChatUsage, EstimatedUsageMark } from "../chat-completions.ts";
import { JsonObjectPrefix } from "./json-object-prefix.ts";

export type ContentBlock =
  /** Reasoning text a chat provider returned; `signature` is empty (there is none to verify, and it never goes back upstream). */
  | { type: "thinking"; thinking: string; signature: string }
  /** `citations` null: a chat answer cites nothing (Anthropic sends null on a block without citations). */
  | { type: "text"; text: string; citations: null }
  /** `caller` direct: the model called the tool itself (Anthropic's for any call not made from its code tool). */
  | { type: "tool_use"; id: string; name: string; input: unknown; caller: DirectCaller };

export interface DirectCaller {
  type: "direct";
}

/** A text block as Anthropic sends it. */
export function textBlock(text: string): ContentBlock {
  return { type: "text", text, citations: null };
}

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";

/**
 * Anthropic's detail of a `refusal` stop. A chat provider's `content_filter` names no policy category and gives no
 * explanation, so both are null (as Anthropic's are when a refusal maps to no named category).
 */
export interface RefusalStopDetails {
  type: "refusal";
  category: null;
  explanation: null;
}

// The fields below that are always null are ones Anthropic's API sends null when they do not apply (no container
// tool, no `diagnostics` asked for, no server tools, ...) and that the SDK's types require: a client checking
// `=== null` (or a middleware reading `stop_details`) must find null, not a missing field.

/** The usage of `message_delta`: Anthropic's cumulative counts at the end of the stream. */
export interface MessageDeltaUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  /** The reasoning tokens the provider counted within `output_tokens`; null when it said none. */
  output_tokens_details: { thinking_tokens: number } | null;
  server_tool_use: null;
}

export interface MessageUsage extends MessageDeltaUsage {
  /** The split of cache writes by TTL: chat providers report none. */
  cache_creation: null;
  inference_geo: null;
  service_tier: null;
  speed: null;
}

export interface MessageObject {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  stop_details: RefusalStopDetails | null;
  container: null;
  diagnostics: null;
  usage: MessageUsage;
  /** Only when `usage` is the gateway's estimate: the upstream reported none (docs/protocols.md "Estimated usage"). */
  x_gateway?: EstimatedUsageMark;
}

export interface StopFields {
  stopReason: StopReason;
  stopSequence: string | null;
  stopDetails: RefusalStopDetails | null;
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
): StopFields {
  const plain = (stopReason: StopReason): StopFields => ({ stopReason, stopSequence: null, stopDetails: null });
  switch (finishReason) {
    case "length":
      return plain("max_tokens");
    case "tool_calls":
    case "function_call":
      // Some providers say `tool_calls` for an answer with text only; `tool_use` would send the client looking for
      // a tool_use block to run that is not there.
      return plain(hasToolCalls ? "tool_use" : "end_turn");
    case "content_filter":
      // A filter cut the answer, as Anthropic's streaming classifiers do. (A model's own refusal, chat's
      // `message.refusal` with `stop`, is not one: Anthropic gives those as ordinary text ending `end_turn`.)
      return {
        stopReason: "refusal",
        stopSequence: null,
        stopDetails: { type: "refusal", category: null, explanation: null },
      };
    default:
      if (hasToolCalls) return plain("tool_use");
      if (matchedStop !== undefined && stopSequences.includes(matchedStop)) {
        return { stopReason: "stop_sequence", stopSequence: matchedStop, stopDetails: null };
      }
      return plain("end_turn");
  }
}

/** A message's usage: `message_delta`'s counts and the fields no chat provider reports. */
export function toMessageUsage(usage: ChatUsage | undefined, promptTokensEstimate = 0): MessageUsage {
  return {
    ...toMessageDeltaUsage(usage, promptTokensEstimate),
    cache_creation: null,
    inference_geo: null,
    service_tier: null,
    speed: null,
  };
}

/**
 * Anthropic counts cache reads and cache writes apart from `input_tokens`; chat's `prompt_tokens` includes both.
 */
export function toMessageDeltaUsage(usage: ChatUsage | undefined, promptTokensEstimate = 0): MessageDeltaUsage {
  if (usage === undefined) {
    return {
      input_tokens: promptTokensEstimate,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens_details: null,
      server_tool_use: null,
    };
  }
  return {
    input_tokens: Math.max(0, usage.promptTokens - usage.cachedTokens - usage.cacheWriteTokens),
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: usage.cacheWriteTokens,
    cache_read_input_tokens: usage.cachedTokens,
    // 0 is what a provider that counts no reasoning tokens reads as too: said only when there are some.
    output_tokens_details:
      usage.reasoningTokens > 0 ? { thinking_tokens: Math.min(usage.reasoningTokens, usage.completionTokens) } : null,
    server_tool_use: null,
  };
}

/**
 * Tool arguments are a JSON string in chat and an object in Anthropic. Arguments JSON.parse refuses are read as a
 * stream sends them and the SDK's MessageStream reads what it was sent (json-object-prefix.ts: as far as they are
 * one object, a raw line break in a string escaped, what is cut off left out and the rest closed): a brace too many,
 * a trailing comma, arguments cut off by the output limit; `{}` when no object begins.
 */
export function parseToolInput(argumentsText: string): unknown {
  if (argumentsText.trim() === "") return {};
  const parsed = parseJsonRecord(argumentsText);
  if (parsed !== undefined) return parsed;
  const prefix = new JsonObjectPrefix();
  return parseJsonRecord(prefix.wholePrefix(prefix.accept(argumentsText))) ?? {};
}
