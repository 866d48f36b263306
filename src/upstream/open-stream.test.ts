// Opening a stream, then relaying it: the events read before the first content are parsed once, not once to open the
// stream and again to relay them (the first event is on the path to the client's first byte).
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Dispatcher } from "undici";
import { relayStream } from "../streaming/relay-stream.ts";
import type { SseEvent } from "../streaming/sse-parser.ts";
import { inspectEvent } from "../streaming/stream-event.ts";
import { openStream } from "./open-stream.ts";

const chunk = (delta: Record<string, unknown>, finishReason: string | null = null): string =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;

test("each event is inspected once, those read to open the stream included", async () => {
  const inspected = new Map<string, number>();
  const countingInspect = (event: SseEvent) => {
    inspected.set(event.data, (inspected.get(event.data) ?? 0) + 1);
    return inspectEvent(event);
  };
  // A role-only chunk, then content in the same read (the stream opens there), then more in later reads.
  const body = Readable.from([
    Buffer.from(chunk({ role: "assistant" }) + chunk({ content: "Hel" }) + chunk({ content: "lo" })),
    Buffer.from(chunk({ content: "!" })),
    Buffer.from(`${chunk({}, "stop")}data: [DONE]\n\n`),
  ]);
  const controller = new AbortController();
  const opened = await openStream({
    body: body as unknown as Dispatcher.ResponseData["body"],
    headers: { "content-type": "text/event-stream" },
    controller,
    signal: controller.signal,
    deadline: new AbortController().signal,
    clientSignal: new AbortController().signal,
    firstTokenTimeoutMs: 10_000,
    streamIdleTimeoutMs: 10_000,
    maxEventChars: 100_000,
    maxErrorBodyBytes: 100_000,
    inspect: countingInspect,
    nowMs: () => Date.now(),
  });
  assert.equal(opened.ok, true);
  if (!opened.ok) return;
  const relay = relayStream(
    { stream: opened.stream, isUsageInjected: false, finish: () => {} },
    {
      maxDurationMs: 10_000,
      maxMalformedEvents: 3,
      maxRetainedChars: 100_000,
      shouldStripUsage: false,
      signal: new AbortController().signal,
      redact: (text) => text,
    },
  );
  let text = "";
  let next = await relay.next();
  while (next.done !== true) {
    for (const item of next.value) text += item.data;
    next = await relay.next();
  }
  assert.equal(next.value.isSuccess, true);
  assert.match(text, /Hel.*lo.*!/s);
  assert.equal(inspected.size, 6);
  for (const [data, count] of inspected) assert.equal(count, 1, `${data} was inspected ${count} times`);
});
