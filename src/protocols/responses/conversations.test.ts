// Kept conversations over each row store (memory, the embedded file, Redis): create, read, add, delete items, the
// per-client isolation of named clients, the per-conversation byte bound, renewal of the age by a write, and that
// writes of one conversation at once lose nothing.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { CONVERSATION_ROW_STORES, skipOf } from "../../../test/helpers/conversation-row-stores.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../../test/helpers/redis-server.ts";
import { ManualClock } from "../../clock.ts";
import { EmbeddedKeptResponses, KEPT_CONVERSATIONS, KEPT_RESPONSES } from "../../state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../../state/redis-kept-responses.ts";
import { sequentialIds } from "../ids.ts";
import { itemsFromRequest, listItems } from "./conversation-items.ts";
import { Conversations } from "./conversations.ts";

const LIMITS = { maxEntries: 10, maxBytes: 4_000, maxAgeMs: 60_000 };
function userItems(...texts: string[]) {
  return texts.map((text) => ({ role: "user", content: text }));
}

for (const [name, openRows] of Object.entries(CONVERSATION_ROW_STORES)) {
  const open = (t: TestContext, clock: ManualClock) => openRows(t, clock, LIMITS);
  describe(`conversations: ${name}`, { skip: skipOf(name) }, () => {
    test("create, read, add items, delete an item, delete; a named client reaches only its own", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create("alice", { topic: "t" }, itemsFromRequest(userItems("hi"), ids));
      assert.equal(created.id, "conv_1");
      assert.deepEqual(created.items, [
        {
          id: "msg_1",
          type: "message",
          status: "completed",
          role: "user",
          content: [{ type: "input_text", text: "hi" }],
        },
      ]);
      assert.equal(await store.get(created.id, "bob"), undefined, "another named client does not see it");
      assert.equal((await store.get(created.id, null))?.id, created.id, "an unnamed key sees it");
      assert.equal(await store.append(created.id, "bob", itemsFromRequest(userItems("x"), ids)), undefined);
      assert.equal(await store.delete(created.id, "bob"), false);
      await store.append(created.id, "alice", itemsFromRequest(userItems("a", "b"), ids));
      assert.deepEqual(
        (await store.get(created.id, "alice"))?.items.map((item) => item.id),
        ["msg_1", "msg_3", "msg_4"], // msg_2 went to bob's refused items
      );
      assert.equal(await store.deleteItem(created.id, "alice", "msg_9"), "no item");
      const after = await store.deleteItem(created.id, "alice", "msg_3");
      assert.ok(after !== undefined && after !== "no item");
      assert.deepEqual(
        after.items.map((item) => item.id),
        ["msg_1", "msg_4"],
      );
      assert.equal(await store.delete(created.id, "alice"), true);
      assert.equal(await store.get(created.id, null), undefined);
    });

    test("deleteItems takes out, in one write, those of the ids it holds (a refused background answer's items)", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, []);
      await store.append(created.id, null, itemsFromRequest(userItems("kept", "a", "b", "after"), ids));
      const deleted = await store.deleteItems(created.id, null, ["msg_3", "msg_9", "msg_2"]);
      assert.equal(deleted?.count, 2, "msg_9 is not there");
      const read = await store.get(created.id, null);
      assert.deepEqual(
        read?.items.map((item) => item.id),
        ["msg_1", "msg_4"],
      );
      // Remembered as deletions are (a client paging `after` one of them goes on from where it was).
      assert.deepEqual(read?.deleted, [
        { id: "msg_3", previousId: "msg_2" },
        { id: "msg_2", previousId: "msg_1" },
      ]);
      // Coverage: a cursor on either taken-out item pages on from where it was, whichever order they were taken in.
      const page = (after: string, order: "asc" | "desc") =>
        listItems(read?.items ?? [], { after, order }, read?.deleted).data.map((item) => item.id);
      assert.deepEqual(page("msg_3", "asc"), ["msg_4"]);
      assert.deepEqual(page("msg_2", "asc"), ["msg_4"]);
      assert.deepEqual(page("msg_3", "desc"), ["msg_1"]);
      assert.equal(await store.deleteItems("conv_404", null, ["msg_2"]), undefined);
    });

    test("a conversation past its byte bound is a 400 and stays as it was", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, []);
      await assert.rejects(store.append(created.id, null, itemsFromRequest(userItems("x".repeat(5_000)), ids)), {
        status: 400,
        param: "items",
      });
      assert.deepEqual((await store.get(created.id, null))?.items, []);
    });

    test("a write renews the age: a conversation in use does not expire, one left alone does", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const used = await store.create(null, {}, []);
      const idle = await store.create(null, {}, []);
      clock.advance(40_000);
      await store.append(used.id, null, itemsFromRequest(userItems("still here"), ids));
      clock.advance(40_000);
      assert.notEqual(await store.get(used.id, null), undefined);
      assert.equal(await store.get(idle.id, null), undefined);
    });

    test("items added at once to one conversation are all kept", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const created = await store.create(null, {}, []);
      await Promise.all(
        ["a", "b", "c", "d", "e"].map((text) => store.append(created.id, null, itemsFromRequest(userItems(text), ids))),
      );
      assert.equal((await store.get(created.id, null))?.items.length, 5);
    });

    test("one client creating past max_entries and max_bytes evicts its own oldest conversations, not another's", async (t) => {
      const clock = new ManualClock();
      const ids = sequentialIds();
      const store = new Conversations(await open(t, clock), LIMITS.maxBytes, clock, ids, () => {});
      const bobs = await store.create("bob", {}, itemsFromRequest(userItems("bob's"), ids));
      clock.advance(1);
      await store.append(bobs.id, "bob", itemsFromRequest(userItems("more"), ids)); // a compare-and-set write on Redis
      const unnamed = await store.create(null, {}, []);
      const alices: string[] = [];
      for (let i = 0; i < 3 * LIMITS.maxEntries; i++) {
        clock.advance(1);
        alices.push((await store.create("alice", {}, [])).id);
      }
      assert.equal((await store.get(bobs.id, "bob"))?.items.length, 2, "alice's creates evicted bob's conversation");
      assert.notEqual(await store.get(unnamed.id, null), undefined, "alice's creates evicted an unnamed key's");
      assert.notEqual(await store.get(alices.at(-1) ?? "", "alice"), undefined);
      assert.equal(await store.get(alices[0] ?? "", "alice"), undefined, "alice's oldest went");
      // By bytes: alice's large conversations push out only alice's.
      for (let i = 0; i < 4; i++) {
        clock.advance(1);
        await store.create("alice", {}, itemsFromRequest(userItems("x".repeat(1_500)), ids));
      }
      assert.equal((await store.get(bobs.id, "bob"))?.items.length, 2, "alice's large conversations evicted bob's");
      assert.notEqual(await store.get(unnamed.id, null), undefined);
    });
  });
}

