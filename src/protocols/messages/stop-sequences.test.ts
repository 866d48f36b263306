import assert from "node:assert/strict";
import { test } from "node:test";
import { threadCpuMs } from "../../../test/helpers/thread-cpu.ts";
import { cutAtStopSequence, StopSequenceMatcher } from "./stop-sequences.ts";

/** The reference: the first sequence complete as the text comes, of two ending together the longer. */
function reference(text: string, sequences: readonly string[]): { text: string; matched: string | undefined } {
  for (let end = 1; end <= text.length; end++) {
    let best: string | undefined;
    for (const sequence of sequences) {
      if (sequence === "" || !text.slice(0, end).endsWith(sequence)) continue;
      if (best === undefined || sequence.length > best.length) best = sequence;
    }
    if (best !== undefined) return { text: text.slice(0, end - best.length), matched: best };
  }
  return { text, matched: undefined };
}

function streamed(pieces: readonly string[], sequences: readonly string[]) {
  const matcher = new StopSequenceMatcher(sequences);
  let text = "";
  for (const piece of pieces) text += matcher.push(piece);
  if (matcher.matched === undefined) text += matcher.flush();
  return { text, matched: matcher.matched };
}

test("stop sequences: streamed in any pieces, or whole, the text stops where the reference does", () => {
  let seed = 7;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed >>> 8) % n;
  };
  const word = (max: number): string => Array.from({ length: random(max) }, () => "ab"[random(2)]).join("");
  for (let round = 0; round < 5000; round++) {
    const sequences = Array.from({ length: 1 + random(5) }, () => word(5));
    const text = word(14);
    const pieces: string[] = [];
    for (let at = 0; at < text.length; ) {
      const length = 1 + random(4);
      pieces.push(text.slice(at, at + length));
      at += length;
    }
    const expected = reference(text, sequences);
    const context = JSON.stringify({ sequences, pieces });
    assert.deepEqual(streamed(pieces, sequences), expected, context);
    assert.deepEqual(cutAtStopSequence(text, sequences), expected, context);
  }
  // `bc` is complete first: a model writing `abcX` stops after `abc`, in one piece or two.
  assert.deepEqual(streamed(["abcX"], ["abcX", "bc"]), { text: "a", matched: "bc" });
  assert.deepEqual(streamed(["abc", "X"], ["abcX", "bc"]), { text: "a", matched: "bc" });
  assert.deepEqual(cutAtStopSequence("abcX", ["abcX", "bc"]), { text: "a", matched: "bc" });
});

test("stop sequences: a long held-back start of long sequences costs no rescan at every piece", () => {
  // 50 sequences of 10,000 `a`s (500 KB of body), and an answer of 10,000 `a`s then `b`: the text held back was
  // scanned again for each sequence at each piece: 3 to 12 s of the event loop for the last piece alone.
  const sequences: string[] = JSON.parse(
    JSON.stringify(Array.from({ length: 50 }, (_, i) => `${"a".repeat(10_000)}c${i}`)),
  );
  const matcher = new StopSequenceMatcher(sequences);
  // This thread's CPU: another process holding the core is not the matcher's cost.
  const { value: text, ms: elapsedMs } = threadCpuMs(() => {
    let pushed = "";
    for (let piece = 0; piece < 1250; piece++) pushed += matcher.push("aaaaaaaa");
    return pushed + matcher.push("b") + matcher.flush();
  });
  assert.equal(text, `${"a".repeat(10_000)}b`);
  assert.equal(matcher.matched, undefined);
  assert.ok(elapsedMs < 1500, `took ${Math.round(elapsedMs)} ms`);
});

test("stop sequences: an empty sequence is never matched, a repeated one counts once, a split pair is matched", () => {
  assert.deepEqual(streamed(["hello"], ["", "", "x", "x"]), { text: "hello", matched: undefined });
  assert.deepEqual(streamed(["a\ud83d", "\ude00b"], ["\ud83d\ude00"]), { text: "a", matched: "\ud83d\ude00" });
  assert.deepEqual(streamed(["a\ud83d"], ["\ud83d\ude00"]), { text: "a\ud83d", matched: undefined });
  // Flushed (a tool call ended the text): no sequence spans it.
  const matcher = new StopSequenceMatcher(["abc"]);
  assert.equal(matcher.push("ab") + matcher.flush() + matcher.push("c"), "abc");
  assert.equal(matcher.matched, undefined);
});

test("stop sequences: a piece costs no more with 200,000 sequences than with 20 (same process, a ratio)", () => {
  // 200,000 short sequences (a client may send them, Anthropic documents no cap) cost ~10 ms per piece when each was
  // scanned for on its own: a 4,000-piece answer held the event loop for 40 s.
  let seed = 11;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed >>> 8) % n;
  };
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const word = (length: number): string => Array.from({ length }, () => letters[random(26)]).join("");
  // Every sequence ends with a `#`, which the answer never holds: nothing matches, every piece is scanned whole.
  const many = Array.from({ length: 200_000 }, () => `${word(1 + random(5))}#`);
  const few = many.slice(0, 20);
  const pieces = Array.from({ length: 400 }, () => ` ${word(6)} ${word(4)}`);
  const perPieceMs = (sequences: readonly string[]): number => {
    const matcher = new StopSequenceMatcher(sequences);
    matcher.push("warm up");
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const { ms } = threadCpuMs(() => {
        for (const piece of pieces) matcher.push(piece);
      });
      samples.push(ms / pieces.length);
    }
    assert.equal(matcher.matched, undefined);
    return samples.sort((a, b) => a - b)[2] as number;
  };
  const fewMs = perPieceMs(few);
  const manyMs = perPieceMs(many);
  // Scanned once per sequence it was ~10,000 times; one automaton for all of them is within a small factor.
  assert.ok(
    manyMs < Math.max(fewMs, 0.002) * 25,
    `per piece: ${manyMs.toFixed(4)} ms with 200,000, ${fewMs.toFixed(4)} ms with 20`,
  );
});
