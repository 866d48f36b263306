// A non-streamed upstream call read whole, with a bound, through undici's `dispatch` handler API.
//
// Why not `dispatcher.request()` plus a bounded read of its body (read-body.ts), as streams still do: `request()`
// wraps every answer in a Readable (with its buffering, events and end-of-stream bookkeeping), an AsyncResource and
// a signal listener of its own, only for the bytes to be collected into one string here. Measured (bench/README.md
// section 8): ~10 µs less CPU per JSON request in the gateway; 73 against 91 µs per request in a Fastify proxy.
import type { Dispatcher } from "undici";
import type { HeaderMap } from "../limits/header-map.ts";
import { BoundedChunks } from "./read-body.ts";

export interface BufferedResponse {
  readonly statusCode: number;
  readonly headers: HeaderMap;
  /** The body's text; when truncated, only its first bytes (a split character becomes U+FFFD). "" with `bytes`. */
  readonly text: string;
  /** A 2xx body's bytes, when the call asked for them (`isBinary`); undefined otherwise. */
  readonly bytes: Buffer | undefined;
  /** The body was longer than its bound (or not read at all): the rest was not read and the call was aborted. */
  readonly isTruncated: boolean;
}

export interface BufferedCallOptions {
  /** Aborts the call (before or while the body is read); the promise rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /**
   * The most bytes of body read for an answer with this status; past them the call is aborted and the answer
   * resolved truncated. 0: the body is not read at all (a redirect, or an answer refused by its headers).
   */
  readonly maxBodyBytes: (statusCode: number, headers: HeaderMap) => number;
  /**
   * A 2xx body is kept as bytes (`bytes`), not decoded as UTF-8: an audio answer. An error body is text either way
   * (it is classified as one).
   */
  readonly isBinary?: boolean;
  /** Called once, when undici hands the request to a connection, right before writing it. */
  readonly onRequestStart?: () => void;
  /** Called once, when the final status and headers arrive (before the body). */
  readonly onHeaders?: () => void;
}

/**
 * Sends `options` (undici dispatch options) and resolves with the whole answer, or its bounded start. Rejects with
 * undici's error (network, timeouts) or the signal's reason.
 */
export function bufferedCall(
  dispatcher: Dispatcher,
  request: Dispatcher.DispatchOptions,
  options: BufferedCallOptions,
): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    const { signal } = options;
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const handler = new BufferedCallHandler(options, resolve, reject);
    signal.addEventListener("abort", handler.onAbort, { once: true });
    try {
      dispatcher.dispatch(request, handler);
    } catch (error) {
      handler.fail(error);
    }
  });
}

/** One object per call, its methods on the prototype (closures per call would be several allocations more). */
class BufferedCallHandler implements Dispatcher.DispatchHandler {
  readonly #options: BufferedCallOptions;
  readonly #resolve: (response: BufferedResponse) => void;
  readonly #reject: (error: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #isSettled = false;
  #statusCode = 0;
  #headers: HeaderMap = {};
  /** Set when the headers come: the bound depends on the status. */
  #kept: BoundedChunks | undefined;

  constructor(
    options: BufferedCallOptions,
    resolve: (response: BufferedResponse) => void,
    reject: (error: unknown) => void,
  ) {
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** The signal's listener. Before the request starts there is nothing to abort yet: `onRequestStart` checks. */
  readonly onAbort = (): void => {
    this.#controller?.abort(this.#options.signal.reason);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Aborted while the request waited for a connection: it is never sent.
    const { signal } = this.#options;
    if (signal.aborted) controller.abort(signal.reason);
    else this.#options.onRequestStart?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderMap): void {
    // 1xx (informational) answers precede the final one.
    if (statusCode < 200 || this.#isSettled) return;
    this.#statusCode = statusCode;
    this.#headers = headers;
    const maxBytes = this.#options.maxBodyBytes(statusCode, headers);
    this.#kept = new BoundedChunks(maxBytes);
    this.#options.onHeaders?.();
    if (maxBytes <= 0) {
      this.#answer(true);
      controller.abort(new Error("the body is not read"));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#isSettled || this.#kept === undefined) return;
    if (!this.#kept.push(chunk)) {
      this.#answer(true);
      // Nobody reads the rest: the connection is closed rather than drained of an unbounded body.
      controller.abort(new Error("the body is larger than its bound"));
    }
  }

  onResponseEnd(): void {
    this.#answer(false);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error);
  }

  fail(error: unknown): void {
    if (this.#settle()) this.#reject(error);
  }

  #answer(isTruncated: boolean): void {
    if (!this.#settle()) return;
    const kept = this.#kept;
    // One shape for both kinds of answer (`bytes` always set), so the JSON path's readers stay monomorphic.
    const isBytes = this.#options.isBinary === true && this.#statusCode < 300 && kept !== undefined;
    this.#resolve({
      statusCode: this.#statusCode,
      headers: this.#headers,
      text: isBytes ? "" : (kept?.text() ?? ""),
      bytes: isBytes ? kept.bytes() : undefined,
      isTruncated,
    });
  }

  #settle(): boolean {
    if (this.#isSettled) return false;
    this.#isSettled = true;
    this.#options.signal.removeEventListener("abort", this.onAbort);
    return true;
  }
}
