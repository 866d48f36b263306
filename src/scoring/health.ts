// Time-decayed health of one provider+model: success rate and latency, weighted by how recent each attempt was.
import type { Clock } from "../clock.ts";

export interface HealthSnapshot {
  /** Decayed share of successful attempts, 0..1; absent before the first attempt. */
  readonly successEwma?: number;
  /** Decayed mean latency of successful attempts, milliseconds; absent before the first success. */
  readonly latencyEwmaMs?: number;
  /**
   * Decayed number of attempts behind the numbers: each attempt counts 1 when it happens and half as much
   * every half-life after. The score ignores health below a few samples, so an idle candidate's old failures
   * fade until it is tried again.
   */
  readonly samples: number;
}

export interface HealthTrackerOptions {
  /** How long until an attempt weighs half as much. Default 300 000 ms (5 minutes). */
  readonly halfLifeMs?: number;
}

const DEFAULT_HEALTH_HALF_LIFE_MS = 300_000;

/**
 * An exponentially weighted average over time, not over attempts: weights decay with elapsed time, so a burst
 * of failures an hour ago says little, and a busy candidate and a quiet one forget at the same pace.
 * Latency is averaged over successes only: a fast 429 or 500 says nothing about how fast answers come.
 *
 * Failures count only while they are the latest evidence and recent (docs/routing.md "Recovery"): a success
 * forgets every failure before it (unless its request was sent before the latest failure came back: then it is one
 * success more), and failures older than `failureMemoryMs` (passed to `snapshot`) are
 * forgotten too. A candidate that gets no traffic because of its failures must not stay penalised for ever.
 * Failures that keep coming between successes are still seen: the circuit breaker counts them
 * (limits/failure-window.ts) and takes a candidate failing often out, which a penalty reset by every success
 * could not.
 */
export class HealthTracker {
  readonly #clock: Clock;
  readonly #halfLifeMs: number;
  #updatedAtMs: number;
  #weight = 0;
  #successWeight = 0;
  #latencyWeight = 0;
  #latencySumMs = 0;
  /** When the latest attempt failed; undefined when the latest attempt succeeded (or none happened). */
  #lastFailureAtMs: number | undefined;

  constructor(clock: Clock, options: HealthTrackerOptions = {}) {
    const halfLifeMs = options.halfLifeMs ?? DEFAULT_HEALTH_HALF_LIFE_MS;
    if (!(halfLifeMs > 0)) throw new RangeError(`halfLifeMs must be > 0, got ${halfLifeMs}`);
    this.#clock = clock;
    this.#halfLifeMs = halfLifeMs;
    this.#updatedAtMs = clock.now();
  }

  /** `sentAtMs`: when the attempt was sent (default: now); a success's request sent before the latest failure came back. */
  record(isSuccess: boolean, latencyMs: number, sentAtMs = this.#clock.now()): void {
    this.#decayTo(this.#clock.now());
    this.#weight += 1;
    if (!isSuccess) {
      this.#lastFailureAtMs = this.#clock.now();
      return;
    }
    // A failure later than now is of a clock that stepped back since: not known to be newer than this request.
    const lastFailureAtMs = this.#lastFailureAtMs;
    if (lastFailureAtMs !== undefined && sentAtMs < lastFailureAtMs && lastFailureAtMs <= this.#clock.now()) {
      // Sent before the latest failure came back (a slow answer, a long stream's end): it says how the candidate was
      // then, so it counts as one success and forgets no failure; forgetting them on it put a candidate failing
      // every new request back at full health with each slow answer of an older one.
      this.#successWeight += 1;
    } else {
      // A success is the latest evidence: the failures before it no longer count.
      this.#lastFailureAtMs = undefined;
      this.#successWeight = this.#weight;
    }
    if (Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#latencyWeight += 1;
      this.#latencySumMs += latencyMs;
    }
  }

  /** `failureMemoryMs`: failures older than this (and no success since) are forgotten. */
  snapshot(failureMemoryMs = Number.POSITIVE_INFINITY): HealthSnapshot {
    const nowMs = this.#clock.now();
    const factor = this.#decayFactor(nowMs);
    const weight = this.#weight * factor;
    if (weight <= 0) return { samples: 0 };
    const isFailureForgotten = this.#lastFailureAtMs !== undefined && nowMs - this.#lastFailureAtMs > failureMemoryMs;
    const successEwma = isFailureForgotten ? 1 : this.#successWeight / this.#weight;
    const samples = weight;
    if (this.#latencyWeight <= 0) return { successEwma, samples };
    return { successEwma, latencyEwmaMs: this.#latencySumMs / this.#latencyWeight, samples };
  }

  #decayFactor(nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - this.#updatedAtMs);
    return elapsedMs === 0 ? 1 : 2 ** (-elapsedMs / this.#halfLifeMs);
  }

  #decayTo(nowMs: number): void {
    const factor = this.#decayFactor(nowMs);
    this.#weight *= factor;
    this.#successWeight *= factor;
    this.#latencyWeight *= factor;
    this.#latencySumMs *= factor;
    this.#updatedAtMs = Math.max(this.#updatedAtMs, nowMs);
  }
}
