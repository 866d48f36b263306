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
  readonly waiters: Waiter[] = [];
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
      gate = new Gate();
      this.#gates.set(name, gate);
    }
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

  #releaser(name: string, gate: Gate): ReleaseSlot {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      const next = gate.waiters.shift();
      // The slot passes straight to the first waiter: a newcomer cannot take it in between.
      if (next !== undefined) next.grant(this.#releaser(name, gate));
      else {
        gate.inFlight--;
        if (gate.inFlight === 0) this.#gates.delete(name);
      }
    };
  }
}
