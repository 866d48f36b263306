// An upstream stream that has produced content and is ready to be relayed (upstream/open-stream.ts makes it).
// Defined here so that the relay depends only on this shape, never on the upstream layer.
import type { SseEvent, SseParser } from "./sse-parser.ts";
import type { EventInspector } from "./stream-event.ts";

export interface OpenedStream {
  readonly iterator: AsyncIterator<Uint8Array>;
  readonly parser: SseParser;
  /** Events parsed and not yet written to the client; the parser appends here. */
  readonly pendingEvents: SseEvent[];
  /** Aborts the upstream request (client gone, stall, duration cap). */
  readonly controller: AbortController;
  readonly streamIdleTimeoutMs: number;
  readonly startedAtMs: number;
  /** Reads the stream's events (chat chunks, or a native protocol's events). */
  readonly inspect: EventInspector;
}
