import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { record } from "../../test/helpers/records.ts";
import { WRITE_BATCH_ROWS } from "./request-log.ts";
import { RequestLogFile } from "./request-log-file.ts";

function lineCount(path: string): number {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line !== "").length;
  } catch {
    return 0;
  }
}

test("request_log.file: a batch of buffered lines is appended without waiting for the timer; the rest on flush", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "request-log-file-"));
  const path = join(dir, "requests.jsonl");
  // A timer that never fires during the test: only the batch size (or flush/close) writes.
  const file = new RequestLogFile({ path, isContentKept: false, flushIntervalMs: 600_000 });
  t.after(async () => {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const batch = WRITE_BATCH_ROWS;
  for (let index = 0; index < batch - 1; index++) file.observe(record({ id: `r${index}` }));
  await sleep(50);
  assert.equal(lineCount(path), 0, "below the batch size lines wait for the timer");
  file.observe(record({ id: `r${batch - 1}` }));
  for (let attempt = 0; attempt < 100 && lineCount(path) < batch; attempt++) await sleep(10);
  assert.equal(lineCount(path), batch);
  for (let index = batch; index < batch + 10; index++) file.observe(record({ id: `r${index}` }));
  await sleep(50);
  assert.equal(lineCount(path), batch);
  await file.flush();
  assert.equal(lineCount(path), batch + 10);
  assert.equal(JSON.parse(readFileSync(path, "utf8").split("\n")[batch + 9] ?? "").id, `r${batch + 9}`);
});
