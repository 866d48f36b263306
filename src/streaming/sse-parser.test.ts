import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SSE_DONE, sseData } from "./sse-format.ts";
import { type SseEvent, SseLimitError, SseParser } from "./sse-parser.ts";

// A realistic OpenAI chat stream as an OpenRouter-style upstream sends it: a keep-alive comment first, a role
// chunk, content with multibyte UTF-8 (2, 3 and 4 byte characters), a finish chunk, a usage chunk, [DONE].
const OPENAI_STREAM_FIXTURE = [
  ": OPENROUTER PROCESSING\n\n",
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Café"},"logprobs":null,"finish_reason":null}]}\n\n',
  ": OPENROUTER PROCESSING\n\n",
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" 東京 "},"logprobs":null,"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"🚀✨"},"logprobs":null,"finish_reason":null}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}\n\n',
  "data: [DONE]\n\n",
].join("");

const encoder = new TextEncoder();

function parseChunks(chunks: Array<Uint8Array | string>): { events: SseEvent[]; hadPartialEvent: boolean } {
  const events: SseEvent[] = [];
  const parser = new SseParser((event) => events.push(event));
  for (const chunk of chunks) parser.push(chunk);
  return { events, ...parser.finish() };
}

function contentOf(events: SseEvent[]): string {
  let content = "";
  for (const event of events) {
    if (event.data === "[DONE]") continue;
    const chunk = JSON.parse(event.data) as { choices: Array<{ delta: { content?: string } }> };
    content += chunk.choices[0]?.delta.content ?? "";
  }
  return content;
}

