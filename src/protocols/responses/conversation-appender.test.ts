// A background answer's items taken out of its conversation after its final write was refused
// (conversation-appender.ts `remove`): only what that answer added goes, never an item the conversation already held
// under the same id (a native Responses upstream's output ids are relayed as it gives them, and may repeat).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { sequentialIds } from "../ids.ts";
import { conversationAppender } from "./conversation-appender.ts";
import { itemsFromOutput } from "./conversation-items.ts";
import { ConversationRowsInMemory } from "./conversation-rows-memory.ts";
import { Conversations } from "./conversations.ts";
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
