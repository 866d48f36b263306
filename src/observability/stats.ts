// Per provider+model counters behind GET /stats. Plain numbers, updated in place: this runs on every request.

export interface DeploymentStats {
  successes: number;
  failures: number;
  tokensIn: number;
  tokensOut: number;
  latencyMinMs: number;
  latencyMaxMs: number;
  latencyTotalMs: number;
}

export class StatsBook {
  readonly #byKey = new Map<string, DeploymentStats>();

  recordSuccess(key: string, latencyMs: number, tokensIn: number, tokensOut: number): void {
    const stats = this.#get(key);
    stats.successes += 1;
    stats.tokensIn += tokensIn;
    stats.tokensOut += tokensOut;
    stats.latencyTotalMs += latencyMs;
    if (latencyMs < stats.latencyMinMs) stats.latencyMinMs = latencyMs;
    if (latencyMs > stats.latencyMaxMs) stats.latencyMaxMs = latencyMs;
  }

  /**
   * Tokens of an attempt that was not a success (a stream that broke after it started: its provider billed what it
   * had generated), counted without a success or a failure (the caller counts the failure, when there is one).
   */
  recordTokens(key: string, tokensIn: number, tokensOut: number): void {
    const stats = this.#get(key);
    stats.tokensIn += tokensIn;
    stats.tokensOut += tokensOut;
  }

  recordFailure(key: string): void {
    this.#get(key).failures += 1;
  }

  get(key: string): Readonly<DeploymentStats> | undefined {
    return this.#byKey.get(key);
  }

  #get(key: string): DeploymentStats {
    let stats = this.#byKey.get(key);
    if (stats === undefined) {
      stats = {
        successes: 0,
        failures: 0,
        tokensIn: 0,
        tokensOut: 0,
        latencyMinMs: Number.POSITIVE_INFINITY,
        latencyMaxMs: 0,
        latencyTotalMs: 0,
      };
      this.#byKey.set(key, stats);
    }
    return stats;
  }
}
