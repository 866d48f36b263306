// Reading an upstream body with a bound: an upstream may send a body of any size (a 600 MB JSON answer, a
// 300 MB error page), and reading it whole would cost the gateway several times that in memory. This reads a
// stream's error body from undici's body stream; a JSON call collects its answer with the same bound
// (`BoundedChunks`) in its own undici handler (buffered-call.ts).
//
// Plain 'data'/'end' listeners rather than `for await`: a stream's async iterator adds an iterator, an
// end-of-stream watcher, a promise per chunk and several ticks to every answer read (about 4 KB allocated and
// ~4 % of a JSON request's CPU in a profile), for the same result.
import type { Dispatcher } from "undici";

export interface BoundedBody {
  /** The body's text; when truncated, only its first `maxBytes` bytes (a split character becomes U+FFFD). */
  readonly text: string;
  /** The body was longer than `maxBytes`; the rest was not read (the caller closes the connection). */
  readonly isTruncated: boolean;
}

/** What the async iterator threw when a body closed before its end without an error of its own. */
class PrematureCloseError extends Error {
  readonly code = "ERR_STREAM_PREMATURE_CLOSE";
  constructor() {
    super("Premature close");
  }
}

function ignore(): void {}

/**
 * The first `maxBytes` bytes of a body, collected chunk by chunk: the one bound both ways of reading an upstream
 * body share (`readBodyBounded` here, for streams' error bodies; buffered-call.ts, for JSON calls).
 */
export class BoundedChunks {
  readonly #chunks: Buffer[] = [];
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Adds a chunk; false when it goes past the bound (only its part within the bound is kept: truncated). */
  push(chunk: Buffer): boolean {
    if (this.#bytes + chunk.byteLength > this.#maxBytes) {
      this.#chunks.push(chunk.subarray(0, this.#maxBytes - this.#bytes));
      this.#bytes = this.#maxBytes;
      return false;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    return true;
  }

  /** What was kept, as UTF-8 (a character split by the bound becomes U+FFFD). */
  text(): string {
    return this.bytes().toString("utf8");
  }

  /** What was kept, as bytes (a binary answer: audio). */
  bytes(): Buffer {
    const chunks = this.#chunks;
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bytes);
  }
}

export function readBodyBounded(body: Dispatcher.ResponseData["body"], maxBytes: number): Promise<BoundedBody> {
  return new Promise((resolve, reject) => {
    const kept = new BoundedChunks(maxBytes);
    const settle = (): void => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", onError);
      body.off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      if (!kept.push(chunk)) {
        settle();
        // Nobody reads the rest: as leaving a `for await` early did, the body is destroyed (the caller also
        // aborts the request, which closes the connection). undici reports that as an AbortError event, which
        // must have a listener or it would be an uncaught error.
        body.on("error", ignore);
        body.destroy();
        resolve({ text: kept.text(), isTruncated: true });
      }
    };
    const onEnd = (): void => {
      settle();
      resolve({ text: kept.text(), isTruncated: false });
    };
    const onError = (error: Error): void => {
      settle();
      reject(error);
    };
    // Destroyed without an error (an abort that gave no reason): never an answer.
    const onClose = (): void => {
      settle();
      reject(body.errored ?? new PrematureCloseError());
    };
    if (body.errored !== null) {
      reject(body.errored);
      return;
    }
    if (body.destroyed) {
      reject(new PrematureCloseError());
      return;
    }
    body.on("data", onData);
    body.on("end", onEnd);
    body.on("error", onError);
    body.on("close", onClose);
  });
}
