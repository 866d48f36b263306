// A differential fuzz of line-scan.ts against what the validation did before it (the line's bytes decoded, trimmed,
// jsonShapeOverBounds, then JSON.parse): generated JSON of random shape rather than edits of two fixed lines, raw
// bytes rather than strings (invalid UTF-8 included), and every split of a line into two slices.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsedLineFacts } from "../../../test/helpers/line-facts.ts";
import { LineScanner, type ScannedLine, trimmedLine } from "./line-scan.ts";

/** The old path on the line's bytes: decoded whole (invalid UTF-8 becomes U+FFFD), trimmed, bounds, JSON.parse. */
function oldFacts(bytes: Buffer, maxDepth: number, maxMembers: number): ScannedLine | "blank" {
  const source = bytes.toString("utf8").trim();
  return source === "" ? "blank" : parsedLineFacts(source, maxDepth, maxMembers, 40);
}

/** The scanner on `bytes` framed as a line of a file, its bytes read in the slices `cuts` (offsets in the line). */
function newFacts(bytes: Buffer, maxDepth: number, maxMembers: number, cuts: readonly number[]): ScannedLine | "blank" {
  const file = Buffer.concat([Buffer.from("\n"), bytes, Buffer.from("\n")]);
  const { start, end } = trimmedLine(file, 1, file.length - 1);
  if (start === end) return "blank";
  const scanner = new LineScanner(file, start, end, maxDepth, maxMembers);
  let at = start;
  for (const cut of cuts) {
    if (scanner.isDone) break;
    const to = 1 + cut;
    if (to > at) at += scanner.step(to - at);
  }
  while (!scanner.isDone) scanner.step(1 << 20);
  // The fields decoded in pieces too (each at least 16 bytes): a piece's end lands at every place in some line.
  const decodeStep = 1 + (cuts.length % 23);
  const budget = { bytesLeft: decodeStep };
  const reading = scanner.reading(budget, decodeStep);
  let read = reading.next();
  while (read.done !== true) read = reading.next();
  const found = read.value;
  // Long `method`/`url` values are unread by design; the oracle drops those over 40 characters, so does this.
  const compared = (value: string | undefined): string | undefined =>
    value !== undefined && value.length <= 40 ? value : undefined;
  return { ...found, method: compared(found.method), url: compared(found.url) };
}

function assertSame(bytes: Buffer, maxDepth: number, maxMembers: number, cutsList: readonly (readonly number[])[]) {
  const expected = oldFacts(bytes, maxDepth, maxMembers);
  for (const cuts of cutsList) {
    const found = newFacts(bytes, maxDepth, maxMembers, cuts);
    if (!isDeepEqual(found, expected)) {
      assert.deepEqual(
        found,
        expected,
        `${JSON.stringify(bytes.toString("latin1"))} (hex ${bytes.toString("hex")}) cut at ${cuts.join(",")}`,
      );
    }
  }
}

function isDeepEqual(left: unknown, right: unknown): boolean {
  try {
    assert.deepEqual(left, right);
    return true;
  } catch {
    return false;
  }
}

/** A seeded generator: each run reads the same lines. */
function randomOf(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return (((mixed ^ (mixed >>> 14)) >>> 0) % below) as number;
  };
}

type Random = (below: number) => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[random(items.length)] as T;

const WHITESPACE = ["", "", "", " ", "\t", "\r", "\n", " \t\r ", "  "];
const ws = (random: Random): string => pick(random, WHITESPACE);

/** Numbers in every form JSON takes, and some it refuses (leading zeros, a bare dot, a plus sign). */
const NUMBERS = [
  "0",
  "-0",
  "1",
  "-1",
  "10",
  "0.0",
  "1.5",
  "-0.25",
  "1e5",
  "1E5",
  "1e+5",
  "1E-5",
  "-0e0",
  "123456789e-3",
];
const BAD_NUMBERS = ["01", "-01", "00", "1.", ".5", "+1", "1e", "1e+", "-", "0x1", "1.e3", "NaN", "Infinity", "--1"];

/** A string's content as written: plain text, multi-byte UTF-8, escapes, surrogate pairs and lone surrogates. */
function stringBody(random: Random): string {
  const pieces = [
    "a",
    "xyz",
    "é",
    "日本",
    "😀",
    "[{:,}]",
    '\\"',
    "\\\\",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "\\u0041",
    "\\u00e9",
    "\\uD83D\\uDE00",
    "\\ud800",
    "\\udc00x",
    "\\uDFFF\\uD800",
    "\\u0000",
    "\\u005f",
    "\u007f",
    " ",
  ];
  let text = "";
  for (let count = random(4); count > 0; count--) text += pick(random, pieces);
  return text;
}

/** A member's name: often one the validation reads, sometimes escaped (JSON.parse reads "custom\u005fid" as custom_id). */
function nameOf(random: Random): string {
  return pick(random, [
    "custom_id",
    "method",
    "url",
    "body",
    "model",
    "custom\\u005fid",
    "\\u0063ustom_id",
    "\\u0062ody",
    "mod\\u0065l",
    "\\u006d\\u0065\\u0074\\u0068\\u006f\\u0064",
    "custom_i",
    "custom_idd",
    "Model",
    "x",
    "messages",
    "__proto__",
    "",
  ]);
}

