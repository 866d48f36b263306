// The usage a client gets when its upstream reported none: the usage chunk a chat or legacy completions client asked
// for (`stream_options.include_usage`; several OpenAI-compatible providers ignore it, and the SDKs (the openai SDK's
// final chunk, LangChain's `streamUsage`, the AI SDK's `usage`) then read no usage, so cost trackers record 0), and
// the `usage` of a JSON answer that came without one (the Responses and Messages doors translate both, so their
// clients get it too). Built from the gateway's estimate and marked `x_gateway.usage_estimated`, so a client can tell
// (docs/streaming.md "Usage chunks").
import { firstChunkChoice } from "../chat-choice.ts";
import { reasoningOf } from "../chat-reasoning.ts";
import type { TokenUsage } from "./relay-types.ts";

/**
 * Pieces of text held before they are counted. Most answers are shorter, and most upstreams report usage at the end,
 * so usually nothing is ever counted (the Responses and Messages doors ask every stream for usage: counting each
 * delta as it came cost every such stream, not only those that turn out to need the estimate). A longer answer is
 * counted every this many characters, so a stream holds at most this much (~32 KB) for it.
 */
const MAX_HELD_CHARS = 16_384;

/**
 * Counts the output of the answer the client got, chunk by chunk: every choice's text, reasoning, refusal and tool
 * calls (names and arguments). Each chunk's pieces are counted on their own, so a word split across two chunks may
 * count a token more than whole: the estimate stays on the high side, as the prompt's does. The pieces are counted
 * when `tokens` is read (or every MAX_HELD_CHARS characters), not as they come.
 */
export class OutputTokenCount {
  #tokens = 0;
  readonly #held: string[] = [];
  #heldChars = 0;
  /** A native Responses stream sent a finished item (`response.output_item.done`): its final `output` is not counted. */
  #hasItems = false;
  /** The finished items counted, by `item.id` and by `output_index` (#isItemCounted). */
  readonly #countedItems = new Set<string>();
  /** The latest chunk with choices: the usage chunk takes its `object`, `created` and `model`. */
  #last: Record<string, unknown> | undefined;
  readonly #countTokens: (text: string) => number;
  /**
   * The first choice's text and reasoning (the choice at index 0, chat-choice.ts) are left out: a stream segment keeps them as text
   * (SegmentEnd.text, reasoning), and this counts the rest of what it generated (SegmentEnd.otherOutputTokens).
   */
  readonly #isFirstTextLeft: boolean;

  constructor(countTokens: (text: string) => number, options: { readonly isFirstTextLeft?: boolean } = {}) {
    this.#countTokens = countTokens;
    this.#isFirstTextLeft = options.isFirstTextLeft === true;
  }

  get tokens(): number {
    this.#countHeld();
    return this.#tokens;
  }

  get lastChunk(): Record<string, unknown> | undefined {
    return this.#last;
  }

  /**
   * A chunk as the client got it (after a replay's repeated start was dropped, tool calls normalized), or a whole JSON
   * answer: a chat choice's `delta` or `message`, a legacy completion's `text`, a native Responses answer's `output`.
   */
  note(json: Record<string, unknown>): void {
    const choices = json.choices;
    if (!Array.isArray(choices)) {
      if (!this.#isFirstTextLeft) this.#noteResponsesEvent(json);
      return;
    }
    if (choices.length > 0) this.#last = json;
    const first = this.#isFirstTextLeft ? firstChunkChoice(choices) : undefined;
    for (const choice of choices as unknown[]) {
      if (choice === null || typeof choice !== "object") continue;
      const { delta, message, text } = choice as { delta?: unknown; message?: unknown; text?: unknown };
      const hasText = !this.#isFirstTextLeft || choice !== first;
      if (hasText) this.#add(text);
      const fields = delta ?? message;
      if (fields === null || typeof fields !== "object") continue;
      this.#addFields(fields as Record<string, unknown>, hasText);
    }
  }

  /**
   * A native Responses stream's event (`responses_api: native`): each finished output item as a whole (a message's text
   * and refusals, a call's name and arguments, reasoning's summary and text), read once from its first
   * `response.output_item.done`; or, when the stream sent none, the final response's `output`. A native JSON answer
   * (a response object itself, `object: "response"`) is counted by its `output` the same way.
   */
  #noteResponsesEvent(json: Record<string, unknown>): void {
    const type = json.type;
    if (type === "response.output_item.done") {
      this.#hasItems = true;
      if (!this.#isItemCounted(json)) this.#addItem(json.item);
    } else if ((type === "response.completed" || type === "response.incomplete") && !this.#hasItems) {
      this.#addOutput((json.response as { output?: unknown } | null | undefined)?.output);
    } else if (json.object === "response") {
      this.#addOutput(json.output);
    }
  }

  /**
   * Whether this `response.output_item.done` finishes an item counted already (its `item.id` or its `output_index`
   * seen before), and notes it. A provider (or a proxy retrying an event) may send an item's done event twice; the item
   * was generated once. Until 2026-12-07 each copy was counted.
   */
  #isItemCounted(event: Record<string, unknown>): boolean {
    const id = (event.item as { id?: unknown } | null | undefined)?.id;
    const keys = [
      ...(typeof id === "string" && id !== "" ? [`id:${id}`] : []),
      ...(typeof event.output_index === "number" ? [`index:${event.output_index}`] : []),
    ];
    const isCounted = keys.some((key) => this.#countedItems.has(key));
    for (const key of keys) this.#countedItems.add(key);
    return isCounted;
  }

  #addOutput(output: unknown): void {
    if (Array.isArray(output)) for (const item of output as unknown[]) this.#addItem(item);
  }

