// `providers[].max_in_flight`: how many requests may be in flight to one provider at once. More wait here, in
// arrival order, for a slot. Without this they would wait in the HTTP client's connection pool, where the wait
// counts against the provider's `timeout_ms` and ends as a provider failure (issue 13, finding 9); here the
// wait is the gateway's own, and the provider's timers start only once a request is actually sent.

/** Gives the slot back; idempotent. */
export type ReleaseSlot = () => void;

interface Waiter {
  grant(release: ReleaseSlot): void;
}

class Gate {
  inFlight = 0;
  /** The provider's `max_in_flight` as last asked with (a reload may raise or lower it while requests wait). */
  limit: number;
  readonly waiters: Waiter[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }
}

export class InFlightGates {
  readonly #gates = new Map<string, Gate>();

  /** Requests in flight to `name` now. */
  inFlight(name: string): number {
    return this.#gates.get(name)?.inFlight ?? 0;
  }

  /** Requests waiting for a slot of `name` now. */
  waiting(name: string): number {
    return this.#gates.get(name)?.waiters.length ?? 0;
  }

  /**
   * A slot of `name` (at most `limit` at once), waiting up to `maxWaitMs` for one; undefined when the wait ran
   * out or `signal` aborted first. A free slot is returned at once (not as a promise), so the caller can go on in
   * the same tick.
   */
  acquire(
    name: string,
    limit: number,
    maxWaitMs: number,
    signal: AbortSignal,
  ): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined> {
    let gate = this.#gates.get(name);
    if (gate === undefined) {
      gate = new Gate(limit);
      this.#gates.set(name, gate);
    } else this.resize(name, limit);
    if (gate.inFlight < limit && gate.waiters.length === 0) {
      gate.inFlight++;
      return this.#releaser(name, gate);
    }
    if (signal.aborted || maxWaitMs <= 0) return undefined;
    const waitingGate = gate;
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: (release) => {
          stop();
          resolve(release);
        },
      };
      const giveUp = (): void => {
        const index = waitingGate.waiters.indexOf(waiter);
        if (index >= 0) waitingGate.waiters.splice(index, 1);
        stop();
        resolve(undefined);
      };
      const timer = setTimeout(giveUp, maxWaitMs);
      const stop = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", giveUp);
      };
      signal.addEventListener("abort", giveUp, { once: true });
      waitingGate.waiters.push(waiter);
    });
  }

  /**
   * A config reload changed a provider's `max_in_flight`: a raised limit lets waiters in now (not only as slots are
   * given back); a lowered one is reached as requests in flight end (none is cut).
   */
  resize(name: string, limit: number): void {
    const gate = this.#gates.get(name);
    if (gate === undefined || gate.limit === limit) return;
    gate.limit = limit;
    this.#admitWaiters(name, gate);
  }

  #releaser(name: string, gate: Gate): ReleaseSlot {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      gate.inFlight--;
      // The slot passes straight to the first waiter, in the same call: a newcomer cannot take it in between. Under
      // a lowered limit it is not passed on until the requests in flight are below it.
      this.#admitWaiters(name, gate);
      if (gate.inFlight === 0 && gate.waiters.length === 0) this.#gates.delete(name);
    };
  }

  #admitWaiters(name: string, gate: Gate): void {
    while (gate.inFlight < gate.limit) {
      const next = gate.waiters.shift();
      if (next === undefined) return;
      gate.inFlight++;
      next.grant(this.#releaser(name, gate));
    }
  }
}