function jsonValueOf(random: Random, depth: number): string {
  const kind = random(depth > 5 ? 6 : 9);
  switch (kind) {
    case 0:
    case 1:
      return `"${stringBody(random)}"`;
    case 2:
      return random(8) === 0 ? pick(random, BAD_NUMBERS) : pick(random, NUMBERS);
    case 3:
      return pick(random, ["true", "false", "null"]);
    case 4:
      return pick(random, ['"POST"', '"/v1/chat/completions"', '"P\\u004fST"', '"\\/v1\\/chat\\/completions"', '"m"']);
    case 5:
      return `"${pick(random, ["m", "a", "b", "c", ""])}"`;
    case 6:
    case 7:
      return objectOf(random, depth + 1);
    default:
      return arrayOf(random, depth + 1);
  }
}

function objectOf(random: Random, depth: number): string {
  const members: string[] = [];
  for (let count = random(5); count > 0; count--) {
    members.push(
      `${ws(random)}"${nameOf(random)}"${ws(random)}:${ws(random)}${jsonValueOf(random, depth)}${ws(random)}`,
    );
  }
  return `{${members.length === 0 ? ws(random) : members.join(",")}}`;
}

function arrayOf(random: Random, depth: number): string {
  const items: string[] = [];
  for (let count = random(4); count > 0; count--) items.push(`${ws(random)}${jsonValueOf(random, depth)}${ws(random)}`);
  return `[${items.length === 0 ? ws(random) : items.join(",")}]`;
}

/** A `body`: mostly an object with a `model` (written in any of its forms) among other members. */
function bodyOf(random: Random): string {
  const members: string[] = [];
  for (let count = random(4); count > 0; count--) {
    const name = random(2) === 0 ? pick(random, ["model", "mod\\u0065l", "\\u006dodel"]) : nameOf(random);
    members.push(`${ws(random)}"${name}"${ws(random)}:${ws(random)}${jsonValueOf(random, 2)}${ws(random)}`);
  }
  return `{${members.join(",")}}`;
}

/** A line: mostly a request-shaped object (the read fields at the top, in `body`, nested where they must not count). */
function lineOf(random: Random): string {
  if (random(10) === 0) return jsonValueOf(random, 0);
  const members: string[] = [];
  for (let count = 1 + random(7); count > 0; count--) {
    const name = nameOf(random);
    const value = name.includes("b") && random(4) > 0 ? bodyOf(random) : jsonValueOf(random, 1);
    members.push(`${ws(random)}"${name}"${ws(random)}:${ws(random)}${value}${ws(random)}`);
  }
  const framing = pick(random, ["", "", "\uFEFF", " ", "\t", "\u00a0", "\u3000", "\r"]);
  return `${framing}{${members.join(",")}}${pick(random, ["", "", "\r", " ", "\u2028", "\t\r"])}`;
}

/** Byte edits: JSON's own characters, invalid UTF-8 (lone continuation, truncated sequences, overlong, CESU surrogates). */
const BYTE_PIECES: readonly Buffer[] = [
  ...'"\\{}[]:, 0-.eE+ut\t\r\u0001'.split("").map((piece) => Buffer.from(piece)),
  Buffer.from([0x80]),
  Buffer.from([0xbf]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xc3]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf0, 0x9f, 0x98]),
  Buffer.from([0xf8]),
  Buffer.from([0xff]),
  Buffer.from([0xef, 0xbb, 0xbf]),
  Buffer.from([0xc2, 0xa0]),
  Buffer.from([0xe3, 0x80, 0x80]),
  Buffer.from([0xe2, 0x80, 0xa8]),
];

function edited(random: Random, bytes: Buffer): Buffer {
  let result = bytes;
  for (let edits = 1 + random(3); edits > 0; edits--) {
    const at = random(result.length + 1);
    const piece = pick(random, BYTE_PIECES);
    const kind = random(3);
    const head = result.subarray(0, at);
    if (kind === 0) result = Buffer.concat([head, piece, result.subarray(at)]);
    else if (kind === 1) result = Buffer.concat([head, result.subarray(at + 1)]);
    else result = Buffer.concat([head, piece, result.subarray(at + 1)]);
  }
  return result;
}

/** Every split of the line in two slices, and a few random slicings. */
function cutsOf(random: Random, length: number, isEverySplit: boolean): number[][] {
  const cuts: number[][] = [[]];
  if (isEverySplit) for (let at = 1; at < length; at++) cuts.push([at]);
  for (let round = 0; round < 3; round++) {
    const list: number[] = [];
    for (let at = 1 + random(5); at < length; at += 1 + random(7)) list.push(at);
    cuts.push(list);
  }
  return cuts;
}

