// A conversation kept as a head and an append-only log (conversation-log.ts), over each row store (memory, the
// embedded file, Redis): a turn writes its own items only, however long the conversation; rows written before the
// log (the whole conversation in one JSON, test/fixtures/conversations-before-log.json) read, list, change and
// answer the duplicate check as before.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { CONVERSATION_ROW_STORES, skipOf } from "../../../test/helpers/conversation-row-stores.ts";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  useRedisCluster,
} from "../../../test/helpers/redis-cluster.ts";
import { ManualClock } from "../../clock.ts";
import { RedisKeptResponses } from "../../state/redis-kept-responses.ts";
import { sequentialIds } from "../ids.ts";
import { clientIdsOf, itemsFromRequest, listItems } from "./conversation-items.ts";
import type { ConversationRows, KeptResponseRow } from "./conversation-shapes.ts";
import { Conversations } from "./conversations.ts";
import { conversationIdsOf } from "./duplicate-items.ts";

const LIMITS = { maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 60_000 };

interface FixtureRow {
  readonly id: string;
  readonly owner: string;
  readonly json: string;
}

const FIXTURE = JSON.parse(
  readFileSync(new URL("../../../test/fixtures/conversations-before-log.json", import.meta.url), "utf8"),
) as { rows: FixtureRow[] };

/** The bytes each write of `rows` carried (the row's JSON and the events appended with it), in order. */
function countingWrites(rows: ConversationRows): { rows: ConversationRows; writes: number[] } {
  const writes: number[] = [];
  const carried = (row: KeptResponseRow, events: readonly string[] = []) =>
    writes.push(events.reduce((sum, event) => sum + Buffer.byteLength(event), Buffer.byteLength(row.json)));
  return {
    writes,
    rows: {
      put: (row) => {
        carried(row);
        return rows.put(row);
      },
      putIfUnchanged: (row, expectedJson, options) => {
        carried(row, options?.events?.events);
        return rows.putIfUnchanged(row, expectedJson, options);
      },
      get: (id) => rows.get(id),
      getEvents: (id, from) => rows.getEvents(id, from),
      delete: (id) => rows.delete(id),
    },
  };
}

/** The store's methods bound to it (a copy to override one of). */
function bound(rows: ConversationRows): ConversationRows {
  return {
    put: (row) => rows.put(row),
    putIfUnchanged: (row, expectedJson, options) => rows.putIfUnchanged(row, expectedJson, options),
    get: (id) => rows.get(id),
    getEvents: (id, from) => rows.getEvents(id, from),
    delete: (id) => rows.delete(id),
  };
}

function textsOf(items: readonly Readonly<Record<string, unknown>>[]): string[] {
  return items.map((item) => {
    const content = item.content as { text: string }[] | undefined;
    return content?.map((part) => part.text).join("") ?? String(item.output ?? item.name ?? "");
  });
}

