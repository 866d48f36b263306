// Faults of the process itself rather than of a request: promise rejections nobody handled (logged by the CLI's
// last-resort handler, which keeps the gateway serving). Counted per process, for `/metrics`, so that they can be
// alerted on: each one is a bug.

let unhandledRejections = 0;

export function countUnhandledRejection(): void {
  unhandledRejections += 1;
}

/** Unhandled promise rejections since the process started. */
export function unhandledRejectionCount(): number {
  return unhandledRejections;
}
