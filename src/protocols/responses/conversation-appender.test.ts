// A background answer's items taken out of its conversation after its final write was refused
// (conversation-appender.ts `remove`): only what that answer added goes, never an item the conversation already held
// under the same id (a native Responses upstream's output ids are relayed as it gives them, and may repeat); a store
// failing for a moment (as it failed the final write just before) does not leave them in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { sequentialIds } from "../ids.ts";
import { conversationAppender } from "./conversation-appender.ts";
import { itemsFromOutput } from "./conversation-items.ts";
import { ConversationRowsInMemory } from "./conversation-rows-memory.ts";
import { Conversations, type KeptResponseRow } from "./conversations.ts";
import type { OutputItem, ResponseObject } from "./response-object.ts";

function answer(text: string): ResponseObject {
  const item = { id: "msg_upstream", type: "message", role: "assistant", status: "completed", content: [] };
  return {
    id: "resp_1",
    object: "response",
    status: "completed",
    output: [{ ...item, content: [{ type: "output_text", text, annotations: [] }] } as unknown as OutputItem],
  } as unknown as ResponseObject;
}

test("a refused answer whose output id the conversation already held takes out only its own items", async () => {
  const clock = new ManualClock();
  const ids = sequentialIds();
  const limits = { maxEntries: 10, maxBytes: 100_000, maxAgeMs: 60_000 };
  const store = new Conversations(new ConversationRowsInMemory(limits, clock), limits.maxBytes, clock, ids, () => {});
  const created = await store.create(null, {}, []);
  // An earlier turn's answer, kept: its output item's id is the upstream's own.
  await store.append(created.id, null, itemsFromOutput(answer("first").output));
  const conversation = await store.get(created.id, null);
  assert.ok(conversation !== undefined);
  const lookup = {
    conversation,
    get: () => undefined,
    findItem: () => undefined,
    conversationItems: () => conversation.items,
  };
  const appender = conversationAppender(store, null, created.id, { input: "again" }, lookup);
  assert.ok(appender !== undefined);
  const refused = answer("second");
  await appender.append(refused);
  await appender.remove(refused);
  const after = await store.get(created.id, null);
  assert.deepEqual(
    after?.items.map((item) => item.id),
    ["msg_upstream"],
    "the earlier turn's item stays; the refused turn's input went",
  );
});

/** Memory rows whose writes fail while `failures` lasts (a Redis outage that ends). */
class FlakyRows extends ConversationRowsInMemory {
  failures = 0;
  override async putIfUnchanged(
    row: KeptResponseRow,
    expectedJson: string,
    options?: { readonly events?: { readonly keptCount: number; readonly events: readonly string[] } },
  ): Promise<boolean> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error("connection lost");
    }
    return super.putIfUnchanged(row, expectedJson, options);
  }
}

test("a refused answer's items are taken out once the store is back from a short failure", async () => {
  const clock = new ManualClock();
  const ids = sequentialIds();
  const limits = { maxEntries: 10, maxBytes: 100_000, maxAgeMs: 60_000 };
  const rows = new FlakyRows(limits, clock);
  const errors: unknown[] = [];
  const store = new Conversations(rows, limits.maxBytes, clock, ids, (error) => errors.push(error));
  const created = await store.create(null, {}, []);
  const conversation = await store.get(created.id, null);
  assert.ok(conversation !== undefined);
  const lookup = { conversation, get: () => undefined, findItem: () => undefined };
  const appender = conversationAppender(store, null, created.id, { input: "hi" }, lookup);
  assert.ok(appender !== undefined);
  const refused = answer("refused");
  await appender.append(refused);
  // The final write failed past its attempts because the store was down; it is still down for the first removal.
  rows.failures = 1;
  await appender.remove(refused);
  assert.deepEqual((await store.get(created.id, null))?.items, [], "the refused answer's items are not left in");
  assert.equal(errors.length, 1, "the failed attempt is logged");
});
