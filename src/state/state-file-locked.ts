// The answer to a request whose statement on the embedded state file stayed refused the lock another process holds
// (a backup, sqlite3 in a shell) past a bounded wait that left the event loop serving (sqlite-file.ts whenUnlocked):
// a 503 that says so, rather than "cannot be reached" (a local file is there, only locked) or an opaque 500.
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { isBusyError } from "../sqlite-file.ts";

/** ms a client refused for a locked file is told to wait. */
const LOCKED_RETRY_AFTER_MS = 1_000;

/** A busy error as the 503 a route answers; any other error as it is. */
export function lockedAsUnavailable(error: unknown): unknown {
  if (!isBusyError(error)) return error;
  return new ServiceUnavailableError(
    "The gateway's state file (state.path) is locked by another process; try again shortly.",
    { cause: error, retryAfterMs: LOCKED_RETRY_AFTER_MS },
  );
}

/** For a promise's catch: rethrows `lockedAsUnavailable(error)`. */
export function throwLockedAsUnavailable(error: unknown): never {
  throw lockedAsUnavailable(error);
}
