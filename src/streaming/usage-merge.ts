// The usage the client is told about after a continuation: its whole answer, not the segment that happened to
// finish it. Each segment's own usage is charged separately (budgets, stats); this is only what the client sees.
import type { TokenUsage } from "./relay-types.ts";

export class UsageMerge {
  /** Completion tokens of the text delivered by segments that broke (reported, or counted when they were not). */
  #earlierCompletionTokens = 0;
  /** The prompt tokens the first upstream reported, if it got that far. */
  #firstPromptTokens: number | undefined;
  readonly #estimatedPromptTokens: number | undefined;
  readonly #countTokens: ((text: string) => number) | undefined;

  constructor(estimatedPromptTokens: number | undefined, countTokens: ((text: string) => number) | undefined) {
    this.#estimatedPromptTokens = estimatedPromptTokens;
    this.#countTokens = countTokens;
  }

  /**
   * A segment ended: remember what it cost, for the combined usage of the segments after it. Unreported, that is its
   * text and its reasoning, counted (before 2026-12-06 only its text: a stream cut after its reasoning told the client
   * fewer completion tokens than the uncut answer had).
   */
  noteSegment(isFirst: boolean, usage: TokenUsage | undefined, text: string, reasoning = ""): void {
    if (isFirst) this.#firstPromptTokens = usage?.promptTokens;
    const count = this.#countTokens;
    const counted = count === undefined ? 0 : count(text) + (reasoning === "" ? 0 : count(reasoning));
    this.#earlierCompletionTokens += usage?.completionTokens ?? counted;
  }

  /**
   * A replay regenerated the answer from the start, so its counts already cover all of it. A prefill continuation
   * counted the delivered text as prompt: the prompt is the original request's, and the completion the delivered
   * part plus its own.
   */
  combine(segmentUsage: TokenUsage, mode: "prefill" | "replay"): TokenUsage {
    if (mode === "replay") return segmentUsage;
    return {
      promptTokens: this.#firstPromptTokens ?? this.#estimatedPromptTokens ?? segmentUsage.promptTokens,
      completionTokens: this.#earlierCompletionTokens + segmentUsage.completionTokens,
    };
  }
}
