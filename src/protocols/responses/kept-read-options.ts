// How a read of the kept responses is bounded: a read a write follows answers within the write's bound.

/** How the kept store's steps are bounded (responses.store.write_timeout_ms): a write, or a read a write follows. */
export type BoundedStep = "write" | "read";

export interface KeptReadOptions {
  /**
   * A read a write follows (a cancel's): bounded by the store's write bound as that write is, so that the operation
   * answers within it (a paused Redis: the clear 503 of a write, not its 1 s command timeout as "cannot be reached").
   */
  readonly isBeforeWrite?: boolean;
}

/** The options of a cancel's reads (KeptReadOptions.isBeforeWrite). */
export const BEFORE_WRITE: KeptReadOptions = { isBeforeWrite: true };
