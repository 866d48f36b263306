import type { Clock } from "../clock.ts";

/**
 * Sleeps until `clock` reads `untilMs`. A timer counts from the event loop's cached time, which lags the wall clock
 * by however long the loop's current turn has run: under load a 1 s timer fires tens of ms before `Date.now()`
 * reaches its end, and the candidate waited for (an rps window) would still be full and skipped. A few more
 * sleeps cover that lag; the bound keeps a clock that does not move (a test's manual clock) from looping.
 */
export async function sleepUntil(untilMs: number, clock: Clock, signal: AbortSignal): Promise<void> {
  for (let round = 0; round < 4 && untilMs > clock.now() && !signal.aborted; round++) {
    await sleep(untilMs - clock.now(), signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
