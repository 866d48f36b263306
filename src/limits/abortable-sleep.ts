// One abortable wait for the two loops that wait between looks: the wait queue's (limits/wait-queue.ts, a duration
// until the next look) and the failover's (upstream/sleep-until.ts, which loops over it until an injected clock reads
// its end). Here, in the lower of the two layers, so both import it along the allowed arrows.

/**
 * Resolves after `ms` of real time, or as soon as `signal` aborts: resolved, not rejected (the waiter reads its
 * signal next, as after any wake). A signal aborted already resolves at once: its `abort` event has fired and
 * never fires again, so a listener added now would leave the wait its whole duration.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
