// How long a shared write that failed while Redis was up (a timeout, a refused PUBLISH) waits before it is sent
// again. A refusal does not mark Redis down (RedisLink.recordFailure: an error reply says nothing about reachability),
// so nothing else stops the retries: at a fixed 250 ms, a Redis that refused every PUBLISH (an ACL without the
// channel, a proxy that bans pub/sub) took four writes a second from every replica, for as long as it refused. The
// delay doubles at each failed round up to a ceiling, and goes back to the first once a round succeeds whole. Jitter:
// replicas that met the same refusal at the same moment do not retry in step. Pure: the caller owns the timer, and
// tests inject the random source.

/** ms before the first retry of a failed shared write. */
export const FIRST_RETRY_MS = 250;
/** ms between retries at most, however long the writes keep failing. */
export const MAX_RETRY_MS = 10_000;
/** Each delay is moved by up to this fraction of itself, either way. */
const JITTER = 0.2;

export class RetryBackoff {
  readonly #random: () => number;
  #failedRounds = 0;

  /** `random`: in [0, 1), as Math.random. */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** ms to wait before the next retry; each call counts one more round that failed. */
  nextDelayMs(): number {
    const baseMs = Math.min(FIRST_RETRY_MS * 2 ** this.#failedRounds, MAX_RETRY_MS);
    if (baseMs < MAX_RETRY_MS) this.#failedRounds++;
    return Math.round(baseMs * (1 - JITTER + 2 * JITTER * this.#random()));
  }

  /** A round of retries succeeded whole: the next failure waits FIRST_RETRY_MS again. */
  reset(): void {
    this.#failedRounds = 0;
  }
}
