import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cacheDirective, cacheRequest } from "./cache-control.ts";

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

describe("the gateway's own cache headers and only-if-cached", () => {
  test("only-if-cached goes with any mode; the TTL and the namespace are read; empty is none", () => {
    assert.deepEqual(cacheDirective("only-if-cached"), { mode: "default", isOnlyIfCached: true });
    assert.deepEqual(cacheDirective("Only-If-Cached, max-age=5"), {
      mode: "default",
      maxAgeMs: 5_000,
      isOnlyIfCached: true,
    });
    assert.deepEqual(cacheDirective("no-store, only-if-cached"), { mode: "no-store", isOnlyIfCached: true });
    assert.deepEqual(cacheRequest({ "x-gateway-cache-ttl": "30", "x-gateway-cache-namespace": "run-7/a:b" }), {
      mode: "default",
      storeTtlMs: 30_000,
      namespace: "run-7/a:b",
    });
    assert.deepEqual(cacheRequest({ "x-gateway-cache-ttl": "0" }), { mode: "default", storeTtlMs: 0 });
    assert.deepEqual(cacheRequest({ "x-gateway-cache-ttl": " ", "x-gateway-cache-namespace": "" }), {
      mode: "default",
    });
  });

  test("a malformed TTL or namespace is a problem naming its header, never a value used", () => {
    for (const ttl of ["abc", "-1", "1.5", "10s", "1e3", "5, 6", "9999999999999"]) {
      const directive = cacheRequest({ "x-gateway-cache-ttl": ttl });
      assert.equal(directive.problem?.header, "x-gateway-cache-ttl", ttl);
      assert.equal(directive.storeTtlMs, undefined, ttl);
    }
    for (const namespace of ["a".repeat(129), "a,b", "with space", "é", ["a", "b"]]) {
      const directive = cacheRequest({ "x-gateway-cache-namespace": namespace });
      assert.equal(directive.problem?.header, "x-gateway-cache-namespace", String(namespace));
      assert.equal(directive.namespace, undefined);
    }
  });
});
