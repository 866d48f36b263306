import assert from "node:assert/strict";
import { validateHeaderValue } from "node:http";
import { test } from "node:test";
import fc from "fast-check";
import { MAX_HEADER_VALUE_CHARS, toHeaderValue } from "./header-value.ts";

test("printable ASCII is kept as it is (the same string, no copy)", () => {
  for (const value of ["", "llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct:free", "a b~!{}"]) {
    assert.equal(toHeaderValue(value), value);
  }
});

test("non-Latin-1, Latin-1 and control characters are percent-encoded as UTF-8; decodeURIComponent restores them", () => {
  assert.equal(toHeaderValue("模型-unicode"), "%E6%A8%A1%E5%9E%8B-unicode");
  assert.equal(toHeaderValue("café"), "caf%C3%A9");
  assert.equal(toHeaderValue("a\r\nx-injected: 1"), "a%0D%0Ax-injected: 1");
  assert.equal(toHeaderValue("tab\there\u0000"), "tab%09here%00");
  assert.equal(toHeaderValue("100%"), "100%");
  assert.equal(toHeaderValue("100%-模"), "100%25-%E6%A8%A1");
  assert.equal(toHeaderValue("🎉"), "%F0%9F%8E%89");
  for (const value of ["模型-unicode", "café\u0007", "100%-模", "🎉 x"]) {
    assert.equal(decodeURIComponent(toHeaderValue(value)), value);
  }
});

test("a lone surrogate becomes U+FFFD's bytes instead of throwing", () => {
  assert.equal(toHeaderValue("a\ud800b"), "a%EF%BF%BDb");
});

test("long values are cut at the limit, never inside an escape", () => {
  assert.equal(toHeaderValue("a".repeat(5000)).length, MAX_HEADER_VALUE_CHARS);
  const cut = toHeaderValue(`${"a".repeat(MAX_HEADER_VALUE_CHARS - 4)}模型`);
  assert.equal(cut, "a".repeat(MAX_HEADER_VALUE_CHARS - 4));
  assert.equal(toHeaderValue("模".repeat(10), 20), "%E6%A8%A1%E6%A8%A1");
  const startedAt = performance.now();
  assert.equal(toHeaderValue("模".repeat(5_000_000)).length, Math.floor(MAX_HEADER_VALUE_CHARS / 9) * 9);
  assert.ok(performance.now() - startedAt < 500, "stops reading once the value is full");
});

test("property: every string gives a value Node accepts in a header", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (value) => {
      const headerValue = toHeaderValue(value);
      assert.doesNotThrow(() => validateHeaderValue("x-gateway-model", headerValue));
      assert.ok(headerValue.length <= MAX_HEADER_VALUE_CHARS);
    }),
    { numRuns: 2000 },
  );
});