test("generated JSON lines: the scanner reads what JSON.parse reads, split at every byte", () => {
  const random = randomOf(2026);
  for (let round = 0; round < 3000; round++) {
    const bytes = Buffer.from(lineOf(random));
    assertSame(bytes, 3 + random(6), 3 + random(8), cutsOf(random, bytes.length, round % 3 === 0));
  }
});

test("generated lines with byte edits (invalid UTF-8 among them): the same verdict and fields as the old path", () => {
  const random = randomOf(612);
  for (let round = 0; round < 20_000; round++) {
    const bytes = edited(random, Buffer.from(lineOf(random)));
    assertSame(bytes, 3 + random(6), 3 + random(8), cutsOf(random, bytes.length, round % 10 === 0));
  }
});

test("hand-picked lines: invalid UTF-8 inside and outside strings, names escaped, fields nested where they do not count", () => {
  const lines: Buffer[] = [
    Buffer.from(
      '{"custom_id":"a\xff\xfeb","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}',
      "latin1",
    ),
    Buffer.from('{"custom_id":"\xe2","body":{"model":"\xed\xa0\x80"}}', "latin1"),
    Buffer.from('{"custom_id":"a"}\xff', "latin1"),
    Buffer.from('\xef\xbb{"custom_id":"a"}', "latin1"),
    Buffer.from('{"custom_id"\xc2\xa0:"a"}', "latin1"),
    Buffer.from('{"custom\\u005fid":"a","b\\u006fdy":{"m\\u006fdel":"n"}}'),
    Buffer.from('{"x":{"custom_id":"no"},"body":{"x":{"model":"no"}},"custom_id":"yes"}'),
    Buffer.from('{"body":{"model":"a"},"body":{"model":1}}'),
    Buffer.from('{"body":{"model":"a"},"body":{}}'),
    Buffer.from('{"custom_id":"a","custom_id":{"custom_id":"b"}}'),
    Buffer.from('{"custom_id":"\\ud83d\\ude00\\ud800","body":{"model":"\\udfff"}}'),
    Buffer.from('{"a":"[[[[[[[[[[","b":"\\"[[[[[[[["}'),
    Buffer.from('{"a":"\\\\"}[[[[[[[[[['),
    Buffer.from('{"a":1}\u00a0'),
    Buffer.from('\u2029{"a":1}\u2028'),
    Buffer.from("\u0085{}"),
    Buffer.from("\u180e{}"),
    Buffer.from("\u200b{}"),
    Buffer.from("\u000b{}\f"),
    // Whitespace next to invalid UTF-8: only a valid encoding decodes to a whitespace character.
    Buffer.from([0xe2, 0xc2, 0xa0, 0x7b, 0x7d, 0xe2, 0xc2, 0xa0]),
    Buffer.from([0xe3, 0x80, 0x80, 0x80, 0x7b, 0x7d, 0xe3, 0x80, 0x80, 0x80]),
    Buffer.from([0xc2, 0xc2, 0xa0, 0x7b, 0x7d, 0xc2, 0xa0, 0xc2]),
    Buffer.from([0xc0, 0xa0, 0x7b, 0x7d, 0xc0, 0xa0]),
    Buffer.from([0xe0, 0x80, 0xa0, 0x7b, 0x7d, 0xe0, 0x80, 0xa0]),
    Buffer.from([0xf0, 0xe3, 0x80, 0x80, 0x7b, 0x7d, 0xf0, 0xe3, 0x80, 0x80]),
    Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0x7b, 0x7d, 0xbb, 0xbf]),
    Buffer.from([0xa0, 0x7b, 0x7d, 0x80, 0x80, 0xa0]),
  ];
  const random = randomOf(1);
  for (const bytes of lines) assertSame(bytes, 4, 3, cutsOf(random, bytes.length, true));
});

test("long custom_id and model values decoded in pieces: the same string as JSON.parse, invalid UTF-8 runs included", () => {
  const random = randomOf(99);
  const pieces: readonly Buffer[] = [
    Buffer.from("a"),
    Buffer.from("é"),
    Buffer.from("日"),
    Buffer.from("😀"),
    Buffer.from("\\u0041"),
    Buffer.from("\\ud83d\\ude00"),
    Buffer.from("\\ud800"),
    Buffer.from("\\\\"),
    Buffer.from('\\"'),
    Buffer.from("\\n"),
    Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]),
    Buffer.from([0xe2, 0x82]),
    Buffer.from([0xf0, 0x9f, 0x98, 0x80, 0x80, 0x80, 0x80]),
    Buffer.from([0xff]),
  ];
  for (let round = 0; round < 1500; round++) {
    const parts: Buffer[] = [];
    for (let count = 5 + random(60); count > 0; count--) parts.push(pick(random, pieces));
    const value = Buffer.concat(parts);
    const bytes = Buffer.concat([
      Buffer.from('{"custom_id":"'),
      value,
      Buffer.from('","body":{"model":"'),
      value,
      Buffer.from('"}}'),
    ]);
    assertSame(bytes, 8, 8, [[], [1 + random(bytes.length)], [3, 9, 27]]);
  }
});
