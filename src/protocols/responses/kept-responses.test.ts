// The adapter between the Responses front door and a persistent store of rows (kept-responses.ts `inRows`): what
// goes in a row, how an output item is found, and what an unreachable store means for reads and writes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceUnavailableError } from "../../errors/gateway-error.ts";
import { completedAnswer } from "../__fixtures__/fixtures.ts";
import { forClient } from "./kept-for-client.ts";
import type { KeptResponseRow, KeptResponseRows } from "./kept-response-rows.ts";
import { inRows } from "./kept-responses.ts";
import type { StoredResponse } from "./response-store.ts";

function stored(id: string): StoredResponse {
  const response = completedAnswer(id, "hi", `msg_${id}`, [
    { id: `fc_${id}`, type: "function_call", status: "completed", call_id: "call_1", name: "f", arguments: "{}" },
  ]);
  return { response, conversation: [{ role: "user", content: "hello" }] };
}

/** Rows in a Map, as a real store keeps them; `isDown` makes every call fail as an unreachable Redis would. */
class MapRows implements KeptResponseRows {
  readonly rows = new Map<string, KeptResponseRow>();
  isDown = false;
  async put(row: KeptResponseRow): Promise<void> {
    this.#check();
    this.rows.set(row.id, row);
  }
  async get(id: string): Promise<string | undefined> {
    this.#check();
    return this.rows.get(id)?.json;
  }
  async getByItem(itemId: string): Promise<string | undefined> {
    this.#check();
    return [...this.rows.values()].find((row) => row.itemIds.includes(itemId))?.json;
  }
  async delete(id: string): Promise<boolean> {
    this.#check();
    return this.rows.delete(id);
  }
  #check(): void {
    if (this.isDown) throw new Error("connection refused");
  }
}

test("a kept response round-trips through its row; items are found by id, with their own shape", async () => {
  const rows = new MapRows();
  const kept = inRows(rows, () => assert.fail("no put error expected"));
  await kept.put(stored("resp_a"));
  assert.deepEqual(rows.rows.get("resp_a")?.itemIds, ["msg_resp_a", "fc_resp_a"]);
  assert.deepEqual(await kept.get("resp_a"), JSON.parse(JSON.stringify(stored("resp_a"))));
  assert.equal((await kept.findItem("fc_resp_a"))?.type, "function_call");
  assert.equal(await kept.findItem("fc_other"), undefined);
  assert.equal(await kept.delete("resp_a"), true);
  assert.equal(await kept.get("resp_a"), undefined);
});

test("an unreachable store: reads and deletes are a 503, a failed write is reported and does not throw", async () => {
  const rows = new MapRows();
  const putErrors: unknown[] = [];
  const kept = inRows(rows, (error) => putErrors.push(error));
  rows.isDown = true;
  await assert.rejects(kept.get("resp_a"), ServiceUnavailableError);
  await assert.rejects(kept.findItem("msg_a"), ServiceUnavailableError);
  await assert.rejects(kept.delete("resp_a"), ServiceUnavailableError);
  assert.equal(await kept.put(stored("resp_a")), false, "a failed write says so");
  assert.equal(putErrors.length, 1);
  assert.match(String(putErrors[0]), /connection refused/);
  // Known not kept: read as absent (the caller says why), not a 503, while the store is down and after (as its
  // clients see it: forClient; an unnamed key sees every response).
  assert.deepEqual(kept.notKept("resp_a"), {
    client: undefined,
    responseId: "resp_a",
    itemIds: ["msg_resp_a", "fc_resp_a"],
  });
  // Its output items too (what an item_reference is told), and only while the answer is remembered.
  assert.equal(kept.notKeptItem?.("fc_resp_a")?.responseId, "resp_a");
  assert.equal(await forClient(kept, null).get("resp_a"), undefined);
  rows.isDown = false;
  assert.equal(await forClient(kept, null).get("resp_a"), undefined);
  assert.equal(kept.notKept("resp_b"), undefined);
  // A named client is told only of its own.
  assert.equal(forClient(kept, "other").notKept("resp_a"), undefined);
  // Kept by a later write after all: no longer said to be not kept.
  assert.equal(await kept.put(stored("resp_a")), true);
  assert.equal(kept.notKept("resp_a"), undefined);
});

test("a write past its bound is not kept: reported, remembered, false", async () => {
  const putErrors: unknown[] = [];
  const never = new Promise<void>(() => {});
  const rows = new MapRows();
  rows.put = () => never;
  const kept = inRows(
    rows,
    (error) => putErrors.push(error),
    undefined,
    async (write) => {
      await Promise.race([write, Promise.resolve()]);
      throw new Error("no answer within the bound");
    },
  );
  assert.equal(await kept.put(stored("resp_a")), false);
  assert.match(String(putErrors[0]), /within the bound/);
  assert.notEqual(kept.notKept("resp_a"), undefined);
});

test("a write that lands after its bound is kept after all: a later outage is a 503, not 'never stored'", async () => {
  const rows = new MapRows();
  let land = (): void => {};
  const put = rows.put.bind(rows);
  rows.put = (row) =>
    new Promise<void>((resolve) => {
      land = () => void put(row).then(resolve);
    });
  const kept = inRows(
    rows,
    () => {},
    undefined,
    async () => {
      throw new Error("no answer within the bound");
    },
  );
  assert.equal(await kept.put(stored("resp_a")), false);
  assert.notEqual(kept.notKept("resp_a"), undefined);
  land();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(kept.notKept("resp_a"), undefined, "landed: no longer said not kept");
  rows.isDown = true;
  await assert.rejects(kept.get("resp_a"), ServiceUnavailableError);
});

test("another client's answer the store failed to keep tells a named client nothing: the store's 503, as any id", async () => {
  const rows = new MapRows();
  rows.isDown = true;
  const kept = inRows(rows, () => {});
  assert.equal(await forClient(kept, "a").put(stored("resp_a")), false);
  // Its own client (and an unnamed key, which sees every response) reads it as absent: the caller says why.
  assert.equal(await forClient(kept, "a").get("resp_a"), undefined);
  assert.equal(await forClient(kept, null).get("resp_a"), undefined);
  // Another named client cannot tell it from an id it has never seen: it learns nothing of client a's answers.
  await assert.rejects(forClient(kept, "b").get("resp_unknown"), ServiceUnavailableError);
  await assert.rejects(forClient(kept, "b").get("resp_a"), ServiceUnavailableError);
  await assert.rejects(forClient(kept, "b").delete("resp_a"), ServiceUnavailableError);
});
