// Scripted upstream streams for the relay's unit tests (src/streaming/relay-*.test.ts): an opened stream that sends
// given texts, the options every test relays with, and readers of the relay's batches.
import assert from "node:assert/strict";
import type { OpenedStream } from "../../src/streaming/opened-stream.ts";
import type { relayStream } from "../../src/streaming/relay-stream.ts";
import { type SseEvent, SseParser } from "../../src/streaming/sse-parser.ts";
import { inspectEvent } from "../../src/streaming/stream-event.ts";

export const chunk = (content: string): string =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] })}\n\n`;

/** A stream that sends `texts`, then ends (`hang`: never ends, until aborted). */
export function opened(texts: readonly string[], ending: "end" | "hang"): OpenedStream {
  const pendingEvents: SseEvent[] = [];
  const parser = new SseParser((event) => pendingEvents.push(event));
  const controller = new AbortController();
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const text of texts) yield new TextEncoder().encode(text);
    if (ending === "hang") {
      await new Promise((resolve) => controller.signal.addEventListener("abort", resolve, { once: true }));
      throw new Error("aborted");
    }
  }
  return {
    iterator: body(),
    parser,
    pendingEvents,
    controller,
    streamIdleTimeoutMs: 60_000,
    startedAtMs: Date.now(),
    inspect: inspectEvent,
  };
}

export type RelayOptions = Parameters<typeof relayStream>[1];

/** What every test relays with (generous bounds, nothing stripped or redacted, a client that stays), plus its own. */
export function relayOptions(own: Partial<RelayOptions> = {}): RelayOptions {
  return {
    maxDurationMs: 60_000,
    maxMalformedEvents: 3,
    maxRetainedChars: 1_000_000,
    shouldStripUsage: false,
    signal: new AbortController().signal,
    redact: (text) => text,
    ...own,
  };
}

/** Reads the relay to its end; returns what it ended with. */
export async function readToEnd(relay: ReturnType<typeof relayStream>) {
  let result = await relay.next();
  while (result.done !== true) result = await relay.next();
  return result.value;
}

/** Reads the relay's events until one holds `needle`; the relay must not end before. */
export async function readUntil(relay: ReturnType<typeof relayStream>, needle: string): Promise<void> {
  const texts: string[] = [];
  while (!texts.some((data) => data.includes(needle))) {
    const next = await relay.next();
    assert.equal(next.done, false);
    for (const item of next.value as readonly { data: string }[]) texts.push(item.data);
  }
}
