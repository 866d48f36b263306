// Who holds what in a store of kept rows shared by every client (kept responses, conversations): the in-memory
// stores' half of the fairness rule the persistent stores (src/state: the state file, Redis) apply alike. When a
// store is over a bound, the row evicted is the oldest of the owner holding the most of that bound (rows for
// max_entries, bytes for max_bytes), not the oldest of all: one named client writing past the bounds (a flood of
// conversation creates costs no upstream call) then evicts its own rows, never another client's, as long as it holds
// more than they do. With one owner (a gateway without named clients) that is the oldest row: as before.
// The rule has no setting of its own: a per-client cap would need a default that either shrinks what a gateway with
// one named client may keep or lets a few clients together still push out the rest.

/** The owner of a row written by an unnamed key (a client name is never empty). */
export const UNNAMED_OWNER = "";

interface Holding {
  /** The owner's rows, oldest first (a Set keeps insertion order; a row written again is removed and added last). */
  readonly ids: Set<string>;
  bytes: number;
}

export class OwnerShares {
  readonly #owners = new Map<string, Holding>();
  /** Each row's write order, to break a tie between owners holding as much: the one with the older row loses it. */
  readonly #order = new Map<string, number>();
  #written = 0;

  add(owner: string, id: string, bytes: number): void {
    let holding = this.#owners.get(owner);
    if (holding === undefined) {
      holding = { ids: new Set(), bytes: 0 };
      this.#owners.set(owner, holding);
    }
    holding.ids.add(id);
    holding.bytes += bytes;
    this.#order.set(id, this.#written++);
  }

  remove(owner: string, id: string, bytes: number): void {
    const holding = this.#owners.get(owner);
    if (holding === undefined || !holding.ids.delete(id)) return;
    holding.bytes -= bytes;
    this.#order.delete(id);
    if (holding.ids.size === 0) this.#owners.delete(owner);
  }

  /** The row to evict over a bound: the oldest of the owner holding the most rows (`count`) or bytes (`bytes`). */
  victim(measure: "count" | "bytes"): string | undefined {
    let chosen: { amount: number; oldestId: string; oldestOrder: number } | undefined;
    for (const holding of this.#owners.values()) {
      const oldestId = holding.ids.values().next().value;
      if (oldestId === undefined) continue;
      const amount = measure === "count" ? holding.ids.size : holding.bytes;
      const oldestOrder = this.#order.get(oldestId) ?? 0;
      if (
        chosen === undefined ||
        amount > chosen.amount ||
        (amount === chosen.amount && oldestOrder < chosen.oldestOrder)
      ) {
        chosen = { amount, oldestId, oldestOrder };
      }
    }
    return chosen?.oldestId;
  }
}
