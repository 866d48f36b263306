// A background run's final write, and its answer's place in its conversation. Order: the answer's items are added to
// its conversation FIRST (background-responses.ts, while the run's heartbeats still go), and the final state written
// after. The other order (final state, then the items) let a client polling another replica (a shared Redis) read
// `completed` before the items were in the conversation: it sent the tool call's output there, and that replica
// answered 400 "No tool call found" (or, before that check, kept the output before its call). A final write refused
// (cancelled or deleted meanwhile, or too late: keepFinal) then takes out exactly the items the answer added (by their
// ids): such an answer does not join its conversation. The price: while the final write is under way the items are in
// the conversation and the response still reads in_progress (a client listing it then sees them, and, if the write is
// refused, sees them go).
import { setTimeout as sleep } from "node:timers/promises";
import { cancelledEvents } from "../protocols/responses/background.ts";
import { keptToken } from "../protocols/responses/kept-responses.ts";
import type { ResponseObject } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";

/**
 * What the final write uses of a run's BackgroundExchange (background-responses.ts, which extends it: the methods are
 * said once, here, in the lower module; that one importing back would be a cycle).
 */
export interface FinalWriteTarget {
  /**
   * Writes the response's state to the kept store if it is still `expected` (kept-responses.ts `putIfUnchanged`;
   * undefined: whatever is kept); `isFinal`: its end. The written state's token, or
   * undefined when it changed meanwhile (cancelled or deleted on another replica) or, with `notAfterMs`, the write
   * came too late (a shared store's clock past it). Throws when the store fails.
   */
  keep(
    response: ResponseObject,
    events: readonly string[] | undefined,
    isFinal: boolean,
    expected: string | undefined,
    notAfterMs?: number,
  ): Promise<string | undefined>;
  /** The kept state (to see a cancel another replica wrote). */
  read(): Promise<StoredResponse | undefined>;
  /** Takes out again the items `join` added (its final state was refused: it does not join its conversation). */
  leave(response: ResponseObject): Promise<void>;
}

/**
 * The final write (keepFinal); `isJoined`: the answer's items were added to its conversation before it, and are taken
 * out again unless the answer itself is what was kept. Not known (the store failed past every attempt): they stay
 * only if the kept state reads as the answer.
 */
export async function writeFinal(background: FinalWriteTarget, write: FinalWrite, isJoined: boolean): Promise<void> {
  let isAnswerKept = false;
  try {
    isAnswerKept = await keepFinal(background, write);
  } catch (error) {
    if (isJoined) isAnswerKept = await readsAsAnswer(background, write.finished);
    throw error;
  } finally {
    if (isJoined && !isAnswerKept) await background.leave(write.finished);
  }
}

/**
 * Whether the kept state reads as `finished` after the final write failed past its attempts (its last reply may have
 * been lost, the write landed). Read again after a pause when the read fails too: the store just failed, and one
 * read decided "not kept" while it was still down, taking a kept answer's items out once the removal got through.
 */
async function readsAsAnswer(background: FinalWriteTarget, finished: ResponseObject): Promise<boolean> {
  for (let attempt = 1; attempt <= MAX_FINAL_ATTEMPTS; attempt++) {
    try {
      const kept = await background.read();
      return kept !== undefined && kept.response.status === finished.status;
    } catch {
      if (attempt < MAX_FINAL_ATTEMPTS) await sleep(FINAL_RETRY_MS);
    }
  }
  return false;
}

/** Times the final write reads the kept state again when another replica changed it meanwhile (or the store failed). */
const MAX_FINAL_ATTEMPTS = 5;
/** ms the final write waits before it tries again after the store failed (a Redis reconnection: 1 s at most). */
const FINAL_RETRY_MS = 1_000;

/** What the run's final write writes, and what it writes instead when it comes too late. */
export interface FinalWrite {
  readonly finished: ResponseObject;
  readonly events: readonly string[] | undefined;
  /** What the run last wrote (undefined: its heartbeat found it changed since). */
  readonly expected: string | undefined;
  readonly notAfterMs: number;
  readonly isLate: () => boolean;
  /**
   * The run stopped (failed), as a reader elsewhere shows it once its heartbeat is stale: written, against the run's
   * last landed write, with the events that write had, when the final write is refused as too late.
   */
  readonly stopped: {
    readonly response: ResponseObject;
    readonly events: readonly string[] | undefined;
    readonly token: string;
  };
}

/**
 * The run's final write, against what it last wrote. Changed meanwhile: deleted stays deleted; cancelled stays
 * cancelled (the client was told so), with the output made; failed by a reader that found the run stopped stays
 * failed; anything else (an eviction and a new write cannot happen to a running response) is written over. Refused as
 * too late (the run's process was paused past BACKGROUND_LATE_WRITE_MS): the run is kept failed, as readers elsewhere
 * were or may have been shown it, never in_progress or completed after that. True when what it kept is the run's own end (`write.finished`), false when a
 * cancel, a DELETE or the lateness won.
 */
async function keepFinal(background: FinalWriteTarget, write: FinalWrite): Promise<boolean> {
  let { finished, events, expected } = write;
  let notAfterMs: number | undefined = write.notAfterMs;
  for (let attempt = 0; attempt < MAX_FINAL_ATTEMPTS; attempt++) {
    try {
      if (
        expected !== undefined &&
        (await background.keep(finished, events, true, expected, notAfterMs)) !== undefined
      ) {
        return finished === write.finished;
      }
      if (notAfterMs !== undefined && write.isLate()) {
        // The failure is what was shown, so it needs no deadline; a cancel or DELETE landed since still wins below.
        ({ response: finished, events, token: expected } = write.stopped);
        notAfterMs = undefined;
        continue;
      }
      const kept = await background.read();
      if (kept === undefined) return false;
      // Failed by a reader that found the run stopped (background-stopped.ts: its heartbeats stale, its items taken
      // out of its conversation): that is what clients were shown, so this answer is not written over it.
      if (kept.response.status === "failed" && finished.status !== "failed") return false;
      if (kept.response.status === "cancelled") {
        // The cancel landed first: the client was told cancelled, so the run's events end as a cancelled one's.
        const cancelled: ResponseObject = { ...finished, status: "cancelled", error: null };
        const ended = events === undefined ? undefined : cancelledEvents(events, cancelled);
        if ((await background.keep(cancelled, ended, true, keptToken(kept))) !== undefined) return false;
      }
      expected = keptToken(kept);
    } catch (error) {
      // The store could not be written or read, nor whether the write landed be known (Redis unreachable longer than
      // it waits for a lost reply's outcome; the state file locked past its wait): tried again after a pause, as
      // above (a write of this run's own that landed meanwhile is read and written again, the same). Given up, it is
      // logged; then the response reads failed by the stale rule unless the write had landed.
      if (attempt === MAX_FINAL_ATTEMPTS - 1) throw error;
      await sleep(FINAL_RETRY_MS);
    }
  }
  return false;
}
