// The batch rows in memory and in the state file (redis-batch-rows.test.ts: the same in Redis): a line keeps its first
// result, a write of that same result again says it is the one kept (its first answer lost, the runner counts it
// then), and the results come back in line order whatever order they were written in.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type BatchRows, MemoryBatchRows } from "./batch-rows.ts";
import { EmbeddedBatchRows } from "./embedded-batch-rows.ts";

const stores: readonly { readonly name: string; readonly open: () => BatchRows }[] = [
  { name: "memory", open: () => new MemoryBatchRows() },
  {
    name: "the state file",
    open: () => new EmbeddedBatchRows(join(mkdtempSync(join(tmpdir(), "batch-rows-")), "state.db")),
  },
];

for (const store of stores) {
  test(`${store.name}: a line's first result is kept; the same result again is the one kept, another is not`, async (t) => {
    const rows = store.open();
    t.after(() => rows.close());
    assert.equal(await rows.putResult("batch_1", { index: 1, isError: false, line: "one" }), true);
    assert.equal(await rows.putResult("batch_1", { index: 1, isError: false, line: "one" }), true, "the same again");
    assert.equal(await rows.putResult("batch_1", { index: 1, isError: false, line: "one, again" }), false);
    assert.equal(await rows.putResult("batch_1", { index: 1, isError: true, line: "one" }), false, "an error now");
    const lines: string[] = [];
    for (const index of [4, 0, 3, 2]) {
      assert.equal(await rows.putResult("batch_1", { index, isError: false, line: `line ${index}` }), true);
    }
    for await (const page of rows.resultPages("batch_1", 1024)) lines.push(...page.map((result) => result.line));
    assert.deepEqual(lines, ["line 0", "one", "line 2", "line 3", "line 4"]);
  });
}
