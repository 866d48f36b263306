import type { Clock } from "../clock.ts";
import { abortableSleep } from "../limits/abortable-sleep.ts";

/**
 * Sleeps until `clock` reads `untilMs`. A timer counts from the event loop's cached time, which lags the wall clock
 * by however long the loop's current turn has run: under load a 1 s timer fires tens of ms before `Date.now()`
 * reaches its end, and the candidate waited for (an rps window) would still be full and skipped. A few more
 * sleeps cover that lag; the bound keeps a clock that does not move (a test's manual clock) from looping.
 */
export async function sleepUntil(untilMs: number, clock: Clock, signal: AbortSignal): Promise<void> {
  for (let round = 0; round < 4 && untilMs > clock.now() && !signal.aborted; round++) {
    await abortableSleep(untilMs - clock.now(), signal);
  }
}
