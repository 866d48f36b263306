// The bundle's stand-in for `node:assert` (bin/lazy-assert.cjs): the real module stays unloaded while every
// condition holds, and every other use behaves as the real `assert`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "./helpers/cli-process.ts";

/** Runs `body` in a fresh Node (this test process has loaded `node:assert` already); returns its JSON output. */
function inFreshNode(body: string): Record<string, unknown> {
  const script = `
const standIn = require(${JSON.stringify(join(REPO_ROOT, "bin", "lazy-assert.cjs"))});
const isLoaded = () => process.moduleLoadList.includes("NativeModule assert");
const thrown = (call) => { try { call(); return null; } catch (error) { return { name: error.name, code: error.code, message: error.message }; } };
const out = {};
${body}
process.stdout.write(JSON.stringify(out));`;
  const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

test("conditions that hold return without loading node:assert", () => {
  const out = inFreshNode(`
out.loadedAtStart = isLoaded();
out.returned = [standIn(true, "a"), standIn(1), standIn("x", "b"), standIn({}, "c")];
out.loadedAfter = isLoaded();
out.type = typeof standIn;`);
  assert.deepEqual(out, {
    loadedAtStart: false,
    returned: [null, null, null, null],
    loadedAfter: false,
    type: "function",
  });
});

test("a failing condition throws the real AssertionError, with the message", () => {
  const out = inFreshNode(`
out.false = thrown(() => standIn(false, "The default route must be a function"));
out.zero = thrown(() => standIn(0));
out.none = thrown(() => standIn());
out.loaded = isLoaded();`);
  assert.deepEqual(out.false, {
    name: "AssertionError",
    code: "ERR_ASSERTION",
    message: "The default route must be a function",
  });
  assert.equal((out.zero as { name: string }).name, "AssertionError");
  // Without a value, the real assert's own message.
  assert.match((out.none as { message: string }).message, /No value argument passed/);
  assert.equal(out.loaded, true);
});

test("properties are the real module's", () => {
  const out = inFreshNode(`
out.equal = thrown(() => standIn.strictEqual(1, 1));
out.unequal = thrown(() => standIn.strictEqual(1, 2))?.name;
out.isError = standIn.AssertionError === require("node:assert").AssertionError;
out.hasOk = "ok" in standIn;`);
  assert.deepEqual(out, { equal: null, unequal: "AssertionError", isError: true, hasOk: true });
});
