import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { formatIssue } from "../config/config-error.ts";
import { AdjustmentsFileError, adjustmentFor, fromPythonAnchors, loadAdjustments } from "./adjustments.ts";

describe("loadAdjustments / adjustmentFor", () => {
  const groups = loadAdjustments(
    `
adjustments:
  not_chat:
    priority: -100
    regex: ["embed", "whisper", "guard"]
  small:
    priority: -2.5
    regex: ["-(1|2|3)b\\\\b", "mini"]
  favourite:
    priority: 4
    regex: ["^LLAMA-3\\\\.3"]
`,
    "test.yaml",
  );

  it("compiles every group in file order", () => {
    assert.deepEqual(
      groups.map((group) => [group.name, group.priority, group.patterns.length]),
      [
        ["not_chat", -100, 3],
        ["small", -2.5, 2],
        ["favourite", 4, 1],
      ],
    );
  });

  it("adds a group once even when several of its patterns match", () => {
    assert.deepEqual(adjustmentFor(groups, "llama-guard-3-1b-embed"), {
      total: -102.5,
      matched: ["not_chat", "small"],
    });
  });

  it("matches case-insensitively anywhere in the id", () => {
    assert.deepEqual(adjustmentFor(groups, "llama-3.3-70b-versatile"), { total: 4, matched: ["favourite"] });
    assert.deepEqual(adjustmentFor(groups, "openai/Whisper-Large-V3"), { total: -100, matched: ["not_chat"] });
    assert.deepEqual(adjustmentFor(groups, "qwen-3-32b"), { total: 0, matched: [] });
  });

  it("accepts an empty file or an empty adjustments map", () => {
    assert.deepEqual(loadAdjustments("", "empty.yaml"), []);
    assert.deepEqual(loadAdjustments("adjustments: {}\n", "empty.yaml"), []);
  });

  it("reports every problem with file, line and path", () => {
    const text = [
      "adjustments:", // 1
      "  broken:", // 2
      "    priority: high", // 3
      "    regex:", // 4
      "      - 'fine'", // 5
      "      - '(unclosed'", // 6
      "  python_flags:", // 7
      "    priority: 1", // 8
      "    regex: ['(?s)llama']", // 9
      "  typo:", // 10
      "    priorty: 1", // 11
      "    regex: ['x']", // 12
      "extra: true", // 13
    ].join("\n");
    assert.throws(
      () => loadAdjustments(text, "config/model-adjustments.yaml"),
      (error: unknown) => {
        assert.ok(error instanceof AdjustmentsFileError);
        assert.equal(error.fileName, "config/model-adjustments.yaml");
        const issues = error.issues.map(formatIssue).join("\n");
        assert.match(issues, /model-adjustments\.yaml:3 adjustments\.broken\.priority: must be a number/);
        assert.match(
          issues,
          /model-adjustments\.yaml:6 adjustments\.broken\.regex\.1: invalid regular expression "\(unclosed"/,
        );
        assert.match(issues, /model-adjustments\.yaml:9 adjustments\.python_flags\.regex\.0: .*Python-only syntax/);
        assert.match(issues, /model-adjustments\.yaml:11 adjustments\.typo\.priorty: unknown key/);
        assert.match(issues, /adjustments\.typo: missing priority/);
        assert.match(issues, /model-adjustments\.yaml:13 extra: unknown key/);
        assert.equal(error.issues.length, 6);
        return true;
      },
    );
  });

  it("reports YAML syntax errors with their line", () => {
    assert.throws(
      () => loadAdjustments("adjustments:\n  a: [unclosed\n", "bad.yaml"),
      (error: unknown) =>
        error instanceof AdjustmentsFileError && /^bad\.yaml:\d+$/.test(error.issues[0]?.location ?? ""),
    );
  });
});

describe("the shipped config/model-adjustments.yaml", async () => {
  const path = new URL("../../config/model-adjustments.yaml", import.meta.url);
  const groups = loadAdjustments(await readFile(path, "utf8"), "config/model-adjustments.yaml");
  const total = (id: string): number => adjustmentFor(groups, id).total;

  it("pushes non-chat models far below zero", () => {
    for (const id of [
      "text-embedding-3-small",
      "nvidia/nv-embedqa-e5-v5",
      "whisper-large-v3-turbo",
      "playai-tts",
      "meta-llama/llama-guard-4-12b",
      "openai/gpt-oss-safeguard-20b",
      "omni-moderation-latest",
      "dall-e-3",
      "black-forest-labs/flux.1-schnell",
      "gemini-2.5-flash-image",
      "bge-reranker-v2-m3",
    ]) {
      assert.ok(total(id) <= -100, id);
    }
  });

  it("leaves ordinary chat and coder models alone", () => {
    for (const id of [
      "llama-3.3-70b-versatile",
      "qwen/qwen-2.5-coder-32b-instruct:free",
      "codestral-latest",
      "models/gemini-2.5-flash",
      "gpt-4o-mini",
      "deepseek/deepseek-r1:free",
      "moonshotai/kimi-k2-instruct",
    ]) {
      assert.equal(total(id), 0, id);
    }
  });

  it("penalises tiny and legacy models a little", () => {
    for (const id of [
      "meta-llama/llama-3.2-1b-instruct",
      "qwen2.5-0.5b-instruct",
      "gemma-3n-e2b-it",
      "gpt-3.5-turbo",
    ]) {
      assert.ok(total(id) < 0 && total(id) > -10, id);
    }
  });
});

