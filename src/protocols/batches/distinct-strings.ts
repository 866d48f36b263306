// A set of strings that stays fast for long ones (a batch's custom_ids and models): V8 hashes a string of more than
// 16,383 characters by its length alone, so a Set of distinct long strings of one length compared each new one with
// every one it held (3,000 custom_ids of 17,000 characters, each differing at its end: 36 s of the event loop).
import { createHash } from "node:crypto";

/** V8's String::kMaxHashCalcLength: a longer string's hash is its length. */
const MAX_HASHED_CHARS = 16_383;

export class DistinctStrings {
  readonly #short = new Set<string>();
  /** The long strings by a digest of their text: one it has twice (a lone surrogate digests as U+FFFD) is compared. */
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

  /** Adds `value`; false when it was there already (one digest of a long string, not one to look and one to add). */
  add(value: string): boolean {
    if (value.length <= MAX_HASHED_CHARS) {
      if (this.#short.has(value)) return false;
      this.#short.add(value);
    } else {
      const digest = digestOf(value);
      const same = this.#long.get(digest);
      if (same?.includes(value) === true) return false;
      if (same === undefined) this.#long.set(digest, [value]);
      else same.push(value);
    }
    if (this.#size === 0) this.#first = value;
    this.#size += 1;
    return true;
  }
}

function digestOf(value: string): string {
  return createHash("sha256").update(value).digest("base64");
}
