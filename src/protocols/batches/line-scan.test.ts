import assert from "node:assert/strict";
import { test } from "node:test";
import { parsedLineFacts } from "../../../test/helpers/line-facts.ts";
import { LineScanner, type ScannedLine, trimmedLine } from "./line-scan.ts";

/** What the validation read of a line before the scanner: its text trimmed, its shape, then JSON.parse. */
function parsedFacts(text: string, maxDepth: number, maxMembers: number): ScannedLine {
  return parsedLineFacts(text.trim(), maxDepth, maxMembers, 199);
}

/** The scanner's facts on the line's bytes, read in slices of `sliceBytes` (a resumed scan reads as a whole one). */
function scannedFacts(text: string, maxDepth: number, maxMembers: number, sliceBytes: number): ScannedLine {
  const bytes = Buffer.from(`\n${text}\n`);
  const { start, end } = trimmedLine(bytes, 1, bytes.length - 1);
  if (start === end) return parsedFacts("", maxDepth, maxMembers);
  const scanner = new LineScanner(bytes, start, end, maxDepth, maxMembers);
  while (!scanner.isDone) scanner.step(sliceBytes);
  return scanner.result();
}

function assertSame(text: string, maxDepth = 6, maxMembers = 4): void {
  const expected = parsedFacts(text, maxDepth, maxMembers);
  for (const slice of [1, 3, 1 << 20]) {
    assert.deepEqual(
      scannedFacts(text, maxDepth, maxMembers, slice),
      expected,
      `${JSON.stringify(text)} in slices of ${slice}`,
    );
  }
}

const VALID =
  '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1,"t":-0.5e+3}}';

test("the fields read as JSON.parse reads them: escapes, unicode escapes, a repeated name's last value", () => {
  for (const text of [
    VALID,
    '{"custom_id":"a\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00","method":"POST","url":"/v1/chat/completions","body":{}}',
    '{"custom\\u005fid":"x","\\u006dethod":"\\u0050OST","url":"\\/v1\\/embeddings","body":{"mod\\u0065l":"\\u006d"}}',
    '{"custom_id":"é日本😀","method":"POST","url":"/v1/chat/completions","body":{"model":"模型"}}',
    '{"custom_id":"a","custom_id":7,"method":"POST","method":"GET","body":{"model":"m"},"body":{"x":1}}',
    '{"custom_id":7,"custom_id":"b","body":"s","body":{"model":1,"model":"z","y":{"model":"no"}}}',
    '{"body":{"model":"a"},"body":[{"model":"b"}]}',
    '{"x":{"custom_id":"inner","body":{"model":"deep"}},"custom_id":"outer"}',
    '{"__proto__":{"custom_id":"p"},"custom_id":""}',
    ' \t{ "custom_id" : "spaced" , "body" : { "model" : "m" } } \t',
    '\uFEFF{"custom_id":"bom"}\u00a0\u3000',
    `{"method":"${"P".repeat(300)}","url":"${"u".repeat(300)}"}`,
  ]) {
    assertSame(text, 8, 100);
  }
});

test("what JSON.parse refuses is refused, and what it takes is taken", () => {
  for (const text of [
    "{}",
    "[]",
    '"s"',
    "0",
    "-0",
    "-12.5E-3",
    "true",
    "null",
    "[1,2,[3,{}]]",
    '{"a":[true,false,null,-1,2.5e10,"x"]}',
    "{",
    "}",
    "{,}",
    '{"a":1,}',
    "[1,]",
    '{"a" 1}',
    '{"a":}',
    "{a:1}",
    "{'a':1}",
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":1e}',
    '{"a":1e+}',
    '{"a":-}',
    '{"a":+1}',
    '{"a":tru}',
    '{"a":truex}',
    '{"a":nul}',
    '{"a":NaN}',
    '{"a":"\\x"}',
    '{"a":"\\u12G4"}',
    '{"a":"\\u12"}',
    '{"a":"tab\there"}',
    '{"a":"unterminated}',
    '{"a":1} {"b":2}',
    '{"a":1}x',
    "[1 2]",
    '{"a":1 "b":2}',
    "[}",
    '{"a":1]',
    '{"a":"é"}é',
    "\u00a0{}",
    "1 2",
  ]) {
    assertSame(text);
  }
});

test("the bounds are counted as jsonShapeOverBounds counts them, also on a line that does not parse", () => {
  for (const text of [
    "[[[[[[[]]]]]]]",
    "[[[[[[]]]]]]",
    '{"a":1,"b":2,"c":3,"d":4}',
    '{"a":1,"b":2,"c":3,"d":4,"e":5}',
    '{"a":"[[[[[[[[[[::::::"}',
    '{"a":1,} [[[[[[[[[[',
    '{"a":tru, "b":1,"c":1,"d":1,"e":1}',
    '{"a":"\\x", "b":[[[[[[[[[[[]]]]]]]]]]]}',
    '{"a":"\\u12"[[[[[[[[[[',
    '{"a":"ctl\u0001[[[[[[[[[["}',
    '{"a":"\\\\"[[[[[[[[[[[[',
    '{"a":"x\\"[[[[[[[[[[[["}',
    "[1,2]:::::[[[[[[[[[",
    '{"a":{"b":1,"c":2,"d":3,"e":4,"f":5}}',
  ]) {
    assertSame(text);
  }
});

test("random edits of a valid line: the scanner and JSON.parse agree on every one", () => {
  const alphabet = [
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "0",
    "1",
    "-",
    ".",
    "e",
    "u",
    "a",
    "t",
    "n",
    "\t",
    "é",
    "\u0001",
  ];
  let seed = 7;
  const random = (below: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed % below;
  };
  const base = [
    VALID,
    '{"custom_id":"x\\u0041\\n","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":["a",[1,{"b":null}]]}}',
  ];
  for (let round = 0; round < 20_000; round++) {
    let text = base[round % base.length] ?? "";
    for (let edits = 1 + random(4); edits > 0; edits--) {
      const at = random(text.length + 1);
      const piece = alphabet[random(alphabet.length)] ?? "";
      const kind = random(3);
      if (kind === 0) text = text.slice(0, at) + piece + text.slice(at);
      else if (kind === 1) text = text.slice(0, at) + text.slice(at + 1);
      else text = text.slice(0, at) + piece + text.slice(at + 1);
    }
    assertSame(text, 4, 3);
  }
});

test("trimmedLine takes off what String.prototype.trim takes off, in bytes", () => {
  for (const text of ["", "  ", "\uFEFF", "\uFEFF{}\r", " \t{} \u2028", "\u00a0x\u00a0", "é", "x\u3000", "\u200bx"]) {
    const bytes = Buffer.from(text);
    const { start, end } = trimmedLine(bytes, 0, bytes.length);
    assert.equal(bytes.toString("utf8", start, end), text.trim(), JSON.stringify(text));
  }
});

test("trimmedLine takes off every BMP character trim takes off, and no other (its list of UTF-8 encodings)", () => {
  for (let code = 0; code < 0x10000; code++) {
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const character = String.fromCharCode(code);
    const text = `${character}${character}{}${character}`;
    const bytes = Buffer.from(text);
    const { start, end } = trimmedLine(bytes, 0, bytes.length);
    if (bytes.toString("utf8", start, end) !== text.trim()) assert.fail(`U+${code.toString(16)}`);
  }
});