/** Deterministic PRNG so that a failing random chunking can be reproduced. */
function mulberry32(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("SseParser on a recorded OpenAI stream", () => {
  const bytes = encoder.encode(OPENAI_STREAM_FIXTURE);
  const reference = parseChunks([bytes]);

  test("parses the whole stream in one chunk", () => {
    assert.equal(reference.events.length, 7);
    assert.equal(reference.events.at(-1)?.data, "[DONE]");
    assert.equal(contentOf(reference.events), "Café 東京 🚀✨");
    assert.equal(reference.hadPartialEvent, false);
    for (const event of reference.events) assert.deepEqual(Object.keys(event), ["data"]);
  });

  test("gives identical events for a split at every byte position", () => {
    for (let split = 0; split <= bytes.length; split++) {
      const result = parseChunks([bytes.subarray(0, split), bytes.subarray(split)]);
      assert.deepEqual(result, reference, `split at byte ${split}`);
    }
  });

  test("gives identical events with one byte per chunk and with random chunkings", () => {
    const oneBytePerChunk = Array.from(bytes, (byte) => Uint8Array.of(byte));
    assert.deepEqual(parseChunks(oneBytePerChunk), reference);

    const random = mulberry32(42);
    for (let round = 0; round < 200; round++) {
      const chunks: Uint8Array[] = [];
      for (let start = 0; start < bytes.length; ) {
        const end = Math.min(bytes.length, start + 1 + Math.floor(random() * 64));
        chunks.push(bytes.subarray(start, end));
        start = end;
      }
      assert.deepEqual(parseChunks(chunks), reference, `round ${round}`);
    }
  });

  for (const [name, lineEnd] of [
    ["CRLF", "\r\n"],
    ["CR", "\r"],
  ] as const) {
    test(`gives identical events with ${name} line ends split at every byte position`, () => {
      const converted = encoder.encode(OPENAI_STREAM_FIXTURE.replaceAll("\n", lineEnd));
      for (let split = 0; split <= converted.length; split++) {
        const result = parseChunks([converted.subarray(0, split), converted.subarray(split)]);
        assert.deepEqual(result, reference, `split at byte ${split}`);
      }
    });
  }

  test("accepts string chunks", () => {
    const chunks = OPENAI_STREAM_FIXTURE.match(/[\s\S]{1,7}/g) ?? [];
    assert.deepEqual(parseChunks(chunks), reference);
  });
});

describe("SseParser line ends", () => {
  test("a CR ending one chunk and the LF starting the next are one line end", () => {
    // Counted as two line ends, the LF would be a blank line and dispatch "a" and "b" separately.
    assert.deepEqual(parseChunks(["data: a\r", "\ndata: b\r\n\r\n"]).events, [{ data: "a\nb" }]);
    assert.deepEqual(parseChunks([encoder.encode("data: a\r"), encoder.encode("\ndata: b\r\n\r\n")]).events, [
      { data: "a\nb" },
    ]);
  });

  test("a CR-LF pair is still one line end when an empty chunk comes between them", () => {
    assert.deepEqual(parseChunks(["data: a\r", "", new Uint8Array(0), "\ndata: b\n\n"]).events, [{ data: "a\nb" }]);
  });

  test("a lone CR followed by another line is a line end", () => {
    assert.deepEqual(parseChunks(["data: a\r", "data: b\r\r"]).events, [{ data: "a\nb" }]);
  });

  test("mixed line ends in one stream", () => {
    const { events } = parseChunks(["data: 1\r\n\r\ndata: 2\n\ndata: 3\r\rdata: 4\r\n\n"]);
    assert.deepEqual(
      events.map((event) => event.data),
      ["1", "2", "3", "4"],
    );
  });
});

describe("SseParser fields", () => {
  test("ignores comment lines, including keep-alives between the data lines of one event", () => {
    const { events } = parseChunks([": OPENROUTER PROCESSING\n\ndata: a\n: ping\ndata: b\n\n:\n\n"]);
    assert.deepEqual(events, [{ data: "a\nb" }]);
  });

  test("joins multiple data lines with LF", () => {
    assert.deepEqual(parseChunks(["data: line 1\ndata: line 2\ndata:\ndata: line 4\n\n"]).events, [
      { data: "line 1\nline 2\n\nline 4" },
    ]);
  });

  test("strips exactly one space after the colon", () => {
    const { events } = parseChunks([
      "data:no space\n\ndata: one\n\ndata:  two\n\ndata:\tab\n\ndata: \n\nevent:  x\ndata: y\n\n",
    ]);
    assert.deepEqual(events, [
      { data: "no space" },
      { data: "one" },
      { data: " two" },
      { data: "\tab" },
      { data: "" },
      { data: "y", event: " x" },
    ]);
  });

  test("keeps colons inside the value", () => {
    assert.deepEqual(parseChunks(['data: {"a":"b:c"}\n\n']).events, [{ data: '{"a":"b:c"}' }]);
  });

  test("a data line without a colon is an empty data line, and an event with empty data is dispatched", () => {
    assert.deepEqual(parseChunks(["data\n\ndata:\n\n"]).events, [{ data: "" }, { data: "" }]);
  });

  test("does not dispatch an event without data lines", () => {
    const { events, hadPartialEvent } = parseChunks(["event: ping\n\nid: 7\n\nretry: 1000\n\n"]);
    assert.deepEqual(events, []);
    assert.equal(hadPartialEvent, false);
  });

  test("an event type does not leak into the next event", () => {
    const { events } = parseChunks(["event: ping\n\ndata: a\n\nevent: error\ndata: b\n\ndata: c\n\n"]);
    assert.deepEqual(events, [{ data: "a" }, { data: "b", event: "error" }, { data: "c" }]);
  });

  test("the last event ID persists across events, and an ID containing NULL is ignored", () => {
    const { events } = parseChunks(["id: 1\ndata: a\n\ndata: b\n\nid: 2\u0000\ndata: c\n\nid\ndata: d\n\n"]);
    assert.deepEqual(events, [{ data: "a", id: "1" }, { data: "b", id: "1" }, { data: "c", id: "1" }, { data: "d" }]);
  });

  test("ignores unknown fields and fields that only start like known ones", () => {
    const { events } = parseChunks(["datum: x\ndata2: y\nevents: z\nDATA: w\nfoo\ndata: kept\n\n"]);
    assert.deepEqual(events, [{ data: "kept" }]);
  });

  test("strips a leading byte order mark, only at the start of the stream", () => {
    assert.deepEqual(parseChunks([Uint8Array.of(0xef, 0xbb), Uint8Array.of(0xbf), "data: a\n\n"]).events, [
      { data: "a" },
    ]);
    assert.deepEqual(parseChunks(["\uFEFFdata: a\n\n\uFEFFdata: b\n\n"]).events, [{ data: "a" }]);
  });

  test("dispatches synchronously inside push", () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((event) => events.push(event));
    parser.push("data: a\n");
    assert.equal(events.length, 0);
    parser.push("\n");
    assert.deepEqual(events, [{ data: "a" }]);
  });
});

describe("SseParser UTF-8", () => {
  test("decodes a 4-byte character split over four chunks", () => {
    const bytes = encoder.encode("data: 🚀\n\n");
    const chunks = [bytes.subarray(0, 7), bytes.subarray(7, 8), bytes.subarray(8, 9), bytes.subarray(9)];
    assert.deepEqual(parseChunks(chunks).events, [{ data: "🚀" }]);
  });

  test("replaces invalid bytes instead of throwing", () => {
    const { events } = parseChunks([Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0x0a, 0x0a)]);
    assert.deepEqual(events, [{ data: "\uFFFD" }]);
  });
});

