import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_SESSION_KEY_CHARS } from "../config/request-bounds.ts";
import { StickySessions } from "./sticky-sessions.ts";

test("a session key over MAX_SESSION_KEY_CHARS is not remembered; a normal one is, until its TTL", () => {
  let nowMs = 1_000;
  const sessions = new StickySessions({ now: () => nowMs });
  const huge = "u".repeat(MAX_SESSION_KEY_CHARS + 1);
  sessions.remember(huge, "alpha/chat", 60_000);
  assert.equal(sessions.get(huge), undefined);
  sessions.remember("chat:user:alice", "alpha/chat", 60_000);
  assert.equal(sessions.get("chat:user:alice"), "alpha/chat");
  nowMs += 60_000;
  assert.equal(sessions.get("chat:user:alice"), undefined);
});