  #addItem(item: unknown): void {
    if (item === null || typeof item !== "object") return;
    const { content, summary, name, arguments: args, input } = item as Record<string, unknown>;
    for (const parts of [content, summary]) {
      if (!Array.isArray(parts)) continue;
      for (const part of parts as unknown[]) {
        if (part === null || typeof part !== "object") continue;
        const { text, refusal } = part as { text?: unknown; refusal?: unknown };
        this.#addText(text);
        this.#addText(refusal);
      }
    }
    this.#addText(name);
    this.#addText(args);
    this.#addText(input);
  }

  #addFields(fields: Record<string, unknown>, hasText: boolean): void {
    if (hasText) {
      this.#add(fields.content);
      this.#add(reasoningOf(fields));
    }
    this.#add(fields.refusal);
    this.#addCalls(fields.tool_calls);
    if (fields.function_call !== null && typeof fields.function_call === "object") this.#addCall(fields.function_call);
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
    if (typeof value === "string") {
      this.#addText(value);
      return;
    }
    // Some providers send message content as an array of text parts (protocols/chat-completions.ts readText).
    if (!Array.isArray(value)) return;
    for (const part of value as unknown[]) {
      if (part !== null && typeof part === "object") this.#addText((part as { text?: unknown }).text);
    }
  }

  #addText(value: unknown): void {
    if (typeof value !== "string" || value === "") return;
    this.#held.push(value);
    this.#heldChars += value.length;
    if (this.#heldChars >= MAX_HELD_CHARS) this.#countHeld();
  }

  #countHeld(): void {
    for (const text of this.#held) this.#tokens += this.#countTokens(text);
    this.#held.length = 0;
    this.#heldChars = 0;
  }
}

/**
 * The final usage chunk (`choices: []`) of a chat or legacy completions stream whose upstreams reported no usage, in
 * OpenAI's shape: the id, `object`, `created` and `model` of the stream's chunks, and `x_gateway.usage_estimated`
 * beside `usage`.
 */
export function estimatedUsageChunk(
  last: Record<string, unknown> | undefined,
  streamId: string | undefined,
  usage: TokenUsage,
  /** Marked `x_gateway.usage_estimated` (not for a provider's count with the output read after it added). */
  isMarked = true,
): Record<string, unknown> {
  return {
    id: streamId ?? last?.id ?? null,
    // A legacy completions stream's chunks are `text_completion` objects, its usage chunk too (OpenAI's).
    object: last?.object === "text_completion" ? "text_completion" : "chat.completion.chunk",
    created: last?.created ?? Math.floor(Date.now() / 1000),
    model: last?.model ?? "",
    choices: [],
    usage: usageFields(usage),
    ...(isMarked ? { x_gateway: { usage_estimated: true } } : {}),
  };
}

/**
 * A JSON answer (chat or legacy completion) that came without `usage`, with the estimate and the marker added. An
 * `x_gateway` the upstream sent was taken off before (upstream-gateway-field.ts): the marker is the gateway's alone.
 */
export function withEstimatedUsage(answer: Record<string, unknown>, usage: TokenUsage): Record<string, unknown> {
  return { ...answer, usage: usageFields(usage), x_gateway: { usage_estimated: true } };
}

function usageFields(usage: TokenUsage): Record<string, number> {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}
