// How large and how long a budget lease may be (redis-budget-leases.ts); the reserve script (redis-lua.ts) applies
// them, docs/limits.md "Budget leases (high limits)" explains them.

/** A lease takes at most this fraction (1/n) of each rule's limit... */
export const LEASE_LIMIT_SHARE = 64;
/** ...and at most 1/n of what the rule has left after the request that takes it. */
export const LEASE_HEADROOM_SHARE = 4;
/** No lease smaller than this many requests (or this many requests' tokens): rpm below 256 never leases. */
export const MIN_LEASE_REQUESTS = 4;
/** The longest a lease lives, ms... */
export const MAX_LEASE_MS = 1_000;
/** ...and at most this fraction (1/n) of the shortest window it was charged to (16 ms with a per-second rule)... */
export const LEASE_WINDOW_SHARE = 60;
/**
 * ...unless this process handles Redis's replies late (a loaded event loop): then four times that lag, so
 * that a lease is not over before it is installed, but never more than this fraction (1/n) of the window.
 */
export const LEASE_SLOW_WINDOW_SHARE = 10;
