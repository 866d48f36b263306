// `request_log.file`: every finished request also appended as one JSON line to a file (for log shippers and
// `jq`), written in batches off the request path. Same content rules as the request log.
import { dirname } from "node:path";
import { appendFile, mkdir } from "../async-fs.ts";
import { recordJson, WRITE_BATCH_ROWS } from "./request-log.ts";
import type { RequestRecord } from "./request-record.ts";

/** Lines buffered beyond this are dropped (a disk that cannot keep up must not grow memory). */
const MAX_PENDING_LINES = 10_000;

export interface RequestLogFileOptions {
  readonly path: string;
  readonly isContentKept: boolean;
  readonly secrets?: () => readonly string[];
  /** ms between appends; default 500. */
  readonly flushIntervalMs?: number;
  readonly onError?: (error: unknown) => void;
}

export class RequestLogFile {
  readonly #options: RequestLogFileOptions;
  #lines: string[] = [];
  #writing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #isFailing = false;
  #hasDirectory = false;

  constructor(options: RequestLogFileOptions) {
    this.#options = options;
    this.#timer = setInterval(() => {
      this.flush().catch(() => {});
    }, options.flushIntervalMs ?? 500);
    this.#timer.unref();
  }

  readonly observe = (record: RequestRecord): void => {
    if (this.#lines.length >= MAX_PENDING_LINES) return;
    this.#lines.push(recordJson(record, this.#options.isContentKept, this.#options.secrets?.() ?? []));
    // As many lines as the request log's batch start an append without waiting for the timer (the same reason).
    if (this.#lines.length === WRITE_BATCH_ROWS) setImmediate(() => this.flush().catch(() => {}));
  };

  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#lines.length === 0) return;
      const text = `${this.#lines.join("\n")}\n`;
      this.#lines = [];
      try {
        if (!this.#hasDirectory) {
          await mkdir(dirname(this.#options.path), { recursive: true });
          this.#hasDirectory = true;
        }
        await appendFile(this.#options.path, text, { mode: 0o600 });
        this.#isFailing = false;
      } catch (error) {
        if (!this.#isFailing) this.#options.onError?.(error);
        this.#isFailing = true;
      }
    });
    return this.#writing;
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
