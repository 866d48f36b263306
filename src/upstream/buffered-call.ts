// A non-streamed upstream call read whole, with a bound, through undici's `dispatch` handler API.
//
// Why not `dispatcher.request()` plus a bounded read of its body (read-body.ts), as streams still do: `request()`
// wraps every answer in a Readable (with its buffering, events and end-of-stream bookkeeping), an AsyncResource and
// a signal listener of its own, only for the bytes to be collected into one string here. Measured in a Fastify
// proxy (bench/README.md, "JSON attempts"): ~18 µs less CPU per JSON request with the handler below.
import type { Dispatcher } from "undici";
import type { HeaderMap } from "../limits/header-map.ts";

export interface BufferedResponse {
  readonly statusCode: number;
  readonly headers: HeaderMap;
  /** The body's text; when truncated, only its first bytes (a split character becomes U+FFFD). */
  readonly text: string;
  /** The body was longer than its bound (or not read at all): the rest was not read and the call was aborted. */
  readonly isTruncated: boolean;
}

export interface BufferedCallOptions {
  /** Aborts the call (before or while the body is read); the promise rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /**
   * The most bytes of body read for an answer with this status; past them the call is aborted and the answer
   * resolved truncated. 0: the body is not read at all (a redirect, which is never relayed).
   */
  readonly maxBodyBytes: (statusCode: number) => number;
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
  const { signal } = options;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let isSettled = false;
    let statusCode = 0;
    let headers: HeaderMap = {};
    let maxBytes = 0;
    let bytes = 0;
    const chunks: Buffer[] = [];
    const onAbort = (): void => {
      controller?.abort(signal.reason);
    };
    const settle = (): boolean => {
      if (isSettled) return false;
      isSettled = true;
      signal.removeEventListener("abort", onAbort);
      return true;
    };
    const answer = (isTruncated: boolean): void => {
      if (!settle()) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      resolve({ statusCode, headers, text: body.toString("utf8"), isTruncated });
    };
    const fail = (error: unknown): void => {
      if (settle()) reject(error);
    };
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      dispatcher.dispatch(request, {
        onRequestStart(started) {
          controller = started;
          // Aborted while the request waited for a connection: it is never sent.
          if (signal.aborted) started.abort(signal.reason);
        },
        onResponseStart(started, status, received) {
          // 1xx (informational) answers precede the final one.
          if (status < 200 || isSettled) return;
          statusCode = status;
          headers = received as HeaderMap;
          maxBytes = options.maxBodyBytes(status);
          options.onHeaders?.();
          if (maxBytes <= 0) {
            answer(true);
            started.abort(new Error("the body is not read"));
          }
        },
        onResponseData(started, chunk) {
          if (isSettled) return;
          if (bytes + chunk.byteLength > maxBytes) {
            chunks.push(chunk.subarray(0, maxBytes - bytes));
            answer(true);
            // Nobody reads the rest: the connection is closed rather than drained of an unbounded body.
            started.abort(new Error("the body is larger than its bound"));
            return;
          }
          chunks.push(chunk);
          bytes += chunk.byteLength;
        },
        onResponseEnd() {
          answer(false);
        },
        onResponseError(_controller, error) {
          fail(error);
        },
      });
    } catch (error) {
      fail(error);
    }
  });
}
