// What the gateway needs to know about one upstream stream event: a Chat Completions chunk (`inspectEvent`) or a
// Responses API event from a provider called natively (`inspectResponsesEvent`). One JSON.parse per event;
// everything else is property reads.
import { firstChunkChoice } from "../chat-choice.ts";
import { reasoningOf } from "../chat-reasoning.ts";
import { parseJsonRecord } from "../is-record.ts";
import type { SseEvent } from "./sse-parser.ts";

export interface StreamEventInfo {
  readonly isDone: boolean;
  /** Parsed payload; undefined for `[DONE]` and for malformed (non-JSON) data. */
  readonly json: Record<string, unknown> | undefined;
  readonly isMalformed: boolean;
  /** Carries generated output (text, reasoning, a refusal, tool calls) or a finish reason. */
  readonly hasContent: boolean;
  /** A choice carries a tool call (a non-empty `tool_calls`, or a `function_call` object). */
  readonly hasToolCall: boolean;
  /** A choice carries reasoning (`reasoning_content` / `reasoning`). */
  readonly hasReasoning: boolean;
  /** A choice carries refusal text. */
  readonly hasRefusal: boolean;
  /**
   * An in-band error object (`{"error": ...}` without `choices`, or beside choices that add nothing), as some
   * providers send mid-stream, a chunk whose only news is `finish_reason: "error"`, or any event named
   * `event: error` (its `json` is then `{"error": <its data>}` unless the data already has that shape).
   */
  readonly isError: boolean;
  readonly finishReason: string | undefined;
  /** Text this event adds to the first choice (chat `delta.content` or completions `text`). */
  readonly text: string;
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;
  /**
   * The last event of a whole answer, itself for the client (Responses' `response.completed`): after it the segment
   * is a success. Chat streams have none (their end is `[DONE]`, or a close after every choice finished).
   */
  readonly isFinal: boolean;
  /**
   * Why the event makes the stream no answer the door can give and keep (a native Responses stream's malformed or
   * out-of-order event: responses-stream-check.ts): a `bad_response`, failed over before the first byte.
   */
  readonly fault?: string;
}

/** How the relay reads one event of a stream's dialect. */
export type EventInspector = (event: SseEvent) => StreamEventInfo;

const DONE: StreamEventInfo = {
  isDone: true,
  json: undefined,
  isMalformed: false,
  hasContent: false,
  hasToolCall: false,
  hasReasoning: false,
  hasRefusal: false,
  isError: false,
  finishReason: undefined,
  text: "",
  usage: undefined,
  isFinal: false,
};

const MALFORMED: StreamEventInfo = { ...DONE, isDone: false, isMalformed: true };

