// What the gateway needs to know about one upstream stream event. One JSON.parse per event; everything else
// is property reads.
import type { SseEvent } from "./sse-parser.ts";

export interface StreamEventInfo {
  readonly isDone: boolean;
  /** Parsed payload; undefined for `[DONE]` and for malformed (non-JSON) data. */
  readonly json: Record<string, unknown> | undefined;
  readonly isMalformed: boolean;
  /** Carries generated output (text, reasoning, tool calls) or a finish reason. */
  readonly hasContent: boolean;
  /** An in-band error object (`{"error": ...}`), as some providers send mid-stream. */
  readonly isError: boolean;
  readonly finishReason: string | undefined;
  /** Text this event adds to the first choice (chat `delta.content` or completions `text`). */
  readonly text: string;
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;
}

const DONE: StreamEventInfo = {
  isDone: true,
  json: undefined,
  isMalformed: false,
  hasContent: false,
  isError: false,
  finishReason: undefined,
  text: "",
  usage: undefined,
};

const MALFORMED: StreamEventInfo = { ...DONE, isDone: false, isMalformed: true };

export function inspectEvent(event: SseEvent): StreamEventInfo {
  const data = event.data;
  if (data === "[DONE]") return DONE;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return MALFORMED;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return MALFORMED;
  const json = parsed as Record<string, unknown>;
  const isError = json.error !== undefined && json.error !== null && !Array.isArray(json.choices);
  let hasContent = false;
  let finishReason: string | undefined;
  let text = "";
  const choices = json.choices;
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
        if (choice === choices[0]) text = completionText;
      }
      if (delta !== undefined && delta !== null) {
        const content = delta.content;
        if (typeof content === "string" && content !== "") {
          hasContent = true;
          if (choice === choices[0]) text = content;
        }
        if (delta.tool_calls !== undefined || delta.function_call !== undefined) hasContent = true;
        const reasoning = delta.reasoning_content ?? delta.reasoning;
        if (typeof reasoning === "string" && reasoning !== "") hasContent = true;
      }
    }
  }
  const usageValue = json.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined | null;
  const usage =
    usageValue !== undefined && usageValue !== null && typeof usageValue === "object"
      ? {
          promptTokens: typeof usageValue.prompt_tokens === "number" ? usageValue.prompt_tokens : 0,
          completionTokens: typeof usageValue.completion_tokens === "number" ? usageValue.completion_tokens : 0,
        }
      : undefined;
  return { isDone: false, json, isMalformed: false, hasContent, isError, finishReason, text, usage };
}
