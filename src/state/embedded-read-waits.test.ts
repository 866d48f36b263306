// Reads of the embedded kept rows while another process recovers the file's WAL (the one moment a read in WAL mode is
// refused): tried again by a timer for up to a second, the event loop serving meanwhile, then a 503 naming the lock.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { holdWalRecovery, isPythonInstalled, PYTHON_MISSING } from "../../test/helpers/sqlite-lock.ts";
import { ManualClock } from "../clock.ts";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { EmbeddedKeptResponses, KEPT_CONVERSATIONS } from "./embedded-kept-responses.ts";

const LIMITS = { maxEntries: 10, maxBytes: 100_000, maxAgeMs: 60_000 };
const skip = isPythonInstalled() ? false : PYTHON_MISSING;

/** A conversation store (its log is the events table) holding one row with two appended events. */
async function storeWithEvents(t: TestContext): Promise<{ path: string; store: EmbeddedKeptResponses }> {
  const path = join(mkdtempSync(join(tmpdir(), "read-waits-")), "state.db");
  const store = new EmbeddedKeptResponses(path, LIMITS, new ManualClock(), undefined, KEPT_CONVERSATIONS);
  t.after(() => store.close());
  await store.put({ id: "conv_a", json: '{"id":"conv_a"}', itemIds: ["msg_a"] });
  assert.equal(await store.appendEvents("conv_a", 0, ["e0", "e1"]), true);
  return { path, store };
}

test("embedded: a read that meets a WAL recovery waits for it (get, getByItem, getEvents) with the event loop serving", {
  skip,
}, async (t) => {
  const { path, store } = await storeWithEvents(t);
  const recovery = await holdWalRecovery(t, path, 300);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  t.after(() => clearInterval(ticker));
  const startedMs = performance.now();
  const [json, byItem, events] = await Promise.all([
    store.get("conv_a"),
    store.getByItem("msg_a"),
    store.getEvents("conv_a", 0),
  ]);
  const elapsedMs = performance.now() - startedMs;
  assert.equal(json, '{"id":"conv_a"}');
  assert.equal(byItem, '{"id":"conv_a"}');
  assert.deepEqual(events, ["e0", "e1"], "the conversation's log, read once the recovery ended");
  assert.ok(elapsedMs >= 200, `answered after ${Math.round(elapsedMs)} ms: before the recovery ended`);
  // The loop served meanwhile: a wait inside SQLite would let no timer run. Not a count of ticks: a loaded machine
  // gives a 5 ms ticker only a few turns (2 in ~90 ms seen, src/sqlite-file.test.ts).
  assert.ok(ticks >= 1, `the event loop ran ${ticks} 5 ms timers during a ${Math.round(elapsedMs)} ms wait`);
  await recovery.done;
});

test("embedded: a recovery longer than the read's wait (1 s) is the 503 that names the lock, not an opaque error", {
  skip,
}, async (t) => {
  const { path, store } = await storeWithEvents(t);
  // Held far longer than the read's 1 s wait: a read that waited for the recovery instead would take all of it.
  const recovery = await holdWalRecovery(t, path, 6_000);
  const startedMs = performance.now();
  await assert.rejects(store.getEvents("conv_a", 0), (error: unknown) => {
    assert.ok(error instanceof ServiceUnavailableError, `not a 503: ${String(error)}`);
    assert.match(error.message, /state file \(state\.path\) is locked by another process/);
    return true;
  });
  const elapsedMs = performance.now() - startedMs;
  assert.ok(elapsedMs >= 900 && elapsedMs < 4_000, `gave up after ${Math.round(elapsedMs)} ms`);
  await recovery.done;
  assert.deepEqual(await store.getEvents("conv_a", 0), ["e0", "e1"], "read once the recovery ended");
});
