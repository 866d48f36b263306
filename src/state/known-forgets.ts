// The forget of each scope a process made, heard, or read from its marker in Redis (redis-learned-facts.ts): a load
// applies only a marker it does not know. Pruned: an entry older than a marker lives (its marker has expired, so no
// load can read it again; one set since names another forget), and beyond a count the oldest go, for a process
// reloaded without end with ever new scopes. One dropped early costs little: its marker, read again, drops the
// scope's stated limits here once more, and the same load adopts again what is stored (the new key's).
// Several forgets of one scope are known at once: in a rolling reload every replica forgets the same scope within
// seconds, each with its own id, and the marker left names whichever SET came last. Knowing only the last id noted
// (its own, or one heard after it), a replica took the marker of a forget it had made or heard as unheard and applied
// it again at its next load, dropping what it had learned of the scope since.

import type { Clock } from "../clock.ts";

/** Entries kept at most (a gateway has a scope per provider and per deployment: far fewer). */
export const MAX_KNOWN_FORGETS = 10_000;

/** Forgets of one scope known at most (the replicas of a rolling reload; the oldest noted go first). */
export const MAX_FORGETS_PER_SCOPE = 16;

export class KnownForgets {
  readonly #clock: Clock;
  /** ms an entry is kept: as long as the marker it may have been read from lives in Redis. */
  readonly #keepMs: number;
  readonly #maxEntries: number;
  /** scope id -> its forgets (oldest first) and when one was last noted; oldest noted first (noting moves it last). */
  readonly #forgets = new Map<string, { readonly forgetIds: readonly string[]; readonly atMs: number }>();

  constructor(clock: Clock, keepMs: number, maxEntries = MAX_KNOWN_FORGETS) {
    this.#clock = clock;
    this.#keepMs = keepMs;
    this.#maxEntries = maxEntries;
  }

  /** Whether `forgetId` is the forget of `scopeId` this process knows. */
  isKnown(scopeId: string, forgetId: string): boolean {
    this.#prune();
    return this.#forgets.get(scopeId)?.forgetIds.includes(forgetId) ?? false;
  }

  note(scopeId: string, forgetId: string): void {
    const earlier = (this.#forgets.get(scopeId)?.forgetIds ?? []).filter((id) => id !== forgetId);
    const forgetIds = [...earlier.slice(-(MAX_FORGETS_PER_SCOPE - 1)), forgetId];
    this.#forgets.delete(scopeId);
    this.#forgets.set(scopeId, { forgetIds, atMs: this.#clock.now() });
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
