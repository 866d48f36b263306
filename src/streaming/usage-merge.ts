// The usage the client is told about after a continuation: its whole answer, not the segment that happened to
// finish it. Each segment's own usage is charged separately (budgets, stats); this is only what the client sees.
import type { SegmentEnd, TokenUsage } from "./relay-types.ts";

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
    this.#earlierCompletionTokens += usage?.completionTokens ?? this.#counted(text, reasoning);
  }

  /**
   * The whole answer's usage when the continuation that finished it reported none (or none believed: a role chunk's 0
   * output tokens): its output counted as an earlier segment's is (noteSegment) and its tool calls as its charge counts
   * them (SegmentEnd.otherOutputTokens), added to theirs, so the client is told, and the record counts, the sum of what
   * each segment is charged. A replay's counts what it repeated (dropped) too: it regenerated the whole answer. Until 2026-12-07 a usage an earlier segment had passed on (a running count, a
   * role chunk's zeros) stopped the answer's estimate: the client's last usage was that segment's partial count.
   */
  combineCounted(
    segment: Pick<SegmentEnd, "text" | "reasoning" | "droppedText" | "otherOutputTokens">,
    mode: "prefill" | "replay",
  ): TokenUsage {
    const text = mode === "replay" ? (segment.droppedText ?? "") + segment.text : segment.text;
    const completionTokens = this.#counted(text, segment.reasoning ?? "") + (segment.otherOutputTokens ?? 0);
    return this.combine({ promptTokens: this.#estimatedPromptTokens ?? 0, completionTokens }, mode);
  }

  #counted(text: string, reasoning: string): number {
    const count = this.#countTokens;
    return count === undefined ? 0 : count(text) + (reasoning === "" ? 0 : count(reasoning));
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
