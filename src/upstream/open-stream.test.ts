// Opening a stream, then relaying it: the events read before the first content are parsed once, not once to open the
// stream and again to relay them (the first event is on the path to the client's first byte).
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Dispatcher } from "undici";
import { relayStream } from "../streaming/relay-stream.ts";
import type { SseEvent } from "../streaming/sse-parser.ts";
import { type EventInspector, inspectEvent } from "../streaming/stream-event.ts";
import { type OpenedStream, openStream } from "./open-stream.ts";

const chunk = (delta: Record<string, unknown>, finishReason: string | null = null): string =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;

/** An event stream opened on `body` with generous bounds. */
function openOn(body: Readable, inspect: EventInspector) {
  const controller = new AbortController();
  return openStream({
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
    inspect,
    nowMs: () => Date.now(),
  });
}

/** The relay of an opened stream, as the first segment of a chat answer. */
function relayOf(stream: OpenedStream) {
  return relayStream(
    { stream, isUsageInjected: false, finish: () => {} },
    {
      maxDurationMs: 10_000,
      maxMalformedEvents: 3,
      maxRetainedChars: 100_000,
      shouldStripUsage: false,
      signal: new AbortController().signal,
      redact: (text) => text,
    },
  );
}

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
  const opened = await openOn(body, countingInspect);
  assert.equal(opened.ok, true);
  if (!opened.ok) return;
  const relay = relayOf(opened.stream);
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

test("a stream whose first content undici has buffered opens without the body's async iterator", async () => {
  // As undici hands a response over: the head's socket read also brought the first chunk, pushed before the request's
  // promise resolved. The rest comes later, read by the relay through the iterator made then.
  const body = new Readable({ read() {} });
  body.push(Buffer.from(chunk({ role: "assistant", content: "Hel" })));
  const opened = await openOn(body, inspectEvent);
  assert.equal(opened.ok, true);
  if (!opened.ok) return;
  // The iterator listens for `readable` (and its end-of-stream listeners for `end`, `error`, `close`): none yet.
  assert.equal(body.listenerCount("readable"), 0);
  assert.equal(body.listenerCount("end"), 0);
  const relay = relayOf(opened.stream);
  const first = await relay.next();
  assert.equal(first.done, false);
  assert.match(JSON.stringify(first.value), /Hel/);
  setImmediate(() => {
    body.push(Buffer.from(chunk({ content: "lo" })));
    body.push(Buffer.from(`${chunk({}, "stop")}data: [DONE]\n\n`));
    body.push(null);
  });
  let text = "";
  let next = await relay.next();
  while (next.done !== true) {
    for (const item of next.value) text += item.data;
    next = await relay.next();
  }
  assert.equal(next.value.isSuccess, true);
  assert.match(text, /lo.*stop/s);
});

test("a body destroyed with a chunk still buffered does not open", async () => {
  // The client left (or a timer fired) after undici buffered the first chunk: nothing of it is relayed.
  const body = new Readable({ read() {} });
  body.push(Buffer.from(chunk({ role: "assistant", content: "Hel" })));
  body.destroy(new Error("aborted"));
  const opened = await openOn(body, inspectEvent);
  assert.equal(opened.ok, false);
});
