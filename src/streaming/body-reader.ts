// Pulls an upstream response body chunk by chunk, with backpressure, without the stream's async iterator.
//
// Why not `body[Symbol.asyncIterator]()`: that iterator is itself an async generator over `read()` with an
// end-of-stream watcher, and costs a promise and several ticks per chunk (about 4 KB per stream and a few % of a
// streamed request's CPU). This reader listens to 'data' in flowing mode: a chunk that arrives while the relay
// waits is handed over at once; those that arrive while it is busy are kept, and the relay takes them all before it
// renders (one write for all of them, as the iterator's `read()` of a paused stream gave them at once). Past
// `MAX_QUEUED_BYTES` (a slow client holds the relay) the body is paused, so the upstream socket is not read until
// the relay asks again: backpressure, as with the iterator.
import type { Readable } from "node:stream";

/** What is kept while the relay is busy before the body is paused: Node's default readable high-water mark. */
const MAX_QUEUED_BYTES = 64 * 1024;

/** What the iterator threw when a body closed before its end without an error of its own. */
export class PrematureCloseError extends Error {
  readonly code = "ERR_STREAM_PREMATURE_CLOSE";
  constructor() {
    super("Premature close");
  }
}

/** The part of a Node readable the reader uses (undici's response body is one). */
export type BodySource = Pick<Readable, "on" | "pause" | "resume" | "isPaused" | "destroyed" | "errored">;

export class BodyReader {
  readonly #body: BodySource;
  /** Chunks that arrived while nobody waited; at most about `MAX_QUEUED_BYTES` (then the body is paused). */
  readonly #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #isEnded = false;
  #error: unknown;
  #resolve: ((chunk: Uint8Array | undefined) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #isDraining = false;

  constructor(body: BodySource) {
    this.#body = body;
    if (body.errored !== null) this.#error = body.errored;
    else if (body.destroyed) this.#error = new PrematureCloseError();
    // Listeners stay for the body's life: an error after the relay stopped reading (an abort) must have one.
    body.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    body.on("end", () => this.#onEnd());
    body.on("error", (error: unknown) => this.#onError(error));
    body.on("close", () => this.#onClose());
  }

  /** The next chunk, or undefined at the end of the body; rejects when the body broke (or was aborted). */
  read(): Promise<Uint8Array | undefined> {
    const queued = this.poll();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#isEnded) return Promise.resolve(undefined);
    if (this.#body.isPaused()) this.#body.resume();
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Reads the rest and discards it; resolves when the body ends, breaks or is aborted. */
  drain(): Promise<void> {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#isDraining = true;
    return this.read().then(
      () => undefined,
      () => undefined,
    );
  }

  #onData(chunk: Uint8Array): void {
    if (this.#isDraining) return;
    const resolve = this.#resolve;
    if (resolve !== undefined) {
      this.#resolve = undefined;
      this.#reject = undefined;
      resolve(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#queuedBytes >= MAX_QUEUED_BYTES) this.#body.pause();
  }

  /** A chunk that has already arrived, without waiting; undefined when none has. */
  poll(): Uint8Array | undefined {
    const chunk = this.#queue.shift();
    if (chunk !== undefined) this.#queuedBytes -= chunk.byteLength;
    return chunk;
  }

  #onEnd(): void {
    if (this.#error !== undefined) return;
    this.#isEnded = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    resolve?.(undefined);
  }

  #onClose(): void {
    // 'close' follows 'end' (and 'error'): only a close before either is a premature one. (An error is built
    // only then: capturing its stack on every normal close costs more than the rest of the reader.)
    if (this.#isEnded || this.#error !== undefined) return;
    this.#onError(this.#body.errored ?? new PrematureCloseError());
  }

  #onError(error: unknown): void {
    if (this.#isEnded || this.#error !== undefined) return;
    this.#error = error;
    const reject = this.#reject;
    this.#resolve = undefined;
    this.#reject = undefined;
    reject?.(error);
  }
}
