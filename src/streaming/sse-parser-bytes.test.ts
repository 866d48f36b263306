// SseParser.bytesOf: the bytes of a pushed chunk that hold given events, only when writing those events again as
// `data: <data>\n\n` (sseData) would produce exactly those bytes. The chat door writes them in place of that text
// (server/forwarding-route.ts), so anything else the upstream sent (another form, another encoding) must give none.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sseData } from "./sse-format.ts";
import { type SseEvent, SseParser } from "./sse-parser.ts";

const encoder = new TextEncoder();

/** A parser fed `chunks` in turn; the events each push completed, and what bytesOf said of them. */
function pushes(chunks: readonly (Uint8Array | string)[]) {
  let events: SseEvent[] = [];
  const parser = new SseParser((event) => events.push(event));
  return chunks.map((chunk) => {
    events = [];
    parser.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
    return { events, bytes: parser.bytesOf(events), parser };
  });
}

/** What the chat door writes for these events. */
const rendered = (events: readonly SseEvent[]): Uint8Array =>
  encoder.encode(events.map((e) => sseData(e.data)).join(""));

test("a chunk of whole `data: ` events: its bytes for them all, its leading bytes for the first ones", () => {
  const text = 'data: {"a":1}\n\ndata: {"b":"two"}\n\ndata: [DONE]\n\n';
  const chunk = encoder.encode(text);
  const [push] = pushes([chunk]);
  assert.ok(push !== undefined);
  assert.equal(push.events.length, 3);
  assert.deepEqual(push.bytes, chunk);
  assert.equal(push.bytes?.buffer, chunk.buffer, "the chunk's own memory, not a copy");
  assert.deepEqual(
    push.parser.bytesOf(push.events.slice(0, 2)),
    encoder.encode('data: {"a":1}\n\ndata: {"b":"two"}\n\n'),
  );
  assert.deepEqual(push.parser.bytesOf(push.events.slice(0, 2)), rendered(push.events.slice(0, 2)));
  // Events equal to the chunk's by their data (a chunk the relay built again, unchanged) are the same bytes.
  assert.deepEqual(push.parser.bytesOf([{ data: '{"a":1}' }]), encoder.encode('data: {"a":1}\n\n'));
});

test("none when the chunk is not in that form, or the events are not the chunk's as they came", () => {
  const cases: readonly { readonly name: string; readonly chunks: readonly (Uint8Array | string)[] }[] = [
    { name: "no space after `data:`", chunks: ['data:{"a":1}\n\n'] },
    { name: "CRLF line ends", chunks: ['data: {"a":1}\r\n\r\n'] },
    { name: "CR line ends", chunks: ['data: {"a":1}\r\r'] },
    { name: "a comment", chunks: [': keep-alive\n\ndata: {"a":1}\n\n'] },
    { name: "an event name", chunks: ['event: message\ndata: {"a":1}\n\n'] },
    { name: "an id", chunks: ['id: 7\ndata: {"a":1}\n\n'] },
    { name: "a retry field", chunks: ['retry: 10\ndata: {"a":1}\n\n'] },
    { name: "two data lines", chunks: ["data: a\ndata: b\n\n"] },
    { name: "non-ASCII text", chunks: ['data: {"t":"héllo"}\n\n'] },
    { name: "a blank line that ends no event", chunks: ['data: {"a":1}\n\n\n'] },
    { name: "an event begun in the chunk before", chunks: ['data: {"a":', '1}\n\ndata: {"b":2}\n\n'] },
    { name: "a byte order mark", chunks: ['\uFEFFdata: {"a":1}\n\n'] },
    {
      name: "an invalid byte",
      chunks: [Uint8Array.from([...encoder.encode('data: {"t":"'), 0xff, ...encoder.encode('"}\n\n')])],
    },
    {
      name: "a character split across chunks",
      chunks: [
        Uint8Array.from([...encoder.encode("data: {}\n\n"), 0xc3]),
        Uint8Array.from([0xa9, ...encoder.encode("data: {}\n\n")]),
      ],
    },
  ];
  for (const { name, chunks } of cases) {
    const last = pushes(chunks).at(-1);
    assert.ok(last !== undefined);
    assert.equal(last.bytes, undefined, name);
  }
  // An event left open at the end is none of the chunk's events: the ones before it are its leading bytes.
  for (const chunk of ['data: {"a":1}\n\ndata: {"b"', 'data: {"a":1}\n\ndata: {"b":2}\n']) {
    const [open, next] = pushes([chunk, '}\n\ndata: {"c":3}\n\n']);
    assert.ok(open !== undefined && next !== undefined);
    assert.deepEqual(open.bytes, encoder.encode('data: {"a":1}\n\n'));
    assert.equal(next.bytes, undefined, "the chunk that ends it");
  }
  const [push] = pushes(['data: {"a":1}\n\n']);
  assert.ok(push !== undefined);
  assert.equal(push.parser.bytesOf([{ data: '{"a":2}' }]), undefined, "changed data");
  assert.equal(push.parser.bytesOf([...push.events, { data: '{"a":1}' }]), undefined, "more events than it held");
  assert.equal(push.parser.bytesOf([]), undefined, "no events");
  const texts = new SseParser(() => {});
  texts.push('data: {"a":1}\n\n');
  assert.equal(texts.bytesOf([{ data: '{"a":1}' }]), undefined, "text pushed, not bytes");
  push.parser.finish();
  assert.equal(push.parser.bytesOf(push.events), undefined, "after the stream's end");
});

test("random streams in random chunks: any bytes it gives are exactly what the door would write for the events", () => {
  const forms = [
    (data: string) => `data: ${data}\n\n`,
    (data: string) => `data:${data}\n\n`,
    (data: string) => `data: ${data}\r\n\r\n`,
    (data: string) => `: ping\ndata: ${data}\n\n`,
    (data: string) => `event: chunk\ndata: ${data}\n\n`,
    (data: string) => `data: ${data}\n\n\n`,
  ];
  const datas = ['{"a":1}', '{"t":"hé"}', '{"t":"東京🚀"}', "[DONE]", '{"t":"x"}', ""];
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  let withBytes = 0;
  for (let round = 0; round < 400; round++) {
    // Mostly the plain form, as most upstreams send; whole events per chunk half of the time, else cut anywhere.
    const events = Array.from({ length: 1 + Math.floor(random() * 6) }, () =>
      (random() < 0.7 ? forms[0] : pick(forms))?.(pick(datas)),
    ).map((text) => encoder.encode(text));
    const chunks: Uint8Array[] = [];
    if (random() < 0.5) {
      for (let at = 0; at < events.length; ) {
        const take = 1 + Math.floor(random() * 3);
        chunks.push(Uint8Array.from(events.slice(at, at + take).flatMap((event) => [...event])));
        at += take;
      }
    } else {
      const all = Uint8Array.from(events.flatMap((event) => [...event]));
      for (let at = 0; at < all.length; ) {
        const take = 1 + Math.floor(random() * 40);
        chunks.push(all.subarray(at, at + take));
        at += take;
      }
    }
    for (const push of pushes(chunks)) {
      for (let count = 1; count <= push.events.length; count++) {
        const leading = push.events.slice(0, count);
        const bytes = push.parser.bytesOf(leading);
        if (bytes === undefined) continue;
        withBytes++;
        assert.deepEqual(Buffer.from(bytes), Buffer.from(rendered(leading)), `round ${round}`);
      }
    }
  }
  // Not vacuous: the plain form in whole events gives bytes often.
  assert.ok(withBytes > 50, `${withBytes}`);
});