describe("SseParser finish", () => {
  test("a stream ending after a blank line had no partial event", () => {
    assert.equal(parseChunks(["data: a\n\n"]).hadPartialEvent, false);
    assert.equal(parseChunks([]).hadPartialEvent, false);
  });

  test("a stream cut inside a data line had a partial event, which is not dispatched", () => {
    const { events, hadPartialEvent } = parseChunks(['data: a\n\ndata: {"choices":[{"del']);
    assert.deepEqual(events, [{ data: "a" }]);
    assert.equal(hadPartialEvent, true);
  });

  test("a stream ending after a data line but before the blank line had a partial event", () => {
    const { events, hadPartialEvent } = parseChunks(["data: a\n\ndata: b\n"]);
    assert.deepEqual(events, [{ data: "a" }]);
    assert.equal(hadPartialEvent, true);
  });

  test("a stream ending after an event field without data had a partial event", () => {
    assert.equal(parseChunks(["data: a\n\nevent: error\n"]).hadPartialEvent, true);
  });

  test("a trailing keep-alive comment is not a partial event, terminated or not", () => {
    assert.equal(parseChunks(["data: a\n\n: OPENROUTER PROCESSING\n"]).hadPartialEvent, false);
    assert.equal(parseChunks(["data: a\n\n: OPENROUTER PROCESSING"]).hadPartialEvent, false);
  });

  test("a stream cut inside a multibyte character had a partial event", () => {
    const bytes = encoder.encode("data: a\n\ndata: é");
    assert.equal(parseChunks([bytes.subarray(0, bytes.length - 1)]).hadPartialEvent, true);
    assert.equal(parseChunks([encoder.encode("data: a\n\n"), Uint8Array.of(0xe2)]).hadPartialEvent, true);
  });

  test("finish resets the parser for reuse", () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((event) => events.push(event));
    parser.push("id: 1\ndata: cut");
    assert.deepEqual(parser.finish(), { hadPartialEvent: true });
    parser.push("data: b\n\n");
    assert.deepEqual(parser.finish(), { hadPartialEvent: false });
    assert.deepEqual(events, [{ data: "b" }]);
  });
});

describe("SseParser with long lines", () => {
  test("a 1 MB line arriving in 1 KB chunks is parsed once, intact", () => {
    const payload = "x".repeat(1024 * 1024);
    const text = `data: ${payload}\n\n`;
    const chunks: string[] = [];
    for (let start = 0; start < text.length; start += 1024) chunks.push(text.slice(start, start + 1024));
    const { events } = parseChunks(chunks);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.data.length, payload.length);
  });
});

describe("sseData and SSE_DONE", () => {
  test("encode objects as one JSON data event that parses back", () => {
    const payload = { choices: [{ delta: { content: "a\nb: c" } }] };
    const text = sseData(payload);
    assert.equal(text, `data: ${JSON.stringify(payload)}\n\n`);
    const { events } = parseChunks([text, SSE_DONE]);
    assert.deepEqual(JSON.parse(events[0]?.data ?? ""), payload);
    assert.equal(events[1]?.data, "[DONE]");
  });

  test("write strings as is, and a string with line breaks as several data lines", () => {
    assert.equal(sseData("[DONE]"), SSE_DONE);
    assert.equal(sseData("a\nb\r\nc"), "data: a\ndata: b\ndata: c\n\n");
    assert.deepEqual(parseChunks([sseData("a\nb\rc")]).events, [{ data: "a\nb\nc" }]);
  });
});

describe("SseParser bounds (maxEventChars)", () => {
  test("an endless line without a newline throws SseLimitError once it passes the bound", () => {
    const parser = new SseParser(() => {}, { maxEventChars: 1000 });
    parser.push("data: ");
    assert.throws(() => {
      for (let index = 0; index < 100; index++) parser.push("a".repeat(100));
    }, SseLimitError);
  });

  test("a single chunk holding one over-long complete line throws too", () => {
    const parser = new SseParser(() => {}, { maxEventChars: 1000 });
    assert.throws(() => parser.push(`data: ${"b".repeat(2000)}\n\n`), /max_stream_event_chars \(1000/);
  });

  test("an event made of many short data lines is bounded as a whole", () => {
    const parser = new SseParser(() => {}, { maxEventChars: 1000 });
    assert.throws(() => {
      for (let index = 0; index < 100; index++) parser.push(`data: ${"c".repeat(50)}\n`);
    }, SseLimitError);
  });

  test("events under the bound pass, however many; lines are counted as progress", () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((event) => events.push(event), { maxEventChars: 1000 });
    for (let index = 0; index < 1000; index++) parser.push(`data: ${"d".repeat(900)}\n\n`);
    assert.equal(events.length, 1000);
    assert.equal(parser.completedLines, 2000);
    parser.push("data: partial");
    assert.equal(parser.completedLines, 2000, "a partial line is not progress");
  });
});
