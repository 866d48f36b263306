import assert from "node:assert/strict";
import { test } from "node:test";
import { redactSecrets } from "../errors/redact.ts";
import { handleUncaughtException, reportProcessFaultsWith, uncaughtExceptionText } from "./process-faults.ts";

const KEY = "plainKEYunit-0123";
const redact = (text: string) => redactSecrets(text, [KEY]);

test("an uncaught exception is printed as Node prints it (stack, cause), redacted, then the process exits with 1", (t) => {
  const logged: { error: Error; message: string }[] = [];
  reportProcessFaultsWith({ redact, log: (error, message) => logged.push({ error, message }) });
  t.after(() => reportProcessFaultsWith({ redact: (text) => text }));
  const written: string[] = [];
  const exits: number[] = [];
  const error = new Error(`upstream said: bad key ${KEY}`, { cause: new Error(`Bearer ${KEY}`) });
  handleUncaughtException(error, "uncaughtException", {
    write: (text) => written.push(text),
    exit: (code) => exits.push(code),
  });
  assert.deepEqual(exits, [1]);
  const text = written.join("");
  assert.ok(!text.includes(KEY), text);
  assert.match(text, /^Error: upstream said: bad key \[redacted\]\n {4}at /);
  assert.match(text, /\[cause\]: Error: Bearer \[redacted\]/);
  assert.match(text, /\nNode\.js v\d+/);
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.error, error, "the logger gets the error (its own hook redacts the line)");
  assert.equal(
    logged[0]?.message,
    "uncaught exception (a bug; the gateway exits): Error: upstream said: bad key [redacted]",
  );
});

test("a logger that throws does not stop the print or the exit", (t) => {
  reportProcessFaultsWith({
    redact,
    log: () => {
      throw new Error("logger broken");
    },
  });
  t.after(() => reportProcessFaultsWith({ redact: (text) => text }));
  const written: string[] = [];
  const exits: number[] = [];
  handleUncaughtException(`a string ${KEY}`, "unhandledRejection", {
    write: (text) => written.push(text),
    exit: (code) => exits.push(code),
  });
  assert.deepEqual(exits, [1]);
  assert.match(written.join(""), /^Uncaught \(in promise\) 'a string \[redacted\]'/);
});

test("a value that is not an Error is shown as Node shows it", () => {
  assert.match(uncaughtExceptionText({ key: KEY }, "uncaughtException", redact), /^Uncaught \{ key: '\[redacted\]' \}/);
});
