// A transcription's seconds of audio reserved beside its request (docs/limits.md "Audio seconds"): the upload's
// seconds on the candidate's audio-seconds scopes (`ash`/`asd`), the request on its own scopes, all or nothing, and
// the seconds settled with the request. Pure ledger steps: the time comes from the caller (pipeline/recorder.ts).
import type { BudgetCost, BudgetLedger, BudgetScope, Denied, Reservation } from "./budget-types.ts";

/** A transcription's upload as its candidate's `ash`/`asd` budgets count it. */
export interface AudioCharge {
  readonly scopes: readonly BudgetScope[];
  /** Billed seconds: the upload's duration, at least the provider's `min_billed_audio_seconds`. */
  readonly seconds: number;
}

function isDenied(value: Reservation | Denied): value is Denied {
  return !("id" in value);
}

/**
 * Reserves the seconds, then the request: refused on the seconds, nothing else was charged; refused on the request's
 * own budgets, the seconds are given back (reconciled to none) before the refusal is told. Admitted, the request's
 * reservation carries the seconds' (Reservation.audio). Synchronous whenever the ledger is (the embedded book), as an
 * admission must be.
 */
export function reserveWithSeconds(
  budgets: BudgetLedger,
  audio: AudioCharge,
  scopes: readonly BudgetScope[],
  cost: BudgetCost,
  nowMs: number,
): Reservation | Denied | Promise<Reservation | Denied> {
  const withSeconds = (seconds: Reservation | Denied): Reservation | Denied | Promise<Reservation | Denied> => {
    if (isDenied(seconds)) return seconds;
    const link = (reserved: Reservation | Denied): Reservation | Denied => {
      if (isDenied(reserved)) {
        budgets.reconcile(seconds, 0, nowMs);
        budgets.release(seconds);
      } else {
        reserved.audio = seconds;
      }
      return reserved;
    };
    const reserved = budgets.reserve(scopes, cost, nowMs);
    return reserved instanceof Promise ? reserved.then(link) : link(reserved);
  };
  const reserved = budgets.reserve(audio.scopes, { tokens: audio.seconds }, nowMs);
  return reserved instanceof Promise ? reserved.then(withSeconds) : withSeconds(reserved);
}

/**
 * Settles a transcription's seconds (Reservation.audio) with its request: `seconds` when the answer said how long the
 * audio was (a `verbose_json` answer's `duration`), 0 when the attempt failed (the provider counted nothing, as for a
 * failed attempt's tokens), else (undefined) the estimate it was reserved with stays. Idempotent.
 */
export function settleSeconds(
  budgets: BudgetLedger,
  reservation: Reservation,
  seconds: number | undefined,
  nowMs: number,
): void {
  const audio = reservation.audio;
  if (audio === undefined || audio.isReleased) return;
  if (seconds !== undefined && seconds !== audio.tokens) budgets.reconcile(audio, seconds, nowMs);
  budgets.release(audio);
}
