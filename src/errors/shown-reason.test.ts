import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cutText, MAX_SHOWN_REASON_CHARS, shownReason } from "./shown-reason.ts";

describe("shownReason / cutText", () => {
  it("keeps a reason up to the limit whole and cuts a longer one to the limit, marked with …", () => {
    const exact = "r".repeat(MAX_SHOWN_REASON_CHARS);
    assert.equal(shownReason(exact), exact);
    const cut = shownReason(`${exact}s`);
    assert.equal(cut.length, MAX_SHOWN_REASON_CHARS);
    assert.equal(cut, `${"r".repeat(MAX_SHOWN_REASON_CHARS - 1)}…`);
  });

  it("never leaves half of a character outside the BMP at the cut", () => {
    // The emoji's two units are the 299th and 300th: the cut falls between them.
    const split = `${"a".repeat(298)}\u{1F600}${"b".repeat(50)}`;
    const cut = shownReason(split);
    assert.ok(cut.isWellFormed(), JSON.stringify(cut.slice(-3)));
    assert.equal(cut, `${"a".repeat(298)}…`);
    // An emoji that ends right before the cut is kept whole.
    const before = `${"a".repeat(297)}\u{1F600}${"b".repeat(50)}`;
    assert.equal(shownReason(before), `${"a".repeat(297)}\u{1F600}…`);
    // Nothing but emoji: every cut lands on a boundary or moves one unit back.
    for (const maxChars of [2, 3, 4, 5, 6]) {
      const text = cutText("\u{1F600}".repeat(10), maxChars);
      assert.ok(text.isWellFormed(), `${maxChars}: ${JSON.stringify(text)}`);
      assert.ok(text.length <= maxChars, `${maxChars}: ${text.length}`);
    }
  });
});