export function inspectEvent(event: SseEvent): StreamEventInfo {
  const data = event.data;
  if (data === "[DONE]") return DONE;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return event.event === "error" ? namedErrorEvent({ message: data }) : MALFORMED;
  }
  if (event.event === "error") return namedErrorEvent(parsed);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return MALFORMED;
  const json = parsed as Record<string, unknown>;
  const hasErrorObject = json.error !== undefined && json.error !== null;
  let hasContent = false;
  let hasToolCall = false;
  let hasReasoning = false;
  let hasRefusal = false;
  let finishReason: string | undefined;
  let text = "";
  const choices = json.choices;
  // The first choice is the one at `index` 0, wherever it sits: with n > 1 a provider may send one choice per chunk,
  // and position 0 then held the second choice's text too (the delivered text interleaved both).
  const first = firstChunkChoice(choices);
  if (Array.isArray(choices)) {
    for (const choice of choices as unknown[]) {
      if (choice === null || typeof choice !== "object") continue;
      const {
        delta,
        text: completionText,
        finish_reason: reason,
      } = choice as {
        delta?: Record<string, unknown>;
        text?: unknown;
        finish_reason?: unknown;
      };
      if (typeof reason === "string") {
        finishReason = reason;
        hasContent = true;
      }
      if (typeof completionText === "string" && completionText !== "") {
        hasContent = true;
        if (choice === first) text = completionText;
      }
      if (delta !== undefined && delta !== null) {
        const content = delta.content;
        if (typeof content === "string" && content !== "") {
          hasContent = true;
          if (choice === first) text = content;
        }
        if (isToolCallDelta(delta)) hasToolCall = true;
        if (reasoningOf(delta) !== "") hasReasoning = true;
        if (typeof delta.refusal === "string" && delta.refusal !== "") hasRefusal = true;
      }
    }
  }
  const usageValue = json.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined | null;
  const usage =
    usageValue !== undefined && usageValue !== null && typeof usageValue === "object"
      ? {
          promptTokens: tokenCount(usageValue.prompt_tokens) ?? 0,
          completionTokens: tokenCount(usageValue.completion_tokens) ?? 0,
        }
      : undefined;
  // An error object without choices, or a chunk that fails the answer in place: an error object beside choices, or
  // `finish_reason: "error"` (OpenRouter's documented mid-stream failure, after which its stream ends as if whole),
  // when the chunk adds nothing of the answer. Read as content, it ended the answer half-written as a success.
  const isError =
    (hasErrorObject || finishReason === "error") &&
    (!Array.isArray(choices) || (text === "" && !hasToolCall && !hasReasoning && !hasRefusal));
  return {
    isDone: false,
    json,
    isMalformed: false,
    hasContent: hasContent || hasToolCall || hasReasoning || hasRefusal,
    hasToolCall,
    hasReasoning,
    hasRefusal,
    isError,
    finishReason,
    text,
    usage,
    isFinal: false,
  };
}

/**
 * An event named `error` (`event: error`, as Anthropic-style and some OpenAI-compatible servers send) is an error
 * event whatever its data: `{"error": {...}}` as it is, any other payload as the error itself (`{"message": ...}`,
 * or the text when it is not JSON). Read as a chunk, `{"message": "boom"}` was no content and no error, so it was
 * skipped and the `[DONE]` after it ended an empty answer.
 */
function namedErrorEvent(parsed: unknown): StreamEventInfo {
  const isEnvelope = parsed !== null && typeof parsed === "object" && "error" in parsed;
  const json = isEnvelope ? (parsed as Record<string, unknown>) : { error: parsed };
  return { ...DONE, isDone: false, json, isError: true };
}

/**
 * Whether a chat delta carries a tool call. Some upstreams (LiteLLM-style proxies among them) put
 * `"tool_calls": null, "function_call": null` or `"tool_calls": []` on every text chunk: those are no call, and
 * taking them for one made a role-only chunk commit the stream and a text stream lose its continuation.
 */
function isToolCallDelta(delta: Record<string, unknown>): boolean {
  const calls = delta.tool_calls;
  if (Array.isArray(calls) ? calls.length > 0 : calls !== undefined && calls !== null) return true;
  const call = delta.function_call;
  return call !== undefined && call !== null;
}

/** Events that open a Responses stream before any output. */
const RESPONSES_PREAMBLE = new Set(["response.created", "response.in_progress", "response.queued"]);

/**
 * A Responses API stream event (`{"type": "response.output_text.delta", ...}`). Its end is `response.completed` or
 * `response.incomplete` (final, for the client); `error` and `response.failed` are error events; every other event
 * after the preamble is content. Usage comes with the final event's `response.usage` (input/output tokens), or with
 * `response.failed`'s.
 */
