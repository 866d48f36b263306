// Stop sequences past what OpenAI-compatible providers take, applied by the gateway to the answer's text.

/**
 * The `stop` strings sent upstream: OpenAI takes at most 4 (a 400 for more), as Groq and Cerebras document; Gemini's
 * OpenAI-compatible API takes 5, DeepSeek 16. Anthropic takes more: the rest is matched here (`StopSequenceMatcher`).
 */
export const UPSTREAM_STOP_MAX = 4;

/**
 * Cuts streamed text at the first stop sequence, as Anthropic does (the sequence itself is not part of the text).
 * Text that may be the start of a sequence is held back until the next piece says whether it is one; after a match,
 * nothing more is passed on. Only text goes through it: Anthropic matches no sequence inside thinking or tool input.
 */
export class StopSequenceMatcher {
  readonly #sequences: readonly string[];
  #held = "";
  /** The sequence the text stopped at, once it did. */
  matched: string | undefined;

  constructor(sequences: readonly string[]) {
    this.#sequences = sequences.filter((sequence) => sequence !== "");
  }

  /** The part of `delta` (after what was held back) that is sure to come before any stop sequence. */
  push(delta: string): string {
    if (this.matched !== undefined) return "";
    const text = this.#held + delta;
    const match = firstMatch(text, this.#sequences);
    if (match !== undefined) {
      this.matched = match.sequence;
      this.#held = "";
      return text.slice(0, match.index);
    }
    const heldChars = pendingChars(text, this.#sequences);
    this.#held = text.slice(text.length - heldChars);
    return text.slice(0, text.length - heldChars);
  }

  /** At the end: what was held back (a start of a sequence that never completed) is text after all. */
  flush(): string {
    const held = this.#held;
    this.#held = "";
    return held;
  }
}

/** A whole answer's text cut at its first stop sequence, and which one (undefined: none matched). */
export function cutAtStopSequence(
  text: string,
  sequences: readonly string[],
): { readonly text: string; readonly matched: string | undefined } {
  const match = firstMatch(
    text,
    sequences.filter((sequence) => sequence !== ""),
  );
  return match === undefined
    ? { text, matched: undefined }
    : { text: text.slice(0, match.index), matched: match.sequence };
}

function firstMatch(
  text: string,
  sequences: readonly string[],
): { readonly index: number; readonly sequence: string } | undefined {
  let best: { index: number; sequence: string } | undefined;
  for (const sequence of sequences) {
    const index = text.indexOf(sequence);
    if (index >= 0 && (best === undefined || index < best.index)) best = { index, sequence };
  }
  return best;
}

/** How many characters at the end of `text` could begin a stop sequence (the longest such ending). */
function pendingChars(text: string, sequences: readonly string[]): number {
  let longest = 0;
  for (const sequence of sequences) {
    for (let length = Math.min(sequence.length - 1, text.length); length > longest; length--) {
      if (text.endsWith(sequence.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}