test("a message item's status is one of OpenAI's whatever the client sent: its own when valid, else completed", () => {
  const statuses = [5, { a: 1 }, "done", null, "in_progress", "incomplete", "completed", undefined];
  const items = itemsFromRequest(
    statuses.map((status) => ({ role: "user", content: "hi", ...(status === undefined ? {} : { status }) })),
    sequentialIds(),
  );
  assert.deepEqual(
    items.map((item) => item.status),
    ["completed", "completed", "completed", "completed", "in_progress", "incomplete", "completed", "completed"],
  );
});

test("an unknown `after` is a 400 naming it, its value cut in the message (a query may carry kilobytes of it)", () => {
  const items = itemsFromRequest([{ role: "user", content: "hi" }], sequentialIds());
  assert.throws(
    () => listItems(items, { after: `msg_${"x".repeat(10_000)}` }),
    (error: Error & { param?: string }) => {
      assert.equal(error.param, "after");
      assert.ok(error.message.length < 200, `a ${error.message.length}-character message`);
      return true;
    },
  );
});

test("conversations and kept responses are apart in one state file: neither finds the other's rows", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "conv-apart-")), "state.db");
  const clock = new ManualClock();
  const responses = new EmbeddedKeptResponses(path, LIMITS, clock, undefined, KEPT_RESPONSES);
  const conversations = new EmbeddedKeptResponses(path, LIMITS, clock, undefined, KEPT_CONVERSATIONS);
  t.after(async () => {
    await responses.close();
    await conversations.close();
  });
  await conversations.put({ id: "conv_a", json: "{}", itemIds: [] });
  await responses.put({ id: "resp_a", json: "{}", itemIds: [] });
  assert.equal(await responses.get("conv_a"), undefined);
  assert.equal(await conversations.get("resp_a"), undefined);
  assert.equal(await conversations.get("conv_a"), "{}");
});

test("redis: two gateway processes adding to one conversation at once lose nothing (compare and set)", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  const clock = new ManualClock();
  const ids = sequentialIds();
  // Two stores on one Redis and prefix, each with its own connection: what two processes have.
  const processes = [0, 1].map(() => {
    const rows = new RedisKeptResponses(server.url, "conv-shared:", false, LIMITS, clock, "conversations");
    t.after(() => rows.close());
    return { rows, store: new Conversations(rows, LIMITS.maxBytes, clock, ids, () => {}) };
  });
  await Promise.all(processes.map(({ rows }) => rows.connect()));
  const [one, two] = processes;
  assert.ok(one !== undefined && two !== undefined);
  const created = await one.store.create(null, {}, []);
  const texts = Array.from({ length: 12 }, (_, index) => `t${index}`);
  await Promise.all(
    texts.map((text, index) =>
      (index % 2 === 0 ? one : two).store.append(created.id, null, itemsFromRequest(userItems(text), ids)),
    ),
  );
  const kept = (await two.store.get(created.id, null))?.items ?? [];
  assert.deepEqual(kept.map((item) => (item.content as { text: string }[])[0]?.text).sort(), [...texts].sort());
});
