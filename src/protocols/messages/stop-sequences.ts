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
 *
 * The first sequence is the first to be complete as the text comes (as a model generating it stops there; of two
 * complete at the same character, the longer), whatever the pieces: "abc" with `bc` and `abcX` stops at `bc`. Each
 * sequence keeps how much of it the text ends with (Knuth-Morris-Pratt), so a piece costs its length times the
 * number of sequences, however long they are or how much is held back (rescanning the held text at every piece
 * froze the event loop for 50 s on 100 sequences of 10,000 `a`s).
 */
export class StopSequenceMatcher {
  readonly #sequences: readonly string[];
  /** Per sequence, the length of its longest prefix the text so far ends with (always short of the whole). */
  readonly #states: Int32Array;
  /** Per sequence, its KMP failure table, built the first time the sequence needs it. */
  readonly #failures: (Int32Array | undefined)[];
  #held = "";
  /** The sequence the text stopped at, once it did. */
  matched: string | undefined;

  constructor(sequences: readonly string[]) {
    this.#sequences = [...new Set(sequences.filter((sequence) => sequence !== ""))];
    this.#states = new Int32Array(this.#sequences.length);
    this.#failures = new Array(this.#sequences.length);
  }

  /** The part of `delta` (after what was held back) that is sure to come before any stop sequence. */
  push(delta: string): string {
    if (this.matched !== undefined || delta === "") return "";
    const text = this.#held + delta;
    const offset = this.#held.length;
    let firstEnd = Number.POSITIVE_INFINITY;
    let firstSequence = -1;
    let longestHeld = 0;
    for (let index = 0; index < this.#sequences.length; index++) {
      const sequence = this.#sequences[index] as string;
      let state = this.#states[index] as number;
      let failure: Int32Array | undefined;
      // Past the first match found so far, no other can come first.
      const last = Math.min(delta.length, firstEnd - offset);
      for (let at = 0; at < last; at++) {
        // Nothing of it begun: on to its first character's next place (indexOf, far faster than a loop here).
        if (state === 0) {
          at = delta.indexOf(sequence[0] as string, at);
          if (at < 0 || at >= last) break;
        }
        const char = delta.charCodeAt(at);
        if (state > 0 && sequence.charCodeAt(state) !== char) {
          failure ??= this.#failure(index);
          do state = failure[state - 1] as number;
          while (state > 0 && sequence.charCodeAt(state) !== char);
        }
        if (sequence.charCodeAt(state) === char) state++;
        if (state === sequence.length) {
          const end = offset + at + 1;
          if (end < firstEnd || (end === firstEnd && sequence.length > (this.matched?.length ?? 0))) {
            firstEnd = end;
            firstSequence = index;
            this.matched = sequence;
          }
          break;
        }
      }
      this.#states[index] = state;
      if (state < sequence.length && state > longestHeld) longestHeld = state;
    }
    if (firstSequence >= 0) {
      this.#held = "";
      return text.slice(0, firstEnd - (this.matched as string).length);
    }
    this.#held = text.slice(text.length - longestHeld);
    return text.slice(0, text.length - longestHeld);
  }

  /**
   * At the end of the text (the answer's, or its text before a tool call): what was held back (a start of a sequence
   * that never completed) is text after all. No sequence spans it: text after it starts afresh.
   */
  flush(): string {
    const held = this.#held;
    this.#held = "";
    this.#states.fill(0);
    return held;
  }

  #failure(index: number): Int32Array {
    let failure = this.#failures[index];
    if (failure === undefined) {
      failure = failureTable(this.#sequences[index] as string);
      this.#failures[index] = failure;
    }
    return failure;
  }
}

/** A whole answer's text cut at its first stop sequence, and which one (undefined: none matched), as streamed. */
export function cutAtStopSequence(
  text: string,
  sequences: readonly string[],
): { readonly text: string; readonly matched: string | undefined } {
  // A sequence's first occurrence is also the first it completes: the first to be complete is the one ending first.
  let firstEnd = Number.POSITIVE_INFINITY;
  let matched: string | undefined;
  for (const sequence of sequences) {
    if (sequence === "") continue;
    const index = text.indexOf(sequence);
    if (index < 0) continue;
    const end = index + sequence.length;
    if (end < firstEnd || (end === firstEnd && sequence.length > (matched?.length ?? 0))) {
      firstEnd = end;
      matched = sequence;
    }
  }
  return matched === undefined ? { text, matched } : { text: text.slice(0, firstEnd - matched.length), matched };
}

/** For each prefix of `sequence`, the length of its longest proper prefix that is also its suffix. */
function failureTable(sequence: string): Int32Array {
  const failure = new Int32Array(sequence.length);
  let length = 0;
  for (let at = 1; at < sequence.length; at++) {
    while (length > 0 && sequence.charCodeAt(at) !== sequence.charCodeAt(length))
      length = failure[length - 1] as number;
    if (sequence.charCodeAt(at) === sequence.charCodeAt(length)) length++;
    failure[at] = length;
  }
  return failure;
}
