// What each client scope holds of the memory store of kept tool-call extras (tool-call-extras.ts), and which value
// goes when the store is over a bound: the least recently used of the scope holding the most (values past
// max_entries, bytes past max_bytes; between scopes holding as much, the one whose least recently used value was
// used longer ago). One client's long thinking then evicts its own oldest values, not another client's, while a
// lone client still has the whole store; the rule is the kept responses' (protocols/responses/owner-shares.ts),
// without a setting for the same reason. Each scope sits in two max-heaps (by count, by bytes), each keeping its
// position, so a write, an eviction or a recall costs O(log scopes), not a scan of every client.

export type Measure = "count" | "bytes";

interface Holding {
  /** The scope's ids, least recently used first, each with its use (the store's counter when kept or recalled). */
  readonly uses: Map<string, number>;
  bytes: number;
  /** Where the holding sits in each heap. */
  readonly at: Record<Measure, number>;
  /**
   * The least recently used value as last found, and the iterator over `uses` that found it, kept: a Map iterator
   * made anew walks every deleted slot at the head of its table (up to a table's worth after the head's removals or
   * uses), so a client's history recalled oldest first, or a write evicting many, cost the square of its values.
   */
  oldest: [string, number] | undefined;
  readonly cursor: MapIterator<[string, number]>;
}

export class ScopeHoldings {
  readonly #holdings = new Map<string, Holding>();
  readonly #heaps: Record<Measure, HoldingHeap> = { count: new HoldingHeap("count"), bytes: new HoldingHeap("bytes") };
  #uses = 0;

  /** The scopes the bookkeeping holds (a scope whose last value goes leaves it: clients come and gone cost nothing). */
  get size(): number {
    return Math.max(this.#holdings.size, this.#heaps.count.size, this.#heaps.bytes.size);
  }

  /** A value kept (`id` not held yet): the scope's most recently used. */
  add(scope: string, id: string, bytes: number): void {
    let holding = this.#holdings.get(scope);
    const isNew = holding === undefined;
    if (holding === undefined) {
      const uses = new Map<string, number>();
      holding = { uses, bytes: 0, at: { count: -1, bytes: -1 }, oldest: undefined, cursor: uses.entries() };
    }
    holding.uses.set(id, this.#uses++);
    holding.bytes += bytes;
    if (isNew) {
      this.#holdings.set(scope, holding);
      this.#heaps.count.insert(holding);
      this.#heaps.bytes.insert(holding);
    } else {
      this.#moved(holding);
    }
  }

  /** A value recalled: its scope's most recently used now. */
  use(scope: string, id: string): void {
    const holding = this.#holdings.get(scope);
    if (holding === undefined || !holding.uses.has(id)) return;
    // Only the scope's least recently used value breaks ties between scopes: using another one moves nothing.
    const isOldest = leastRecentlyUsed(holding)?.[0] === id;
    holding.uses.delete(id);
    holding.uses.set(id, this.#uses++);
    if (isOldest) this.#moved(holding);
  }

  remove(scope: string, id: string, bytes: number): void {
    const holding = this.#holdings.get(scope);
    if (holding === undefined || !holding.uses.delete(id)) return;
    holding.bytes -= bytes;
    if (holding.uses.size > 0) {
      this.#moved(holding);
      return;
    }
    this.#holdings.delete(scope);
    this.#heaps.count.remove(holding);
    this.#heaps.bytes.remove(holding);
  }

  /** The value to evict over the bound of `measure`: the least recently used of the scope holding the most. */
  victim(measure: Measure): string | undefined {
    const top = this.#heaps[measure].top();
    return top === undefined ? undefined : leastRecentlyUsed(top)?.[0];
  }

  #moved(holding: Holding): void {
    this.#heaps.count.update(holding);
    this.#heaps.bytes.update(holding);
  }
}

function leastRecentlyUsed(holding: Holding): [string, number] | undefined {
  let oldest = holding.oldest;
  // Gone or used since (a use is a new number): the next live one on from it is the oldest now, every earlier one gone.
  while (oldest === undefined || holding.uses.get(oldest[0]) !== oldest[1]) {
    const next = holding.cursor.next();
    if (next.done === true) return undefined;
    oldest = next.value;
  }
  holding.oldest = oldest;
  return oldest;
}

/** A binary max-heap of holdings by one measure, each holding knowing its own position (`at`). */
class HoldingHeap {
  readonly #items: Holding[] = [];
  readonly #measure: Measure;

  constructor(measure: Measure) {
    this.#measure = measure;
  }

  get size(): number {
    return this.#items.length;
  }

  top(): Holding | undefined {
    return this.#items[0];
  }

  insert(holding: Holding): void {
    holding.at[this.#measure] = this.#items.length;
    this.#items.push(holding);
    this.#up(this.#items.length - 1);
  }

  update(holding: Holding): void {
    const index = holding.at[this.#measure];
    this.#up(index);
    this.#down(holding.at[this.#measure]);
  }

  remove(holding: Holding): void {
    const index = holding.at[this.#measure];
    const last = this.#items.pop();
    if (last === undefined || last === holding) return;
    this.#items[index] = last;
    last.at[this.#measure] = index;
    this.update(last);
  }

  /** `a` gives way before `b`: it holds more, or as much with a least recently used value used longer ago. */
  #isBefore(a: Holding, b: Holding): boolean {
    const amountA = this.#measure === "count" ? a.uses.size : a.bytes;
    const amountB = this.#measure === "count" ? b.uses.size : b.bytes;
    if (amountA !== amountB) return amountA > amountB;
    return (leastRecentlyUsed(a)?.[1] ?? 0) < (leastRecentlyUsed(b)?.[1] ?? 0);
  }

  #up(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#swapIfBefore(index, parent)) return;
      index = parent;
    }
  }

  #down(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let first = index;
      const items = this.#items;
      const leftItem = items[left];
      const rightItem = items[right];
      const firstItem = items[first];
      if (firstItem === undefined) return;
      let best = firstItem;
      if (leftItem !== undefined && this.#isBefore(leftItem, best)) {
        first = left;
        best = leftItem;
      }
      if (rightItem !== undefined && this.#isBefore(rightItem, best)) first = right;
      if (first === index || !this.#swapIfBefore(first, index)) return;
      index = first;
    }
  }

  /** Swaps the items at `child` and `parent` when the child gives way first; says whether it did. */
  #swapIfBefore(child: number, parent: number): boolean {
    const childItem = this.#items[child];
    const parentItem = this.#items[parent];
    if (childItem === undefined || parentItem === undefined || !this.#isBefore(childItem, parentItem)) return false;
    this.#items[child] = parentItem;
    this.#items[parent] = childItem;
    childItem.at[this.#measure] = parent;
    parentItem.at[this.#measure] = child;
    return true;
  }
}
