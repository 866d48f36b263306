import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { growthFactorFor, hasOwnSemiSpaceFlags, YOUNG_GENERATION_CEILING_BYTES } from "./young-generation.ts";

describe("young generation ceiling", () => {
  it("stops growth at the ceiling and lets a smaller new space grow again", () => {
    assert.equal(growthFactorFor(YOUNG_GENERATION_CEILING_BYTES), 1);
    assert.equal(growthFactorFor(4 * YOUNG_GENERATION_CEILING_BYTES), 1);
    assert.equal(growthFactorFor(YOUNG_GENERATION_CEILING_BYTES / 2), 2);
    assert.equal(growthFactorFor(1024 * 1024), 2);
  });

  it("leaves V8 alone when the process was given its own semi-space flags", () => {
    assert.equal(hasOwnSemiSpaceFlags(["--max-semi-space-size=64"], undefined), true);
    assert.equal(hasOwnSemiSpaceFlags([], "--max-old-space-size=512 --max_semi_space_size=8"), true);
    assert.equal(hasOwnSemiSpaceFlags(["--semi-space-growth-factor=4"], ""), true);
    assert.equal(hasOwnSemiSpaceFlags(["--import", "x.ts", "--max-old-space-size=512"], "--enable-source-maps"), false);
    assert.equal(hasOwnSemiSpaceFlags([], undefined), false);
  });
});
