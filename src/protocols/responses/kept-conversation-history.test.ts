import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_ECHO } from "../__fixtures__/fixtures.ts";
import type { ConversationItem } from "./conversation-shapes.ts";
import { keptTurn, withConversationHistory } from "./kept-conversation-history.ts";
import { buildResponse } from "./response-object.ts";
import type { StoredResponse } from "./response-store.ts";

function message(id: string, role: string, text: string): ConversationItem {
  return { id, type: "message", role, content: [{ type: role === "user" ? "input_text" : "output_text", text }] };
}

const ITEMS = [
  message("msg_1", "user", "one"),
  message("msg_2", "assistant", "two"),
  message("msg_3", "user", "three"),
];

/** A turn whose request read the conversation as msg_1..msg_2; its own input went in as msg_3. */
function turn(): StoredResponse {
  const response = buildResponse(DEFAULT_ECHO, {
    id: "resp_1",
    createdAtSeconds: 1,
    status: "completed",
    model: "m",
    output: [],
    usage: undefined,
  });
  const read = { id: "conv_1", items: ITEMS.slice(0, 2) };
  const all = [
    { role: "user" as const, content: "one" },
    { role: "assistant" as const, content: "two" },
    { role: "user" as const, content: "three" },
  ];
  return { response, ...keptTurn(all, 2, read, ["msg_3"]) };
}

function texts(stored: StoredResponse): unknown[] {
  return stored.conversation.map((chat) =>
    typeof chat.content === "string" ? chat.content : JSON.stringify(chat.content),
  );
}

test("a conversation turn keeps its own messages and where the earlier ones are; read back whole", () => {
  const kept = turn();
  assert.deepEqual(texts(kept), ["three"]);
  assert.deepEqual(kept.conversationHistory, { id: "conv_1", throughItemId: "msg_2", nextItemId: "msg_3" });
  const later = [...ITEMS, message("msg_4", "assistant", "four")];
  const whole = withConversationHistory(kept, later);
  assert.equal(whole.conversation.length, 3, "items after the turn are not part of it");
  assert.equal(whole.conversationHistory, undefined);
});

test("the item before the turn deleted: the items before the turn's own first one; the conversation gone: none", () => {
  const kept = turn();
  const withoutLast = [ITEMS[0], ITEMS[2]].filter((item) => item !== undefined);
  assert.equal(withConversationHistory(kept, withoutLast).conversation.length, 2);
  assert.deepEqual(texts(withConversationHistory(kept, undefined)), ["three"]);
});

test("without a conversation, or one that was empty, the whole conversation is kept", () => {
  const all = [{ role: "user" as const, content: "hi" }];
  assert.deepEqual(keptTurn(all, 0, undefined, []), { conversation: all });
  assert.deepEqual(keptTurn(all, 0, { id: "conv_1", items: [] }, ["msg_1"]), { conversation: all });
});

test("the item before the turn deleted: another turn's items appended meanwhile are not the turn's history", () => {
  // Two turns read msg_1..msg_2 at once; the other one's items (msg_3, msg_4) went in first, this one's own first
  // item is msg_5. msg_2 deleted: this turn followed msg_1, never msg_3 and msg_4.
  const kept = turn();
  const stored = { ...kept, conversationHistory: { id: "conv_1", throughItemId: "msg_2", nextItemId: "msg_5" } };
  const other = [message("msg_3", "user", "other"), message("msg_4", "assistant", "other answer")];
  const items = [ITEMS[0], ...other, message("msg_5", "user", "three")];
  const now = items.filter((item) => item !== undefined);
  const deleted = [{ id: "msg_2", previousId: "msg_1" }];
  assert.deepEqual(texts(withConversationHistory(stored, now, deleted)), ["one", "three"]);
});
