// Concurrency-1 latency: one keep-alive connection, one request at a time, timed from the write of the request
// to the first body byte (time to first streamed byte) and to the end of the response. A raw socket with a
// minimal HTTP/1.1 response parser, so the client adds as little as possible (no HTTP library, no allocation
// per header) and the same small amount to every target.
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

export interface TimedResponse {
  readonly status: number;
  /** ms from the request's write to the first body byte. */
  readonly firstByteMs: number;
  /** ms from the request's write to the end of the body. */
  readonly totalMs: number;
  readonly body: string;
}

export interface LatencySamples {
  readonly firstByteMs: Float64Array;
  readonly totalMs: Float64Array;
  readonly errors: number;
  readonly firstError: string | undefined;
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
/** A response that takes longer than this is a failure, not a sample. */
const REQUEST_TIMEOUT_MS = 10_000;

type Phase = "head" | "fixed" | "chunk-size" | "chunk-data" | "chunk-end" | "trailer";

interface Pending {
  readonly startedAt: number;
  firstByteAt: number;
  status: number;
  readonly bodyParts: Buffer[];
  readonly timer: NodeJS.Timeout;
  resolve(response: TimedResponse): void;
  reject(error: Error): void;
}

export class LatencyClient {
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #phase: Phase = "head";
  #remaining = 0;
  #pending: Pending | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (error) => this.#fail(error));
    socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  static connect(port: number): Promise<LatencyClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true });
      socket.once("connect", () => resolve(new LatencyClient(socket)));
      socket.once("error", reject);
    });
  }

  request(raw: Buffer): Promise<TimedResponse> {
    if (this.#pending !== undefined) return Promise.reject(new Error("one request at a time"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error("timed out")), REQUEST_TIMEOUT_MS);
      this.#buffer = Buffer.alloc(0);
      this.#phase = "head";
      this.#pending = {
        startedAt: performance.now(),
        firstByteAt: 0,
        status: 0,
        bodyParts: [],
        timer,
        resolve,
        reject,
      };
      this.#socket.write(raw);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #fail(error: Error): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    this.#socket.destroy();
    pending.reject(error);
  }

  #onData(chunk: Buffer): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const now = performance.now();
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    try {
      this.#parse(pending, now);
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #body(pending: Pending, bytes: Buffer, now: number): void {
    if (bytes.length === 0) return;
    if (pending.firstByteAt === 0) pending.firstByteAt = now;
    pending.bodyParts.push(bytes);
  }

  #finish(pending: Pending, now: number): void {
    this.#pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve({
      status: pending.status,
      firstByteMs: (pending.firstByteAt === 0 ? now : pending.firstByteAt) - pending.startedAt,
      totalMs: now - pending.startedAt,
      body: Buffer.concat(pending.bodyParts).toString("utf8"),
    });
  }

  /** Consumes as much of the buffer as it can; bounded by the buffer, every step consumes bytes or returns. */
  #parse(pending: Pending, now: number): void {
    for (;;) {
      const buffer = this.#buffer;
      switch (this.#phase) {
        case "head": {
          const end = buffer.indexOf(HEAD_END);
          if (end < 0) return;
          const lines = buffer.toString("latin1", 0, end).split("\r\n");
          pending.status = Number(lines[0]?.split(" ")[1] ?? "0");
          let length: number | undefined;
          let isChunked = false;
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(":");
            const name = line.slice(0, colon).trim().toLowerCase();
            const value = line.slice(colon + 1).trim();
            if (name === "content-length") length = Number(value);
            else if (name === "transfer-encoding" && value.toLowerCase().includes("chunked")) isChunked = true;
          }
          this.#buffer = buffer.subarray(end + HEAD_END.length);
          if (isChunked) this.#phase = "chunk-size";
          else if (length !== undefined && length > 0) {
            this.#phase = "fixed";
            this.#remaining = length;
          } else {
            this.#finish(pending, now);
            return;
          }
          break;
        }
        case "fixed":
        case "chunk-data": {
          if (buffer.length === 0) return;
          const take = Math.min(this.#remaining, buffer.length);
          this.#body(pending, buffer.subarray(0, take), now);
          this.#remaining -= take;
          this.#buffer = buffer.subarray(take);
          if (this.#remaining > 0) return;
          if (this.#phase === "fixed") {
            this.#finish(pending, now);
            return;
          }
          this.#phase = "chunk-end";
          break;
        }
        case "chunk-end": {
          if (buffer.length < CRLF.length) return;
          this.#buffer = buffer.subarray(CRLF.length);
          this.#phase = "chunk-size";
          break;
        }
        case "chunk-size": {
          const end = buffer.indexOf(CRLF);
          if (end < 0) return;
          const size = Number.parseInt(buffer.toString("latin1", 0, end), 16);
          if (!Number.isFinite(size)) throw new Error("bad chunk size");
          this.#buffer = buffer.subarray(end + CRLF.length);
          if (size === 0) this.#phase = "trailer";
          else {
            this.#phase = "chunk-data";
            this.#remaining = size;
          }
          break;
        }
        case "trailer": {
          const end = buffer.indexOf(CRLF);
          if (end < 0) return;
          this.#buffer = buffer.subarray(end + CRLF.length);
          if (end === 0) {
            this.#finish(pending, now);
            return;
          }
          break;
        }
      }
    }
  }
}

export function rawPostRequest(port: number, path: string, body: string, headers: Record<string, string>): Buffer {
  const bodyBytes = Buffer.from(body);
  const head = [
    `POST ${path} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    `content-length: ${bodyBytes.length}`,
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head, "latin1"), bodyBytes]);
}

/**
 * Sequential requests for `durationMs` (at most `maxRequests`), after `warmupRequests` unrecorded ones.
 * `isValid` checks each answer, so a fast error page never passes for a fast answer.
 */
export async function measureSequential(options: {
  readonly port: number;
  readonly raw: Buffer;
  readonly warmupRequests: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  isValid(response: TimedResponse): boolean;
}): Promise<LatencySamples> {
  let client = await LatencyClient.connect(options.port);
  const firstByteMs = new Float64Array(options.maxRequests);
  const totalMs = new Float64Array(options.maxRequests);
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const run = async (isRecorded: boolean): Promise<void> => {
    try {
      const response = await client.request(options.raw);
      if (!options.isValid(response)) {
        errors++;
        firstError ??= `HTTP ${response.status}: ${response.body.slice(0, 200)}`;
        return;
      }
      if (isRecorded) {
        firstByteMs[count] = response.firstByteMs;
        totalMs[count] = response.totalMs;
        count++;
      }
    } catch (error) {
      errors++;
      firstError ??= error instanceof Error ? error.message : String(error);
      client.close();
      client = await LatencyClient.connect(options.port);
    }
  };
  try {
    for (let index = 0; index < options.warmupRequests; index++) await run(false);
    const endAt = performance.now() + options.durationMs;
    // Bounded twice: by the clock and by the sample buffer; errors count against the same bound.
    for (let index = 0; index < options.maxRequests && performance.now() < endAt; index++) await run(true);
  } finally {
    client.close();
  }
  return { firstByteMs: firstByteMs.slice(0, count), totalMs: totalMs.slice(0, count), errors, firstError };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: Float64Array, p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = samples.slice().sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
