import assert from "node:assert/strict";
import { test } from "node:test";
import { codingOf } from "./compressed-body.ts";

test("codingOf reads one coding, case- and space-insensitive, and refuses the rest", () => {
  assert.equal(codingOf(undefined), "identity");
  assert.equal(codingOf(""), "identity");
  assert.equal(codingOf("identity"), "identity");
  assert.equal(codingOf(" GZIP "), "gzip");
  assert.equal(codingOf("x-gzip"), "gzip");
  assert.equal(codingOf("deflate"), "deflate");
  assert.equal(codingOf("br"), "br");
  assert.equal(codingOf("zstd"), "zstd");
  assert.equal(codingOf("identity, gzip"), "gzip");
  assert.deepEqual(codingOf("gzip, br"), { refused: "gzip, br" });
  assert.deepEqual(codingOf("compress"), { refused: "compress" });
  // Names of Object.prototype's own members are no codings.
  assert.deepEqual(codingOf("__proto__"), { refused: "__proto__" });
  assert.deepEqual(codingOf("toString"), { refused: "tostring" });
});
