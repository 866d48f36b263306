// The relay's batches carry the upstream's own bytes when they are exactly its events as they came (StreamBatch.bytes):
// the chat door writes those instead of building and encoding the same text (server/forwarding-route.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { opened, relayOptions } from "../../test/helpers/scripted-relay.ts";
import { relayStream } from "./relay-stream.ts";
import type { StreamBatch } from "./relay-types.ts";
import { sseData } from "./sse-format.ts";

const encoder = new TextEncoder();
const event = (delta: Record<string, unknown>, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

async function batchesOf(texts: readonly string[]): Promise<StreamBatch[]> {
  const relay = relayStream({ stream: opened(texts, "end"), isUsageInjected: false, finish() {} }, relayOptions());
  const batches: StreamBatch[] = [];
  for (let next = await relay.next(); next.done !== true; next = await relay.next()) batches.push(next.value);
  return batches;
}

/** What the chat door writes for a batch's chunks. */
const rendered = (batch: StreamBatch): Uint8Array => encoder.encode(batch.map((chunk) => sseData(chunk.data)).join(""));

test("each upstream read relayed as it came carries its bytes; the read the stream ends in, those before the end", async () => {
  const reads = [
    event({ role: "assistant", content: "Hel" }),
    event({ content: "lo" }) + event({ content: " there" }),
    event({}, "stop") + "data: [DONE]\n\n",
  ];
  const batches = await batchesOf(reads);
  assert.equal(batches.length, 3);
  assert.deepEqual(batches[0]?.bytes, encoder.encode(reads[0]));
  assert.deepEqual(batches[1]?.bytes, encoder.encode(reads[1]));
  assert.deepEqual(batches[2]?.bytes, encoder.encode(event({}, "stop")), "without the [DONE] the door writes itself");
  for (const batch of batches) assert.deepEqual(batch.bytes, rendered(batch));
});

test("a read with an event the gateway changed, or one it dropped before another, carries no bytes", async () => {
  const batches = await batchesOf([
    // The first delta gets the role the upstream left out (missing-roles.ts): changed.
    event({ content: "Hel" }) + event({ content: "lo" }),
    // A malformed event is dropped: the read's bytes are no longer what the door writes.
    "data: {not json\n\n" + event({ content: "!" }),
    event({}, "stop"),
  ]);
  assert.deepEqual(
    batches.map((batch) => batch.bytes === undefined),
    [true, true, false],
  );
  assert.match(batches[0]?.[0]?.data ?? "", /"role":"assistant"/);
});
