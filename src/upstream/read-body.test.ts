// BoundedChunks: the one bound both ways of reading an upstream body keep (readBodyBounded, bufferedCall).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BoundedChunks } from "./read-body.ts";

describe("BoundedChunks", () => {
  test("keeps whole chunks up to the bound, exactly at it included", () => {
    const kept = new BoundedChunks(6);
    assert.equal(kept.push(Buffer.from("abc")), true);
    assert.equal(kept.push(Buffer.from("def")), true);
    assert.equal(kept.text(), "abcdef");
  });

  test("past the bound, keeps only the bytes within it and says so", () => {
    const kept = new BoundedChunks(5);
    assert.equal(kept.push(Buffer.from("abc")), true);
    assert.equal(kept.push(Buffer.from("defgh")), false);
    assert.equal(kept.text(), "abcde");
  });

  test("a character split by the bound becomes U+FFFD; nothing kept is an empty text", () => {
    const kept = new BoundedChunks(2);
    assert.equal(kept.push(Buffer.from("aé")), false); // "é" is two bytes: only its first is kept
    assert.equal(kept.text(), "a\uFFFD");
    assert.equal(new BoundedChunks(10).text(), "");
  });
});
