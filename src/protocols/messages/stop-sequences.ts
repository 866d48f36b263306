// Stop sequences past what OpenAI-compatible providers take, applied by the gateway to the answer's text.

import { StopAutomaton } from "./stop-automaton.ts";

/**
 * The `stop` strings sent upstream: OpenAI takes at most 4 (a 400 for more), as Groq and Cerebras document; Gemini's
 * OpenAI-compatible API takes 5, DeepSeek 16. Anthropic takes more: the rest is matched here (`StopSequenceMatcher`).
 */
export const UPSTREAM_STOP_MAX = 4;

/**
 * `stop_sequences` of one request: how many, and their characters in all (request-schema.ts; more is a 400). The
 * automaton for them is built per request at about 1 us of the event loop a character: 20 MB of them held it 16 s and
 * took 1 GB. Anthropic documents no cap; real clients send a handful of short ones.
 */
export const MAX_STOP_SEQUENCES = 1_000;
export const MAX_STOP_SEQUENCES_CHARS = 50_000;

/**
 * Cuts streamed text at the first stop sequence, as Anthropic does (the sequence itself is not part of the text).
 * Text that may be the start of a sequence is held back until the next piece says whether it is one; after a match,
 * nothing more is passed on. Only text goes through it: Anthropic matches no sequence inside thinking or tool input.
 *
 * The first sequence is the first to be complete as the text comes (as a model generating it stops there; of two
 * complete at the same character, the longer), whatever the pieces: "abc" with `bc` and `abcX` stops at `bc`. One
 * automaton reads the text for every sequence at once (stop-automaton.ts), keeping where it is between pieces, so a
 * piece costs its length, however many sequences there are, however long, or however much is held back (rescanning
 * the held text at every piece froze the event loop for 50 s on 100 sequences of 10,000 `a`s; scanning for each
 * sequence on its own cost ~10 ms a piece with 200,000 short ones).
 */
export class StopSequenceMatcher {
  readonly #automaton: StopAutomaton;
  /** Where the automaton is: the held text is the last `heldLength(state)` characters read. */
  #state = 0;
  #held = "";
  /** The sequence the text stopped at, once it did. */
  matched: string | undefined;

  constructor(sequences: readonly string[]) {
    this.#automaton = new StopAutomaton([...new Set(sequences.filter((sequence) => sequence !== ""))]);
  }

  /** The part of `delta` (after what was held back) that is sure to come before any stop sequence. */
  push(delta: string): string {
    if (this.matched !== undefined || delta === "") return "";
    const automaton = this.#automaton;
    const text = this.#held + delta;
    const offset = this.#held.length;
    let state = this.#state;
    for (let at = 0; at < delta.length; at++) {
      state = automaton.next(state, delta.charCodeAt(at));
      const length = automaton.matchLength(state);
      if (length > 0) {
        const end = offset + at + 1;
        this.matched = text.slice(end - length, end);
        this.#held = "";
        this.#state = 0;
        return text.slice(0, end - length);
      }
    }
    this.#state = state;
    const held = automaton.heldLength(state);
    this.#held = text.slice(text.length - held);
    return text.slice(0, text.length - held);
  }

  /**
   * At the end of the text (the answer's, or its text before a tool call): what was held back (a start of a sequence
   * that never completed) is text after all. No sequence spans it: text after it starts afresh.
   */
  flush(): string {
    const held = this.#held;
    this.#held = "";
    this.#state = 0;
    return held;
  }
}

/** A whole answer's text cut at its first stop sequence, and which one (undefined: none matched), as streamed. */
export function cutAtStopSequence(
  text: string,
  sequences: readonly string[],
): { readonly text: string; readonly matched: string | undefined } {
  const matcher = new StopSequenceMatcher(sequences);
  const before = matcher.push(text);
  return matcher.matched === undefined ? { text, matched: undefined } : { text: before, matched: matcher.matched };
}
