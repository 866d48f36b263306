// An upstream stream that has produced content and is ready to be relayed (upstream/open-stream.ts makes it).
// Defined here so that the relay depends only on this shape, never on the upstream layer.
import type { SseEvent, SseParser } from "./sse-parser.ts";
import type { EventInspector, StreamEventInfo } from "./stream-event.ts";

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
  /**
   * What `inspect` said of the events read before the stream opened (the first content's included): the relay takes
   * these, so each is parsed once (the first event is on the path to the client's first byte). Emptied as taken.
   */
  readonly inspected?: Map<SseEvent, StreamEventInfo> | undefined;
}

/** The stream's inspector, answering first from what opening the stream read (OpenedStream.inspected). */
export function inspectorOf(stream: OpenedStream): EventInspector {
  const known = stream.inspected;
  if (known === undefined || known.size === 0) return stream.inspect;
  return (event) => {
    const info = known.get(event);
    if (info === undefined) return stream.inspect(event);
    known.delete(event);
    return info;
  };
}
