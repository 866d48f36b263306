import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_SESSION_KEY_CHARS } from "../config/request-bounds.ts";
import { StickySessions, stickySessionKey } from "./sticky-sessions.ts";

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

test("a named client's sessions are its own: no other client's (nor an unnamed key's) session shares its key", () => {
  const keys = [
    stickySessionKey("chat", "team-a", { kind: "session", id: "s1" }),
    stickySessionKey("chat", "team-b", { kind: "session", id: "s1" }),
    stickySessionKey("chat", undefined, { kind: "session", id: "s1" }),
    stickySessionKey("chat", "team-a", { kind: "user", id: "s1" }),
    stickySessionKey("responses", "team-a", { kind: "session", id: "s1" }),
    // An unnamed key's id made to look like a named client's key.
    stickySessionKey("chat", undefined, { kind: "session", id: "client:team-a:session:s1" }),
    stickySessionKey("chat", "session", { kind: "session", id: "s1" }),
    stickySessionKey("chat", undefined, { kind: "session", id: "session:s1" }),
  ];
  assert.equal(new Set(keys).size, keys.length, keys.join("\n"));
  // Unnamed keys keep the key they had before client names: their stickiness survives the upgrade.
  assert.equal(stickySessionKey("chat", undefined, { kind: "user", id: "alice" }), "chat:user:alice");
});
