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

test("not JSON, or JSON but no object, passes through; the format follows log.format and the terminal", () => {
  assert.equal(formatLogLine("plain text", false), "plain text");
  // A line another writer put on the stream: printed as it is, never read as fields (null used to throw).
  for (const line of ["null", "[1,2]", '"text"', "42"]) assert.equal(formatLogLine(line, false), line);
  assert.equal(isPrettyLog("auto", true), true);
  assert.equal(isPrettyLog("auto", false), false);
  assert.equal(isPrettyLog("json", true), false);
  assert.equal(isPrettyLog("pretty", false), true);
});

test("control characters from a client or an upstream are escaped: no forged line, no terminal escape", () => {
  const forged = "evil\n08:40:00 INFO  chat m -> alpha/m 200 3 ms req-forged\u001b[31mRED\r\u2028\u0085";
  const routed = formatLogLine(
    JSON.stringify({ level: 30, time: TIME, msg: "routed", endpoint: "chat", model: forged, status: 404, ms: 1 }),
    false,
  );
  const message = formatLogLine(
    JSON.stringify({
      level: 40,
      time: TIME,
      msg: `unknown model ${forged}`,
      [`field${forged}`]: forged,
      nested: { a: forged },
    }),
    false,
  );
  for (const text of [routed, message]) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is checked.
    assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, text);
    assert.match(text, /evil\\n08:40:00 INFO {2}chat m -> alpha\/m 200 3 ms req-forged\\x1b\[31mRED\\r\\u2028\\x85/);
  }
});
