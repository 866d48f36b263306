import assert from "node:assert/strict";
import { test } from "node:test";
import { threadCpuMs } from "../../../test/helpers/thread-cpu.ts";
import {
  BYTES_PER_CHECK_STEP,
  checkBatchInput,
  checkingBatchInput,
  LINES_PER_CHECK_STEP,
  pageOf,
} from "./batch-objects.ts";

const line = (customId: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "m", messages: [] },
    ...extra,
  });

test("a valid file: its lines in order, blank lines skipped, the one model named", () => {
  const checked = checkBatchInput(`${line("a")}\n\n${line("b")}\r\n`, "/v1/chat/completions", 10);
  assert.ok(checked.isValid);
  assert.deepEqual(
    checked.lines.map((entry) => [entry.index, entry.customId]),
    [
      [0, "a"],
      [1, "b"],
    ],
  );
  assert.equal(checked.model, "m");
});

test("every bad line is named with its 1-based line number, as OpenAI's validation", () => {
  const checked = checkBatchInput(
    [line("a"), "[1]", line("", {}), line("a"), line("c", { url: "/v1/embeddings" }), line("d", { body: "x" })].join(
      "\n",
    ),
    "/v1/chat/completions",
    10,
  );
  assert.ok(!checked.isValid);
  assert.deepEqual(
    checked.errors.map((entry) => [entry.line, entry.code]),
    [
      [2, "invalid_json_line"],
      [3, "missing_required_parameter"],
      [4, "duplicate_custom_id"],
      [5, "mismatched_url"],
      [6, "invalid_request"],
    ],
  );
});

test("an empty file and a file over max_lines fail", () => {
  const empty = checkBatchInput("\n\n", "/v1/chat/completions", 10);
  assert.ok(!empty.isValid);
  assert.equal(empty.errors[0]?.code, "empty_file");
  const many = checkBatchInput([line("a"), line("b"), line("c")].join("\n"), "/v1/chat/completions", 2);
  assert.ok(!many.isValid);
  assert.equal(many.errors[0]?.code, "too_many_requests");
});

test("at most 10 problems are listed for a file of bad lines", () => {
  const checked = checkBatchInput(Array.from({ length: 50 }, () => "nope").join("\n"), "/v1/chat/completions", 100);
  assert.ok(!checked.isValid);
  assert.equal(checked.errors.length, 10);
});

test("pages: after an id, limit, has_more", () => {
  const items = ["a", "b", "c", "d"].map((id) => ({ id }));
  assert.deepEqual(pageOf(items, undefined, 2), {
    object: "list",
    data: [{ id: "a" }, { id: "b" }],
    first_id: "a",
    last_id: "b",
    has_more: true,
  });
  const last = pageOf(items, "b", 2);
  assert.deepEqual(last.data, [{ id: "c" }, { id: "d" }]);
  assert.equal(last.has_more, false);
  assert.deepEqual(pageOf(items, "unknown", 2).data, []);
});

test("checked in steps: a yield every LINES_PER_CHECK_STEP lines; past max_lines nothing more is parsed, only counted", () => {
  const text = Array.from({ length: 3 * LINES_PER_CHECK_STEP }, (_, at) => line(`l${at}`)).join("\n");
  const steps = checkingBatchInput(Buffer.from(text), "/v1/chat/completions", 10_000, {
    maxDepth: 64,
    maxMembers: 10_000,
  });
  let yields = 0;
  let step = steps.next();
  for (; step.done !== true; step = steps.next()) yields += 1;
  assert.equal(yields, 2);
  assert.ok(step.value.isValid);
  assert.equal(step.value.lines.length, 3 * LINES_PER_CHECK_STEP);
  // Lines past the bound are not parsed: a broken one there is not named, the count is.
  const over = checkBatchInput([line("a"), line("b"), "{broken", line("c")].join("\n"), "/v1/chat/completions", 2);
  assert.ok(!over.isValid);
  assert.deepEqual(
    over.errors.map((entry) => entry.code),
    ["too_many_requests"],
  );
  assert.match(over.errors[0]?.message ?? "", /has 4 requests/);
});

test("a BOM, CRLF line ends and a last line without its newline are read as OpenAI reads them", () => {
  const checked = checkBatchInput(`\uFEFF${line("a")}\r\n${line("b")}\r\n\r\n${line("c")}`, "/v1/chat/completions", 10);
  assert.ok(checked.isValid, JSON.stringify(checked));
  assert.deepEqual(
    checked.lines.map((entry) => entry.customId),
    ["a", "b", "c"],
  );
});

