// A continuation's row (its turn and a pointer: protocols/responses/kept-chain-history.ts) that waits in memory for the
// state file's lock another process holds is written later, by a timer: its links are checked then, under the lock,
// and a link gone meanwhile (deleted or evicted by that process) makes it kept whole, as a put that finds one gone at
// once is. Kept pointing to the gone row, its next turn was a 400 though its answer was made from the whole chain.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ManualClock } from "../clock.ts";
import { completedAnswer } from "../protocols/__fixtures__/fixtures.ts";
import type { ChatMessage } from "../protocols/chat-completions.ts";
import { withChainHistory } from "../protocols/responses/kept-chain-history.ts";
import { inRows, NO_EVENTS } from "../protocols/responses/kept-responses.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import { EmbeddedKeptResponses } from "./embedded-kept-responses.ts";

const LIMITS = { maxEntries: 100, maxBytes: 1 << 20, maxAgeMs: 3_600_000 };

const turn = (text: string): ChatMessage[] => [
  { role: "user", content: `Turn ${text}.` },
  { role: "assistant", content: `Answer ${text}.` },
];

test("state file: a continuation's row that waited for the lock while its link was deleted is kept whole", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "chain-waiting-")), "state.db");
  const rows = new EmbeddedKeptResponses(path, LIMITS, new ManualClock(Date.now()));
  t.after(() => rows.close());
  const kept = inRows(rows, (error) => assert.fail(String(error)));
  const first: StoredResponse = { response: completedAnswer("resp_first", "Answer one."), conversation: turn("one") };
  assert.equal(await kept.put(first), true);
  // Another process takes the write lock and deletes the first row (a DELETE, or its eviction) while it holds it.
  const other = new DatabaseSync(path);
  t.after(() => other.close());
  other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
  other.exec("DELETE FROM kept_responses WHERE id = 'resp_first'");
  // The continuation was answered from the whole chain (read before the delete); its row waits for the lock.
  const second: StoredResponse = {
    response: completedAnswer("resp_second", "Answer two."),
    conversation: turn("two"),
    chainHistory: { previousIds: ["resp_first"] },
  };
  const whole: StoredResponse = { ...second, conversation: [...turn("one"), ...turn("two")] };
  const { chainHistory: _pointer, ...wholeRow } = whole;
  assert.equal(await kept.put(second, wholeRow), true);
  assert.equal(rows.waitingCount(), 1, "the row waits for the lock");
  other.exec("COMMIT");
  for (let waitedMs = 0; rows.waitingCount() > 0; waitedMs += 20) {
    assert.ok(waitedMs < 10_000, "the waiting row was never written");
    await sleep(20);
  }
  const stored = await kept.get("resp_second", NO_EVENTS);
  assert.ok(stored !== undefined);
  assert.equal(stored.chainHistory, undefined, "kept pointing to a row that is gone");
  assert.deepEqual((await withChainHistory(kept, stored)).conversation, [...turn("one"), ...turn("two")]);
});

/** The write lock held by another connection on the file: the puts meanwhile wait in memory. */
function lockedBy(t: TestContext, path: string): DatabaseSync {
  const other = new DatabaseSync(path);
  t.after(() => other.isOpen && other.close());
  other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
  return other;
}

test("state file: a waiting continuation holds its whole form's JSON, not the response it was built from", async (t) => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const path = join(mkdtempSync(join(tmpdir(), "chain-waiting-")), "state.db");
  const rows = new EmbeddedKeptResponses(path, LIMITS, new ManualClock(Date.now()));
  t.after(() => rows.close());
  const kept = inRows(rows, (error) => assert.fail(String(error)));
  const first: StoredResponse = { response: completedAnswer("resp_first", "Answer one."), conversation: turn("one") };
  assert.equal(await kept.put(first), true);
  const other = lockedBy(t, path);
  // Built and dropped in a function of its own: only the store can still hold the whole response.
  const putWaiting = async (): Promise<WeakRef<StoredResponse>> => {
    const second: StoredResponse = {
      response: completedAnswer("resp_second", "Answer two."),
      conversation: turn("two"),
      chainHistory: { previousIds: ["resp_first"] },
    };
    const { chainHistory: _pointer, ...whole } = { ...second, conversation: [...turn("one"), ...turn("two")] };
    assert.equal(await kept.put(second, whole), true);
    return new WeakRef(whole);
  };
  const whole = await putWaiting();
  assert.equal(rows.waitingCount(), 1, "the row waits for the lock");
  await sleep(0);
  gc();
  // Its JSON is what the waiting bytes count; the objects it was made from (a whole conversation's) were held too.
  assert.equal(whole.deref(), undefined, "the waiting row holds the whole response's objects, uncounted");
  other.exec("COMMIT");
  for (let waitedMs = 0; rows.waitingCount() > 0; waitedMs += 20) {
    assert.ok(waitedMs < 10_000, "the waiting row was never written");
    await sleep(20);
  }
  assert.ok((await kept.get("resp_second", NO_EVENTS))?.chainHistory !== undefined, "kept pointing, its link there");
});

test("state file: whole forms never push waiting answers out: they go first, the answers stay", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "chain-waiting-")), "state.db");
  const rows = new EmbeddedKeptResponses(path, { ...LIMITS, maxBytes: 64 << 20 }, new ManualClock(Date.now()));
  t.after(() => rows.close());
  const lost: string[] = [];
  rows.onLost((gone) => lost.push(...gone.map((row) => row.id)));
  await rows.put({ id: "resp_first", json: JSON.stringify({ id: "resp_first" }), itemIds: [] });
  const other = lockedBy(t, path);
  // Three continuations of a long conversation: their own rows small, their whole forms 12 MiB each (36 MiB, past
  // the 32 MiB the waiting answers may hold). Their link stays: none of them needs its whole form.
  const history = "h".repeat(12 << 20);
  for (const id of ["resp_a", "resp_b", "resp_c"]) {
    const json = JSON.stringify({ id, turn: "small" });
    const whole = () => ({ json: JSON.stringify({ id, history }), itemIds: [] });
    assert.equal(await rows.put({ id, json, itemIds: [], touchIds: ["resp_first"], whole }), undefined);
  }
  assert.deepEqual(lost, [], "answers dropped for whole forms only kept in case a link goes");
  assert.equal(rows.waitingCount(), 3);
  other.exec("COMMIT");
  for (let waitedMs = 0; rows.waitingCount() > 0; waitedMs += 20) {
    assert.ok(waitedMs < 10_000, "the waiting rows were never written");
    await sleep(20);
  }
  for (const id of ["resp_a", "resp_b", "resp_c"]) {
    assert.equal(await rows.get(id), JSON.stringify({ id, turn: "small" }), `${id} kept as it was put`);
  }
});
