// The requests the server has open (from the handler's start until the pipeline has settled them), each with the signal its
// pipeline listens to. An exit that cannot wait for them (a second SIGTERM/SIGINT during a graceful shutdown) aborts
// every signal with the error it ends them with: each request then ends through its own pipeline, as when its client
// leaves (upstream hung up on, budget reservation reconciled, record published), and a client still there gets the
// error in its protocol. Cutting the sockets instead left streams without a record, their reservations unsettled.
import { GatewayError } from "../errors/gateway-error.ts";

export class OpenRequests {
  readonly #open = new Set<AbortController>();
  #waiting: (() => void)[] = [];
  #cut: GatewayError | undefined;

  /** A request begins: the controller of its signal (already aborted when the gateway has cut every request). */
  open(): AbortController {
    const controller = new AbortController();
    if (this.#cut !== undefined) controller.abort(this.#cut);
    this.#open.add(controller);
    return controller;
  }

  /** The pipeline settled it (its record published): an exit no longer waits for it. */
  close(controller: AbortController): void {
    if (!this.#open.delete(controller) || this.#open.size > 0) return;
    for (const done of this.#waiting.splice(0)) done();
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * Ends every open request with `reason`; resolves once the pipeline settled each one (the caller bounds the wait:
   * a stream whose client reads nothing waits for its socket to drain, until the socket is closed).
   */
  cutAll(reason: GatewayError): Promise<void> {
    this.#cut = reason;
    for (const controller of this.#open) controller.abort(reason);
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((done) => this.#waiting.push(done));
  }
}

/** The error the gateway ended the request with (its exit), or undefined when it was not cut (a client that left). */
export function cutReason(signal: AbortSignal): GatewayError | undefined {
  return signal.aborted && signal.reason instanceof GatewayError ? signal.reason : undefined;
}