test("a line past the JSON bounds is named before it is parsed: too deep, or an object too wide", () => {
  const deep = `{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","x":${"[".repeat(100)}${"]".repeat(100)}}}`;
  const wideObject = `{${Array.from({ length: 30 }, (_, at) => `"k${at}":1`).join(",")}}`;
  const wide = `{"custom_id":"w","method":"POST","url":"/v1/chat/completions","body":{"model":"m","logit_bias":${wideObject}}}`;
  const bounds = { maxDepth: 64, maxMembers: 20 };
  const checked = checkBatchInput([line("a"), deep, wide, line("b")].join("\n"), "/v1/chat/completions", 10, bounds);
  assert.ok(!checked.isValid);
  assert.deepEqual(
    checked.errors.map((error) => [error.line, error.code, error.message]),
    [
      [2, "invalid_value", "Line 2 nests objects and arrays deeper than 64 levels (MAX_JSON_DEPTH)."],
      [3, "invalid_value", "Line 3 has an object of more than 20 members (MAX_JSON_OBJECT_MEMBERS)."],
    ],
  );
  // The bound is the body's, as the live door counts it: the line's own object is not one of its levels.
  const atBound = (levels: number): string =>
    `{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"x":${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}}`;
  assert.ok(checkBatchInput(atBound(8), "/v1/chat/completions", 10, { maxDepth: 8, maxMembers: 8 }).isValid);
  assert.ok(!checkBatchInput(atBound(9), "/v1/chat/completions", 10, { maxDepth: 8, maxMembers: 8 }).isValid);
  // Brackets and colons inside strings are text, not shape.
  const text = line("t", { body: { model: "m", messages: [{ role: "user", content: "[{:".repeat(100) }] } });
  assert.ok(checkBatchInput(text, "/v1/chat/completions", 10, { maxDepth: 8, maxMembers: 8 }).isValid);
});

test("one long line is checked in steps too: a yield every BYTES_PER_CHECK_STEP bytes, for a string and for dense JSON", () => {
  // Before, a line was decoded and JSON.parse'd in one step: a file of one 50 MB line yielded never.
  const longString = line("s", { body: { model: "m", input: "x".repeat(10 * BYTES_PER_CHECK_STEP) } });
  const dense = line("d", { body: { model: "m", input: Array.from({ length: 2 * BYTES_PER_CHECK_STEP }, () => 1) } });
  for (const text of [longString, dense, `${line("a")}\n${dense}\n${line("b")}`]) {
    const bytes = Buffer.from(text);
    const steps = checkingBatchInput(bytes, "/v1/chat/completions", 10, { maxDepth: 64, maxMembers: 10_000 });
    let yields = 0;
    let step = steps.next();
    for (; step.done !== true; step = steps.next()) yields += 1;
    assert.ok(step.value.isValid, JSON.stringify(step.value));
    // Each byte counts twice: read for the line's end, then scanned.
    const slices = bytes.length / BYTES_PER_CHECK_STEP;
    assert.ok(
      yields >= Math.floor(slices) && yields <= Math.ceil(2 * slices) + 1,
      `${yields} for ${bytes.length} bytes`,
    );
  }
});

test("spaces around a long line's JSON are taken off in steps too: Unicode ones (NBSP, U+3000, BOMs) alike", () => {
  // Before, the line's framing was taken off in one step, one Buffer decode and trim per character: 24 MB of NBSP
  // around a small line held the event loop for 2-3 s (the old decode-and-trim took 0.1-0.4 s for it).
  const paddingBytes = 4 * 1024 * 1024;
  for (const unit of ["\u00a0", "\u3000", "\uFEFF", " "]) {
    const padding = Buffer.alloc(paddingBytes - (paddingBytes % Buffer.byteLength(unit)), unit);
    const bytes = Buffer.concat([
      Buffer.from(`${line("a")}\n`),
      padding,
      Buffer.from(line("p")),
      padding,
      Buffer.from("\r\n"),
      padding,
      Buffer.from(`\n${line("b")}`),
    ]);
    const steps = checkingBatchInput(bytes, "/v1/chat/completions", 10, { maxDepth: 64, maxMembers: 10_000 });
    let yields = 0;
    // Each step's CPU on this thread: a loaded machine's other processes do not lengthen it, a step that does all the
    // work still takes it.
    let { value: step, ms: longestMs } = threadCpuMs(() => steps.next());
    while (step.done !== true) {
      yields += 1;
      const next = threadCpuMs(() => steps.next());
      step = next.value;
      longestMs = Math.max(longestMs, next.ms);
    }
    assert.ok(step.value.isValid, JSON.stringify(step.value));
    assert.deepEqual(
      step.value.lines.map((entry) => entry.customId),
      ["a", "p", "b"],
    );
    const padded = step.value.lines[1];
    assert.equal(padded === undefined ? "" : bytes.toString("utf8", padded.start, padded.end), line("p"));
    // Each padding byte counts twice (read for the line's end, then taken off): no slice reads more than its share.
    assert.ok(
      yields >= Math.floor((6 * padding.length) / BYTES_PER_CHECK_STEP) - 2,
      `${JSON.stringify(unit)}: ${yields}`,
    );
    // A generous bound for a loaded machine: a slice takes a few ms; 4 MB of NBSP in one step took 0.3-0.5 s.
    assert.ok(longestMs < 150, `${JSON.stringify(unit)}: a step of ${longestMs.toFixed(0)} ms`);
  }
});

