// An attempt's provider slot (`max_in_flight`, limits/in-flight-gate.ts), given back only once what the attempt taught
// is recorded (failover.ts `attemptEnded`).
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";

export interface HeldSlot {
  /** What the attempt calls when its upstream body closes: the slot is passed on now, or once the attempt is recorded. */
  readonly release: ReleaseSlot;
  /**
   * Another slot of the attempt, given back with this one: once the attempt is recorded (at once when it is). A Llama
   * Guard moderation's parallel call that failed (moderation-attempt.ts): the attempt is recorded only when its other
   * calls end, and a request waiting for that call's slot would meanwhile be sent where the failure (a 529) said not to.
   */
  alongside(release: ReleaseSlot): void;
  /** The attempt's report was applied (cooldowns, circuits): a release asked for before goes through now. */
  recorded(): void;
  /**
   * The attempt threw, with no report to apply: everything is given back now. The throw may come before the attempt
   * asked for its slot back (a body it could not build), and then no one else would (a release asked for already
   * makes this one a no-op: in-flight-gate.ts releases once).
   */
  thrown(): void;
}

/**
 * The gate passes a given-back slot straight to the first waiting request, in the same call, and that request is
 * admitted (cooldowns read) within a few microtasks; the attempt's answer is recorded only after the attempt returns.
 * A 529's error body closes first: given back then, the slot took the waiting request to the provider that had just
 * answered "overloaded", before its capacity cooldown stood, and caused the second 529 it asked not to get.
 */
export function slotHeldUntilRecorded(release: ReleaseSlot): HeldSlot {
  let isReleaseAsked = false;
  let isRecorded = false;
  const others: ReleaseSlot[] = [];
  return {
    release: () => {
      if (isRecorded) release();
      else isReleaseAsked = true;
    },
    alongside: (other) => {
      if (isRecorded) other();
      else others.push(other);
    },
    recorded,
    thrown: () => {
      isReleaseAsked = true;
      recorded();
    },
  };
  function recorded(): void {
    isRecorded = true;
    if (isReleaseAsked) release();
    for (const other of others.splice(0)) other();
  }
}
