// The mutable facts of one stream segment while it is relayed (relay-segment.ts), and what it generated that the
// client did not get from it: the part of its provider's output the gateway dropped, still billed by that provider.
import type { StreamOutcome } from "../errors/outcomes.ts";
import type { TokenUsage } from "./relay-types.ts";

export class SegmentProgress {
  outcome: StreamOutcome | undefined;
  reason = "";
  usage: TokenUsage | undefined;
  /** `usage` is an upstream gateway's estimate (upstream-gateway-field.ts). */
  isUsageEstimated = false;
  text = "";
  /** The first choice's reasoning the client got from this segment (kept as `text` is, within the same bound). */
  reasoning = "";
  /**
   * The first choice's reasoning this segment generated that the client did not get (a continuation's before its
   * first output, a replay's while it repeated the delivered text): billed all the same (SegmentEnd.droppedReasoning).
   */
  droppedReasoning = "";
  isFirstOutput = true;
  /** A continuation segment has added to the client's answer. */
  hasAdded = false;
  /** A prefill continuation that answered afresh (PrefillEchoGuard): its usage covers the whole answer, as a replay's. */
  isRestarted = false;
  /** A continuation's repetition of the delivered text, matched and dropped (ReplayMatcher, PrefillEchoGuard). */
  repetition: { readonly droppedText: string } | undefined;
  /** The text of the event a replay diverged at: generated, never passed on. */
  divergedText = "";

  end(outcome: StreamOutcome, reason: string): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    this.reason = reason;
  }

  /**
   * The text its provider generated that the client did not get from this segment (SegmentEnd.droppedText). Counted
   * with what it delivered when it reported no usage: before, a diverged replay counted nothing, and a prefill
   * continuation that started over counted only its new text (pipeline/segment-usage.ts).
   */
  get droppedText(): string {
    return (this.repetition?.droppedText ?? "") + this.divergedText;
  }
}
