// A set of strings that stays fast for long ones (a batch's custom_ids and models): V8 hashes a string of more than
// 16,383 characters by its length alone, so a Set of distinct long strings of one length compared each new one with
// every one it held (3,000 custom_ids of 17,000 characters, each differing at its end: 36 s of the event loop).
import { createHash } from "node:crypto";

/** V8's String::kMaxHashCalcLength: a longer string's hash is its length. */
const MAX_HASHED_CHARS = 16_383;

export class DistinctStrings {
  readonly #short = new Set<string>();
  /** The long strings by a digest of their UTF-16 code units; strings of one digest are compared (a collision). */
  readonly #long = new Map<string, string[]>();
  #size = 0;
  #first: string | undefined;

  get size(): number {
    return this.#size;
  }

  /** The first string added, if any. */
  get first(): string | undefined {
    return this.#first;
  }

  /** Adds `value`; false when it was there already. */
  add(value: string): boolean {
    const steps = this.adding(value, { bytesLeft: Number.POSITIVE_INFINITY }, Number.POSITIVE_INFINITY);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /**
   * add, a long string's digest taken `budget.bytesLeft` characters at a time (a yield when they are spent, then
   * `stepBytes` more): one digest of a 40 MB custom_id held the event loop 0.3-0.8 s. Its code units are digested as
   * UTF-16, so the pieces' ends change nothing (UTF-8 would turn a surrogate pair cut in two into two U+FFFD).
   */
  *adding(value: string, budget: { bytesLeft: number }, stepBytes: number): Generator<void, boolean, void> {
    if (value.length <= MAX_HASHED_CHARS) {
      if (this.#short.has(value)) return false;
      this.#short.add(value);
      return this.#counted(value);
    }
    const hash = createHash("sha256");
    for (let at = 0; at < value.length; ) {
      if (budget.bytesLeft <= 0) {
        yield;
        budget.bytesLeft = stepBytes;
      }
      const to = Math.min(value.length, at + Math.max(1, budget.bytesLeft));
      hash.update(value.slice(at, to), "utf16le");
      budget.bytesLeft -= to - at;
      at = to;
    }
    const digest = hash.digest("base64");
    const same = this.#long.get(digest);
    if (same?.includes(value) === true) return false;
    if (same === undefined) this.#long.set(digest, [value]);
    else same.push(value);
    return this.#counted(value);
  }

  #counted(value: string): true {
    if (this.#size === 0) this.#first = value;
    this.#size += 1;
    return true;
  }
}
