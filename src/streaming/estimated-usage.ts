// The usage chunk a chat client asked for (`stream_options.include_usage`) when its upstream sent none: several
// OpenAI-compatible providers ignore `include_usage`, and the SDKs (the openai SDK's final chunk, LangChain's
// `streamUsage`, the AI SDK's `usage`) then read no usage, so cost trackers record 0 (docs/streaming.md "Usage
// chunks"). Built from the gateway's estimate and marked `x_gateway.usage_estimated`, so a client can tell.
import type { TokenUsage } from "./relay-types.ts";

/**
 * Counts the output of the answer the client got, chunk by chunk: every choice's text, reasoning, refusal and tool
 * calls (names and arguments). Each chunk's characters are counted on their own, so a word split across two chunks
 * may count a token more than whole: the estimate stays on the high side, as the prompt's does. Nothing is kept.
 */
export class OutputTokenCount {
  #tokens = 0;
  readonly #countTokens: (text: string) => number;

  constructor(countTokens: (text: string) => number) {
    this.#countTokens = countTokens;
  }

  get tokens(): number {
    return this.#tokens;
  }

  /** A chunk as the client got it (after a replay's repeated start was dropped, tool calls normalized). */
  note(json: Record<string, unknown>): void {
    const choices = json.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices as unknown[]) {
      if (choice === null || typeof choice !== "object") continue;
      const { delta, text } = choice as { delta?: unknown; text?: unknown };
      this.#add(text);
      if (delta === null || typeof delta !== "object") continue;
      const fields = delta as Record<string, unknown>;
      this.#add(fields.content);
      this.#add(fields.reasoning_content ?? fields.reasoning);
      this.#add(fields.refusal);
      this.#addCalls(fields.tool_calls);
      if (fields.function_call !== null && typeof fields.function_call === "object")
        this.#addCall(fields.function_call);
    }
  }

  #addCalls(calls: unknown): void {
    if (!Array.isArray(calls)) return;
    for (const call of calls as unknown[]) {
      if (call === null || typeof call !== "object") continue;
      const fn = (call as { function?: unknown }).function;
      if (fn !== null && typeof fn === "object") this.#addCall(fn);
    }
  }

  #addCall(fn: object): void {
    const { name, arguments: args } = fn as { name?: unknown; arguments?: unknown };
    this.#add(name);
    this.#add(args);
  }

  #add(value: unknown): void {
    if (typeof value === "string" && value !== "") this.#tokens += this.#countTokens(value);
  }
}

/**
 * The final usage chunk (`choices: []`) of a chat stream whose upstreams reported no usage, in OpenAI's shape: the
 * id, `created` and `model` of the stream's chunks, and `x_gateway.usage_estimated` beside `usage`.
 */
export function estimatedUsageChunk(
  last: Record<string, unknown> | undefined,
  streamId: string | undefined,
  usage: TokenUsage,
): Record<string, unknown> {
  return {
    id: streamId ?? last?.id ?? null,
    object: "chat.completion.chunk",
    created: last?.created ?? Math.floor(Date.now() / 1000),
    model: last?.model ?? "",
    choices: [],
    usage: {
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
    x_gateway: { usage_estimated: true },
  };
}