for (const [name, open] of Object.entries(CONVERSATION_ROW_STORES)) {
  describe(`conversation log: ${name}`, { skip: skipOf(name) }, () => {
    test("a turn writes its own items, not the conversation: the 150th turn carries what the 1st did", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const counted = countingWrites(await open(t, clock, LIMITS));
      const store = new Conversations(counted.rows, LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, []);
      for (let turn = 0; turn < 150; turn++) {
        const items = itemsFromRequest([{ role: "user", content: `turn ${turn} ${"x".repeat(300)}` }], ids);
        assert.equal(await store.appendAfterAnswer(created.id, null, items), "added");
      }
      const [, first, ...rest] = counted.writes;
      const last = rest.at(-1) ?? 0;
      assert.ok(first !== undefined && last < first * 1.5, `the first turn wrote ${first} bytes, the last ${last}`);
      const kept = (await store.get(created.id, null))?.items ?? [];
      assert.equal(kept.length, 150);
      assert.match(textsOf(kept).at(-1) ?? "", /^turn 149 /);
      assert.match(textsOf(kept)[0] ?? "", /^turn 0 /);
    });

    test("a conversation filled to its bound still lets its items be deleted, every one of them", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const maxBytes = 6_000;
      const store = new Conversations(await open(t, clock, { ...LIMITS, maxBytes }), maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, []);
      // Filled a turn at a time until the bound refuses one (the answer is sent; the conversation is full).
      let update = "added";
      for (let turn = 0; update === "added" && turn < 1_000; turn++) {
        const items = itemsFromRequest([{ role: "user", content: `turn ${turn} ${"x".repeat(40)}` }], ids);
        update = await store.appendAfterAnswer(created.id, null, items);
      }
      assert.equal(update, "too_large");
      const full = (await store.get(created.id, null))?.items ?? [];
      assert.ok(full.length > 10);
      // A client at the bound removes what it holds (its right to take an item out, whatever the room left).
      for (const item of full) {
        const deleted = await store.deleteItem(created.id, null, item.id);
        assert.ok(deleted !== undefined && deleted !== "no item", `deleting ${item.id}`);
      }
      assert.deepEqual((await store.get(created.id, null))?.items, []);
    });

    test("a conversation at its bound, an item deleted, has its metadata rewritten (no larger)", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const maxBytes = 40_000;
      const store = new Conversations(await open(t, clock, { ...LIMITS, maxBytes }), maxBytes, clock, ids, () => {});
      const created = await store.create(null, { topic: "full" }, []);
      let update = "added";
      for (let turn = 0; update === "added" && turn < 1_000; turn++) {
        update = await store.appendAfterAnswer(
          created.id,
          null,
          itemsFromRequest([{ role: "user", content: "x" }], ids),
        );
      }
      const full = (await store.get(created.id, null))?.items ?? [];
      assert.ok(full.length > 150, `${full.length} items`);
      for (const item of full.slice(0, 3))
        assert.notEqual(await store.deleteItem(created.id, null, item.id), "no item");
      assert.deepEqual((await store.setMetadata(created.id, null, { topic: "done" }))?.metadata, { topic: "done" });
      await assert.rejects(store.setMetadata(created.id, null, { topic: "x".repeat(300) }), { status: 400 });
    });

    test("adding no items (POST .../items with [] in a loop) appends nothing to the log", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const rows = await open(t, clock, LIMITS);
      const store = new Conversations(rows, LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, itemsFromRequest([{ role: "user", content: "hi" }], ids));
      assert.equal(
        await store.appendAfterAnswer(created.id, null, itemsFromRequest([{ role: "user", content: "x" }], ids)),
        "added",
      );
      const before = await store.get(created.id, null);
      for (let request = 0; request < 20; request++)
        assert.ok(await store.append(created.id, null, itemsFromRequest([], ids)));
      assert.equal(await store.appendAfterAnswer(created.id, null, []), "added");
      const after = await store.get(created.id, null);
      assert.equal((await rows.getEvents(created.id, 0)).length, 2, "the create's item and the turn");
      assert.equal(after?.bytes, before?.bytes);
      assert.deepEqual(after?.items, before?.items);
    });

    test("a conversation whose log is lost (Redis's maxmemory evicted the list) can still be deleted", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const rows = await open(t, clock, LIMITS);
      const store = new Conversations(rows, LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create("alice", {}, []);
      const turn = itemsFromRequest([{ role: "user", content: "hello" }], ids);
      assert.equal(await store.appendAfterAnswer(created.id, "alice", turn), "added");
      // The head counts an entry its log no longer has: reads fail (503), and the client's way out is a delete.
      const lost = new Conversations(
        { ...bound(rows), getEvents: async () => [] },
        LIMITS.maxBytes,
        clock,
        ids,
        () => {},
      );
      await assert.rejects(lost.get(created.id, "alice"), { status: 503 });
      assert.equal(await lost.delete(created.id, "bob"), false, "still another client's to delete");
      assert.equal(await lost.delete(created.id, "alice"), true);
      assert.equal(await rows.get(created.id), undefined);
    });

    test("rows written before the log read, list, change and answer the duplicate check as before", async (t) => {
      const clock = new ManualClock(1_765_000_000_000);
      const rows = await open(t, clock, LIMITS);
      // As the earlier version wrote them: the whole conversation in the row's JSON, no events.
      for (const row of FIXTURE.rows) {
        await rows.put({ id: row.id, json: row.json, itemIds: [], ...(row.owner === "" ? {} : { owner: row.owner }) });
      }
      // Ids apart from the fixture's (the gateway's are random).
      const sequential = sequentialIds();
      const ids = (prefix: string) => sequential(`${prefix}new_`);
      const store = new Conversations(rows, LIMITS.maxBytes, clock, ids, () => {});
      assert.equal(await store.get("conv_1", "bob"), undefined, "another named client does not reach alice's");
      const before = await store.get("conv_1", "alice");
      assert.ok(before !== undefined);
      assert.deepEqual(before.metadata, { topic: "before the log" });
      assert.deepEqual(
        before.items.map((item) => item.id),
        ["msg_1", "msg_2", "fc_1", "fco_1"],
      );
      assert.deepEqual(textsOf(before.items), ["Hello", "Hi there", "lookup", "found"]);
      // The id the client gave msg_2, and the items', are what a request's duplicate check refuses.
      assert.deepEqual(conversationIdsOf(before.items, Object.values(before.clientIds ?? {})), [
        "msg_1",
        "msg_2",
        "fc_1",
        "fco_1",
        "msg_given_by_client",
      ]);
      // `after` naming msg_3, deleted before the log: the page goes on from where it was.
      assert.deepEqual(
        listItems(before.items, { after: "msg_3", order: "asc" }, before.deleted).data.map((item) => item.id),
        [],
      );
      assert.deepEqual(
        listItems(before.items, { after: "msg_3", order: "desc" }, before.deleted).data.map((item) => item.id),
        ["fco_1", "fc_1", "msg_2", "msg_1"],
      );

      // Changed: a turn, an item deleted, metadata; then read again from the store.
      const added = itemsFromRequest([{ id: "client_3", role: "user", content: "Again" }], ids);
      assert.equal(await store.appendAfterAnswer("conv_1", "alice", added, clientIdsOf(added)), "added");
      assert.notEqual(await store.deleteItem("conv_1", "alice", "msg_2"), "no item");
      await store.setMetadata("conv_1", "alice", { topic: "with a log" });
      const after = await store.get("conv_1", "alice");
      assert.ok(after !== undefined);
      assert.deepEqual(after.metadata, { topic: "with a log" });
      assert.deepEqual(textsOf(after.items), ["Hello", "lookup", "found", "Again"]);
      const addedId = added[0]?.id ?? "";
      assert.deepEqual(after.clientIds, { [addedId]: "client_3" }, "msg_2's given id went with it; the new one kept");
      assert.deepEqual(
        after.deleted?.map((item) => item.id),
        ["msg_3", "msg_2"],
      );
      assert.deepEqual(
        listItems(after.items, { after: "msg_2", order: "asc" }, after.deleted).data.map((item) => item.id),
        ["fc_1", "fco_1", addedId],
      );
      // The row is a head now: its items are in the log, not in its JSON.
      const head = JSON.parse((await rows.get("conv_1")) ?? "{}") as Record<string, unknown>;
      assert.equal(head.items, undefined);
      assert.equal(head.log, 3, "the earlier items (one entry), the turn, the delete; nothing for metadata");

      const unnamed = await store.get("conv_2", null);
      assert.deepEqual(textsOf(unnamed?.items ?? []), ["unnamed"]);
      assert.equal(await store.delete("conv_2", null), true);
      assert.equal(await store.get("conv_2", null), undefined);
    });
  });
}

test("redis cluster: a conversation's head and log are in one slot (its hash tag): turns, a delete and reads work", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  const clock = new ManualClock();
  const rows = new RedisKeptResponses(cluster.url, "conv-cluster:", true, LIMITS, clock, "conversations");
  await rows.connect();
  t.after(() => rows.close());
  const ids = sequentialIds();
  const store = new Conversations(rows, LIMITS.maxBytes, clock, ids, () => {});
  const created = await store.create(null, {}, itemsFromRequest([{ role: "user", content: "zero" }], ids));
  for (const text of ["one", "two", "three"]) {
    assert.equal(
      await store.appendAfterAnswer(created.id, null, itemsFromRequest([{ role: "user", content: text }], ids)),
      "added",
    );
  }
  assert.notEqual(await store.deleteItem(created.id, null, "msg_2"), "no item");
  assert.deepEqual(textsOf((await store.get(created.id, null))?.items ?? []), ["zero", "two", "three"]);
  assert.equal((await rows.getEvents(created.id, 0)).length, 5, "the create's item, three turns, the delete");
  assert.equal(await store.delete(created.id, null), true);
  assert.deepEqual(await rows.getEvents(created.id, 0), [], "the log went with the conversation");
});
