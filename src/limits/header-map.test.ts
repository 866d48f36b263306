import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { headerValue } from "./header-map.ts";

describe("headerValue", () => {
  it("trims, skips blanks and takes the first value of a list", () => {
    const headers = { a: " 1 ", b: ["", " ", "2", "3"], c: "  ", d: [], e: undefined };
    assert.equal(headerValue(headers, "a"), "1");
    assert.equal(headerValue(headers, "b"), "2");
    assert.equal(headerValue(headers, "c"), undefined);
    assert.equal(headerValue(headers, "d"), undefined);
    assert.equal(headerValue(headers, "e"), undefined);
    assert.equal(headerValue(headers, "missing"), undefined);
  });
});
