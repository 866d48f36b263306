import assert from "node:assert/strict";
import { test } from "node:test";
import { formatLogLine, isPrettyLog } from "./pretty-log.ts";

const TIME = Date.UTC(2026, 0, 1, 12, 4, 5);

test("a log line becomes time, level, message and fields; no colour when asked", () => {
  const line = JSON.stringify({
    level: 40,
    time: TIME,
    pid: 1,
    hostname: "h",
    msg: "provider skipped",
    provider: "groq",
  });
  const text = formatLogLine(line, false);
  assert.match(text, /^\d\d:\d\d:\d\d WARN {2}provider skipped provider=groq$/);
  assert.doesNotMatch(text, /pid|hostname|\{/);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ESC of ANSI colours is what is checked.
  assert.match(formatLogLine(line, true), /\u001b\[33mWARN/);
});

test("a routed line is one readable line per request", () => {
  const line = JSON.stringify({
    level: 30,
    time: TIME,
    msg: "routed",
    reqId: "req-1",
    endpoint: "chat",
    model: "best",
    status: 200,
    servedBy: "beta/m",
    attempts: ["alpha/m:rate_limited:429", "beta/m:success:200"],
    ms: 42,
  });
  assert.match(
    formatLogLine(line, false),
    /INFO {2}chat best -> beta\/m 200 42 ms \[alpha\/m:rate_limited:429 beta\/m:success:200\] req-1$/,
  );
});

test("not JSON passes through; the format follows log.format and the terminal", () => {
  assert.equal(formatLogLine("plain text", false), "plain text");
  assert.equal(isPrettyLog("auto", true), true);
  assert.equal(isPrettyLog("auto", false), false);
  assert.equal(isPrettyLog("json", true), false);
  assert.equal(isPrettyLog("pretty", false), true);
});
