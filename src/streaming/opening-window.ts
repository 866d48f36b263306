// The time a continuation has to open (relay-stream.ts): bounded by the client and by what is left of
// max_stream_duration_ms.
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import type { OpeningBound } from "./relay-types.ts";

/**
 * The time left to open a continuation: a signal that aborts when the client leaves or `remainingMs` passes. The
 * client's signal is linked by hand and unlinked on close (AbortSignal.any keeps its sources' listeners longer).
 */
export class OpeningWindow implements OpeningBound {
  readonly #controller = new AbortController();
  readonly #client: AbortSignal;
  readonly #timer: RequestTimer | undefined;
  readonly remainingMs: number;
  isExpired = false;

  constructor(client: AbortSignal, remainingMs: number) {
    this.#client = client;
    this.remainingMs = Math.max(0, remainingMs);
    if (client.aborted) this.#controller.abort();
    else if (this.remainingMs <= 0) this.#expire();
    else {
      client.addEventListener("abort", this.#onClientGone, { once: true });
      this.#timer = requestTimers.after(this.remainingMs, () => this.#expire());
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  close(): void {
    this.#timer?.cancel();
    this.#client.removeEventListener("abort", this.#onClientGone);
  }

  readonly #onClientGone = (): void => this.#controller.abort();

  #expire(): void {
    this.isExpired = true;
    this.#controller.abort();
  }
}