export function inspectResponsesEvent(event: SseEvent): StreamEventInfo {
  if (event.data === "[DONE]") return DONE;
  const json = parseJsonRecord(event.data);
  if (json === undefined) return MALFORMED;
  const type = typeof json.type === "string" ? json.type : "";
  const isError = type === "error" || type === "response.failed";
  const isFinal = type === "response.completed" || type === "response.incomplete";
  const response = json.response as { usage?: { input_tokens?: unknown; output_tokens?: unknown } | null } | undefined;
  // `response.failed` carries its Response, usage included: what the failed response used (read at the in-band end,
  // relay-segment.ts; until 2026-12-07 dropped, and the segment charged its estimate and reservation instead).
  const usageValue = isFinal || type === "response.failed" ? response?.usage : undefined;
  return {
    isDone: false,
    json,
    isMalformed: false,
    hasContent: !isError && type !== "" && !RESPONSES_PREAMBLE.has(type),
    // A native Responses stream is never continued (continuations speak chat), so these are not read for it.
    hasToolCall: false,
    hasReasoning: false,
    hasRefusal: false,
    isError,
    finishReason: type === "response.completed" ? "stop" : type === "response.incomplete" ? "length" : undefined,
    text: type === "response.output_text.delta" && typeof json.delta === "string" ? json.delta : "",
    usage:
      usageValue === undefined || usageValue === null
        ? undefined
        : {
            promptTokens: tokenCount(usageValue.input_tokens) ?? 0,
            completionTokens: tokenCount(usageValue.output_tokens) ?? 0,
          },
    isFinal,
  };
}

/**
 * A token count an upstream's `usage` states, or undefined when the value is not one: only a whole number from 0
 * to 2^53 - 1. Budgets, /stats, metrics and the translated answers add these up; a negative count refunded budget,
 * `1e999` (JSON for Infinity) made counters +Inf for good, and fractions or 1e308 reached clients as token counts.
 * protocols/chat-completions.ts `asCount` applies the same rule to the answers it translates.
 */
export function tokenCount(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * An audio stream's events (OpenAI's, relayed as they came): text to speech's `speech.audio.delta` (base64 `audio`)
 * and `speech.audio.done` (`usage`), a streamed transcription's `transcript.text.delta` (`delta`) and
 * `transcript.text.done` (`text`, `usage`). The `done` event is the answer's last: after it the stream is a success.
 */
export function inspectAudioEvent(event: SseEvent): StreamEventInfo {
  if (event.data === "[DONE]") return DONE;
  const json = parseJsonRecord(event.data);
  if (json === undefined) return MALFORMED;
  const type = typeof json.type === "string" ? json.type : "";
  const isError = type === "error" || event.event === "error" || (type === "" && json.error !== undefined);
  const isFinal = type === "speech.audio.done" || type === "transcript.text.done";
  const usageValue = isFinal ? (json.usage as { input_tokens?: unknown; output_tokens?: unknown } | null) : undefined;
  return {
    isDone: false,
    json,
    isMalformed: false,
    hasContent: !isError && AUDIO_CONTENT_EVENTS.has(type),
    hasToolCall: false,
    hasReasoning: false,
    hasRefusal: false,
    isError,
    finishReason: isFinal ? "stop" : undefined,
    text: type === "transcript.text.delta" && typeof json.delta === "string" ? json.delta : "",
    usage: audioUsage(usageValue),
    isFinal,
  };
}

/**
 * A `done` event's token usage; undefined for none, and for a usage in seconds (`{type: "duration"}`, a per-minute
 * billed model): zero tokens made up from it would settle the budgets below the estimate they reserved.
 */
function audioUsage(usage: { input_tokens?: unknown; output_tokens?: unknown } | null | undefined) {
  if (usage === undefined || usage === null || typeof usage !== "object") return undefined;
  const promptTokens = tokenCount(usage.input_tokens);
  const completionTokens = tokenCount(usage.output_tokens);
  if (promptTokens === undefined && completionTokens === undefined) return undefined;
  return { promptTokens: promptTokens ?? 0, completionTokens: completionTokens ?? 0 };
}

/** The audio events that are the answer (a `transcript.text.segment` of a diarizing model is one too). */
const AUDIO_CONTENT_EVENTS = new Set([
  "speech.audio.delta",
  "speech.audio.done",
  "transcript.text.delta",
  "transcript.text.segment",
  "transcript.text.done",
]);

/** A chunk without choices (a usage-only chunk, when it carries usage). */
export function isUsageOnly(json: Record<string, unknown> | undefined): boolean {
  const choices = json?.choices;
  return !Array.isArray(choices) || choices.length === 0;
}
