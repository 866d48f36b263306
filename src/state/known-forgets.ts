// The forget of each scope a process made, heard, or read from its marker in Redis (redis-learned-facts.ts): a load
// applies only a marker it does not know. Pruned: an entry older than a marker lives (its marker has expired, so no
// load can read it again; one set since names another forget), and beyond a count the oldest go, for a process
// reloaded without end with ever new scopes. One dropped early costs little: its marker, read again, drops the
// scope's stated limits here once more, and the same load adopts again what is stored (the new key's).

import type { Clock } from "../clock.ts";

/** Entries kept at most (a gateway has a scope per provider and per deployment: far fewer). */
export const MAX_KNOWN_FORGETS = 10_000;

export class KnownForgets {
  readonly #clock: Clock;
  /** ms an entry is kept: as long as the marker it may have been read from lives in Redis. */
  readonly #keepMs: number;
  readonly #maxEntries: number;
  /** scope id -> its forget and when it was noted; oldest noted first (noting again moves it to the end). */
  readonly #forgets = new Map<string, { readonly forgetId: string; readonly atMs: number }>();

  constructor(clock: Clock, keepMs: number, maxEntries = MAX_KNOWN_FORGETS) {
    this.#clock = clock;
    this.#keepMs = keepMs;
    this.#maxEntries = maxEntries;
  }

  /** Whether `forgetId` is the forget of `scopeId` this process knows. */
  isKnown(scopeId: string, forgetId: string): boolean {
    this.#prune();
    return this.#forgets.get(scopeId)?.forgetId === forgetId;
  }

  note(scopeId: string, forgetId: string): void {
    this.#forgets.delete(scopeId);
    this.#forgets.set(scopeId, { forgetId, atMs: this.#clock.now() });
    this.#prune();
  }

  get size(): number {
    return this.#forgets.size;
  }

  #prune(): void {
    const oldestKeptMs = this.#clock.now() - this.#keepMs;
    for (const [scopeId, { atMs }] of this.#forgets) {
      if (atMs > oldestKeptMs && this.#forgets.size <= this.#maxEntries) break;
      this.#forgets.delete(scopeId);
    }
  }
}