test("a long custom_id or model is decoded in steps too: plain, multi-byte or escaped, read as JSON.parse reads it", () => {
  // Before, the scan was sliced but the fields it keeps were decoded in one step: a line whose custom_id and model
  // were 40 MB each held the event loop 1.1-2.7 s after its scan.
  const pieceBytes = 1024 * 1024;
  for (const piece of ["x", "é😀", '\\u0041\\ud83d\\ude00\\\\\\"\\/', "a\\n"]) {
    const value = piece.repeat(Math.ceil(pieceBytes / piece.length));
    const bytes = Buffer.from(
      `{"custom_id":"${value}","method":"POST","url":"/v1/chat/completions","body":{"model":"${value}z"}}`,
    );
    const steps = checkingBatchInput(bytes, "/v1/chat/completions", 10, { maxDepth: 64, maxMembers: 10_000 });
    let yields = 0;
    let step = steps.next();
    for (; step.done !== true; step = steps.next()) yields += 1;
    assert.ok(step.value.isValid, JSON.stringify(step.value).slice(0, 300));
    const decoded = JSON.parse(`"${value}"`) as string;
    assert.ok(step.value.lines[0]?.customId === decoded, `${JSON.stringify(piece)}: custom_id read otherwise`);
    assert.ok(step.value.model === `${decoded}z`, `${JSON.stringify(piece)}: model read otherwise`);
    // Each byte of the two values counts twice (read for the line's end, then scanned) and once more decoded.
    const valueBytes = 2 * Buffer.byteLength(value);
    assert.ok(yields >= Math.floor((3 * valueBytes) / BYTES_PER_CHECK_STEP) - 2, `${JSON.stringify(piece)}: ${yields}`);
  }
});

test("many long custom_ids (or models) of one length are checked in linear time; a repeated one is still found", () => {
  // V8 hashes a string of more than 16,383 characters by its length alone: a Set of distinct custom_ids of one such
  // length compared each new one with every one kept (3,000 of 17,000 characters: 36 s of the event loop).
  const checkMs = (length: number, count: number): number => {
    const file = Array.from({ length: count }, (_, at) => {
      const id = `${"i".repeat(length - 6)}${String(at).padStart(6, "0")}`;
      const model = `${"m".repeat(length - 6)}${String(at).padStart(6, "0")}`;
      return JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model } });
    });
    const { value: checked, ms: elapsedMs } = threadCpuMs(() =>
      checkBatchInput(file.join("\n"), "/v1/chat/completions", 10_000),
    );
    assert.ok(checked.isValid);
    assert.equal(checked.model, null);
    return elapsedMs;
  };
  const hashedMs = checkMs(16_000, 800);
  const longMs = checkMs(17_000, 800);
  // Measured against the same work for strings V8 hashes whole: about equal now; 4-5 times as long before.
  assert.ok(longMs < 2 * hashedMs + 300, `${longMs.toFixed(0)} ms against ${hashedMs.toFixed(0)} ms`);
  // Still exact: the same long id twice is a duplicate; ids that differ only by a lone surrogate and U+FFFD are not.
  const long = "d".repeat(20_000);
  const request = (id: string): string =>
    `{"custom_id":${JSON.stringify(id)},"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}`;
  const repeated = checkBatchInput(
    [request(long), request(`${long}x`), request(long)].join("\n"),
    "/v1/chat/completions",
    10,
  );
  assert.ok(!repeated.isValid);
  assert.deepEqual(
    repeated.errors.map((error) => [error.line, error.code]),
    [[3, "duplicate_custom_id"]],
  );
  const surrogates = [request(`${long}\ud800`), request(`${long}\ufffd`)].join("\n");
  assert.ok(checkBatchInput(surrogates, "/v1/chat/completions", 10).isValid);
});
