import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../protocols/chat-completions.ts";
import { unitStarts } from "./context-truncation.ts";

test("units: system and developer messages are none; a call's tool messages belong to its assistant message", () => {
  const call = (id: string) => ({ id, type: "function" as const, function: { name: "f", arguments: "{}" } });
  const messages: ChatMessage[] = [
    { role: "system", content: "instructions" },
    { role: "user", content: "one" },
    { role: "assistant", content: null, tool_calls: [call("a"), call("b")] },
    { role: "tool", tool_call_id: "a", content: "A" },
    { role: "tool", tool_call_id: "b", content: "B" },
    { role: "developer", content: "mid-conversation rule" },
    { role: "assistant", content: "answer" },
    { role: "tool", tool_call_id: "orphan", content: "no call before it" },
    { role: "user", content: "two" },
  ];
  assert.deepEqual(unitStarts(messages), [1, 2, 6, 7, 8]);
});
