import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cacheDirective } from "./cache-control.ts";

describe("Cache-Control of a request", () => {
  test("no-store wins over no-cache, which wins over max-age; max-age=0 is no-cache", () => {
    assert.deepEqual(cacheDirective(undefined), { mode: "default" });
    assert.deepEqual(cacheDirective(""), { mode: "default" });
    assert.deepEqual(cacheDirective("no-cache"), { mode: "no-cache" });
    assert.deepEqual(cacheDirective("No-Cache, no-store"), { mode: "no-store" });
    assert.deepEqual(cacheDirective("max-age=60, no-store"), { mode: "no-store" });
    assert.deepEqual(cacheDirective("max-age=60, no-cache"), { mode: "no-cache" });
    assert.deepEqual(cacheDirective(["max-age=0"]), { mode: "no-cache" });
  });

  test("max-age=N takes answers kept at most N seconds ago; the smallest of several counts; the quoted form too", () => {
    assert.deepEqual(cacheDirective("max-age=60"), { mode: "default", maxAgeMs: 60_000 });
    assert.deepEqual(cacheDirective("MAX-AGE=5"), { mode: "default", maxAgeMs: 5_000 });
    assert.deepEqual(cacheDirective(' max-age="7" '), { mode: "default", maxAgeMs: 7_000 });
    assert.deepEqual(cacheDirective(["max-age=30", "max-age=10"]), { mode: "default", maxAgeMs: 10_000 });
    assert.deepEqual(cacheDirective("max-age=30,max-age=0"), { mode: "no-cache" });
    assert.deepEqual(cacheDirective("max-stale, max-age=2, min-fresh=1"), { mode: "default", maxAgeMs: 2_000 });
  });

  test("a malformed max-age is ignored, never an error", () => {
    for (const header of [
      "max-age=",
      "max-age=abc",
      "max-age=-1",
      "max-age=1.5",
      "max-age=1e3",
      "max-age=0x10",
      "max-age=99999999999999999999",
      'max-age="5',
      "max-age",
      "s-maxage=5",
      ",,,",
      "max-age=5=6",
    ]) {
      assert.deepEqual(cacheDirective(header), { mode: "default" }, header);
    }
  });
});