describe("Python's inline syntax", () => {
  it("a leading `(?i)` is accepted (matching is case-insensitive anyway); named groups get a hint, not the flags' one", () => {
    const groups = loadAdjustments(
      "adjustments:\n  llama:\n    priority: 1\n    regex: ['(?i)llama', '(?i)\\Agemma']\n",
      "x.yaml",
    );
    assert.deepEqual(adjustmentFor(groups, "Meta-LLAMA-3").matched, ["llama"]);
    assert.deepEqual(adjustmentFor(groups, "gemma-2-9b").matched, ["llama"]);
    assert.deepEqual(adjustmentFor(groups, "google/gemma-2-9b").matched, []);
    const messageFor = (pattern: string): string => {
      try {
        loadAdjustments(`adjustments:\n  g:\n    priority: 1\n    regex: ['${pattern}']\n`, "x.yaml");
      } catch (error) {
        if (error instanceof AdjustmentsFileError) return error.issues.map(formatIssue).join("\n");
        throw error;
      }
      assert.fail(`${pattern} loaded`);
    };
    assert.match(
      messageFor("(?P<size>\\d+)b"),
      /x\.yaml:4 adjustments\.g\.regex\.0: .*a named group is written `\(\?<name>\.\.\.\)`/,
    );
    assert.match(messageFor("(?P=size)"), /a named backreference is written `\\k<name>`/);
    assert.match(messageFor("(?x)llama"), /inline flags; matching is already case-insensitive/);
    assert.match(messageFor("llama(?i)"), /inline flags/, "only a leading (?i) is dropped");
  });
});

describe("Python's anchors", () => {
  // Single-quoted YAML keeps the backslash as written, as the Python project's file does.
  const groups = loadAdjustments(
    `
adjustments:
  instruct_last:
    priority: 1
    regex: ['instruct\\Z']
  llama_first:
    priority: 2
    regex: ['\\Allama']
`,
    "test.yaml",
  );

  it("`\\Z` anchors at the end and `\\A` at the start, as in Python (not the letters Z and A)", () => {
    assert.deepEqual(adjustmentFor(groups, "llama-instruct").matched, ["instruct_last", "llama_first"]);
    assert.deepEqual(adjustmentFor(groups, "instructZ-v2").matched, []);
    assert.deepEqual(adjustmentFor(groups, "code-llama-instruct-v2").matched, []);
    assert.deepEqual(adjustmentFor(groups, "Allama").matched, []);
  });

  it("only outside character classes and unless the backslash is escaped", () => {
    assert.equal(fromPythonAnchors("\\Afoo\\Z"), "^foo$");
    assert.equal(fromPythonAnchors("foo\\z"), "foo$");
    assert.equal(fromPythonAnchors("a\\\\Z"), "a\\\\Z", "an escaped backslash, then the letter Z");
    assert.equal(fromPythonAnchors("[\\A\\Z]x"), "[\\A\\Z]x", "inside a class: left alone");
    assert.equal(fromPythonAnchors("[]\\Z]\\Z"), "[\\]\\Z]$", "a leading ] does not end the class");
    assert.equal(fromPythonAnchors("[^]]\\Z"), "[^\\]]$");
    assert.equal(fromPythonAnchors("[\\]]\\Z"), "[\\]]$");
    assert.equal(fromPythonAnchors("\\d+b\\b"), "\\d+b\\b", "other escapes untouched");
  });

  it("a `]` first in a class is a member, as in Python (JavaScript reads `[]` as matching nothing, `[^]` anything)", () => {
    const classes = loadAdjustments(
      `
adjustments:
  bracket_or_a:
    priority: 1
    regex: ['[]a]x']
  not_bracket_nor_a:
    priority: 2
    regex: ['\\A[^]a]x']
`,
      "test.yaml",
    );
    // Python: re.search("[]a]x", "ax") and "]x" match; re.search(r"\A[^]a]x", "bx") matches, "ax" and "]x" do not.
    assert.deepEqual(adjustmentFor(classes, "ax").matched, ["bracket_or_a"]);
    assert.deepEqual(adjustmentFor(classes, "]x").matched, ["bracket_or_a"]);
    assert.deepEqual(adjustmentFor(classes, "bx").matched, ["not_bracket_nor_a"]);
    assert.deepEqual(adjustmentFor(classes, "a]x").matched, ["bracket_or_a"]);
  });
});
