// What the relay knows across segments: the text delivered so far, the choices seen, the first stream's id,
// malformed events, whether the answer may still be continued, and the continuations made.
import { ChoiceTracker } from "./continuation-splice.ts";
import type { OutputTokenCount } from "./estimated-usage.ts";
import type { ContinuationRecord, SegmentOutput, TokenUsage } from "./relay-types.ts";
import type { UsageMerge } from "./usage-merge.ts";

export interface RelayStateOptions {
  /** Malformed events tolerated (skipped and reported) before the stream counts as broken. */
  readonly maxMalformedEvents: number;
  readonly isContinuable: boolean;
  /**
   * `upstream_limits.max_retained_stream_chars`: delivered text kept for a continuation. Past it the text is
   * dropped and the answer is no longer continued: an endless stream must not grow memory without end.
   */
  readonly maxRetainedChars: number;
  readonly usage: UsageMerge;
  /** Counts the output the client got, for an estimated usage chunk (only when one may be needed). */
  readonly output?: OutputTokenCount | undefined;
  /** Replaces secrets in upstream-derived text before it is shown or logged. */
  redact(text: string): string;
  onMalformedEvent?(data: string): void;
}

export class RelayState {
  readonly choices = new ChoiceTracker();
  readonly continuations: ContinuationRecord[] = [];
  /** The first segment's chunk id, reused on continuation chunks so the client sees one answer. */
  streamId: string | undefined;
  /** The first segment's latest chunk to the client: a usage chunk the gateway adds takes its `object`, `model`. */
  lastChunk: Record<string, unknown> | undefined;
  isContinuable: boolean;
  malformedEvents = 0;
  /** The usage the client was told about after a continuation: the whole answer. */
  combinedUsage: TokenUsage | undefined;
  /**
   * `combinedUsage` came from a continuation's usage that was an upstream gateway's estimate (its
   * `x_gateway.usage_estimated`, read deliberately: upstream-gateway-field.ts): the answer's usage is an estimate too,
   * whether or not the client was shown it (a usage the gateway asked for itself is stripped).
   */
  isCombinedUsageEstimated = false;
  /** A chunk with an upstream's `usage` went to the client: an estimated usage chunk would be a second one. */
  hasPassedUsage = false;
  /**
   * What the segment relayed last generated besides the text it delivered (its reasoning, what the gateway dropped, its
   * tool calls), set when it ends: also when the relay is closed in the middle of it, and its end is never returned.
   */
  segmentOutput: SegmentOutput = {};
  readonly #textParts: string[] = [];
  #deliveredChars = 0;
  #isRetainingText = true;
  readonly #options: RelayStateOptions;

  constructor(options: RelayStateOptions) {
    this.#options = options;
    this.isContinuable = options.isContinuable;
  }

  get usage(): UsageMerge {
    return this.#options.usage;
  }

  get output(): OutputTokenCount | undefined {
    return this.#options.output;
  }

  deliver(text: string): void {
    this.#deliveredChars += text.length;
    if (!this.#isRetainingText) return;
    if (this.#deliveredChars > this.#options.maxRetainedChars) {
      this.#isRetainingText = false;
      this.#textParts.length = 0;
      this.isContinuable = false;
      return;
    }
    this.#textParts.push(text);
  }

  /** Delivered text is still kept (the answer is under `maxRetainedChars`). */
  get isRetainingText(): boolean {
    return this.#isRetainingText;
  }

  /**
   * A segment's reasoning with `piece` added, kept as delivered text is: none once the text is no longer retained, and
   * no more past `maxRetainedChars` (a long reasoning must not grow memory without end; what is left out is not counted).
   */
  retainedReasoning(reasoning: string, piece: string): string {
    if (!this.#isRetainingText) return "";
    return reasoning.length + piece.length > this.#options.maxRetainedChars ? reasoning : reasoning + piece;
  }

  get deliveredChars(): number {
    return this.#deliveredChars;
  }

  deliveredText(): string {
    const text = this.#textParts.join("");
    this.#textParts.length = 0;
    this.#textParts.push(text);
    return text;
  }

  /** Replaces secrets in upstream-derived text (configured keys and anything key-shaped). */
  redact(text: string): string {
    return this.#options.redact(text);
  }

  /** Counts a malformed event; true when there were too many. */
  noteMalformed(data: string): boolean {
    this.malformedEvents++;
    this.#options.onMalformedEvent?.(this.#options.redact(data));
    return this.malformedEvents > this.#options.maxMalformedEvents;
  }

  /** A continuation's usage chunk: tell the client about its whole answer. */
  spliceUsage(
    json: Record<string, unknown>,
    usage: TokenUsage,
    mode: "prefill" | "replay",
    isEstimated: boolean,
  ): void {
    const combined = this.usage.combine(usage, mode);
    this.combinedUsage = combined;
    this.isCombinedUsageEstimated = isEstimated;
    json.usage = {
      ...(json.usage as Record<string, unknown>),
      prompt_tokens: combined.promptTokens,
      completion_tokens: combined.completionTokens,
      total_tokens: combined.promptTokens + combined.completionTokens,
    };
  }

  describeUpstreamError(json: Record<string, unknown> | undefined): string {
    // Chat: `{"error": {...}}`; Responses: `response.failed` carries `response.error`, an `error` event is the error.
    const error =
      json?.error ??
      (json?.response as { error?: unknown } | undefined)?.error ??
      (json?.type === "error" ? json : undefined);
    if (error !== null && typeof error === "object" && typeof (error as { message?: unknown }).message === "string") {
      const message = this.#options.redact((error as { message: string }).message).slice(0, 300);
      return `the upstream sent an error event: ${message}`;
    }
    return "the upstream sent an error event";
  }
}
