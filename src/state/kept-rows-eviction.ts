// Which kept rows the state file evicts past its bounds (embedded-kept-responses.ts): row by row, the oldest of the
// owner (named client; '' for an unnamed key) holding the most of the bound that is exceeded (rows for max_entries,
// bytes for max_bytes; ties: the owner with the older row), as the in-memory stores and the Redis script do
// (protocols/responses/owner-shares.ts says why). What each owner holds is read once; the tallies follow here.

/** What one owner holds, and the write order (`seq`) of its oldest row. */
export interface Holder {
  readonly owner: string;
  count: number;
  bytes: number;
  oldest: number;
}

/**
 * Evicts until the totals are within the limits. `evictOldestOf` deletes the owner's oldest row and says its bytes
 * and the order of the owner's next-oldest row (undefined: none left), or undefined when the owner has no row.
 */
export function evictByOwner(
  totals: { count: number; bytes: number },
  limits: { readonly maxEntries: number; readonly maxBytes: number },
  holders: Holder[],
  evictOldestOf: (owner: string) => { bytes: number; nextOldest: number | undefined } | undefined,
): void {
  let { count, bytes } = totals;
  while (count > limits.maxEntries || bytes > limits.maxBytes) {
    const measure = count > limits.maxEntries ? "count" : "bytes";
    let holder: Holder | undefined;
    for (const candidate of holders) {
      if (candidate.count <= 0) continue;
      if (
        holder === undefined ||
        candidate[measure] > holder[measure] ||
        (candidate[measure] === holder[measure] && candidate.oldest < holder.oldest)
      ) {
        holder = candidate;
      }
    }
    if (holder === undefined) return;
    const evicted = evictOldestOf(holder.owner);
    if (evicted === undefined) {
      holder.count = 0;
      continue;
    }
    count--;
    bytes -= evicted.bytes;
    holder.count--;
    holder.bytes -= evicted.bytes;
    holder.oldest = evicted.nextOldest ?? Number.POSITIVE_INFINITY;
  }
}
