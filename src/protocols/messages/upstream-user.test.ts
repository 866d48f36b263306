import assert from "node:assert/strict";
import { test } from "node:test";
import { upstreamUser } from "./upstream-user.ts";

test("upstream user: a long JSON id holding nothing but its session is hashed whole, not as every user's `{}`", () => {
  const first = upstreamUser(JSON.stringify({ session_id: `a-${"1".repeat(80)}` }));
  const second = upstreamUser(JSON.stringify({ session_id: `b-${"2".repeat(80)}` }));
  assert.match(first, /^[0-9a-f]{64}$/);
  assert.notEqual(first, second, "two clients whose ids share nothing but the field name are not one user upstream");
  const device = (session: string) =>
    upstreamUser(JSON.stringify({ device_id: "d".repeat(64), account_uuid: "", session_id: session }));
  assert.equal(device("s1"), device("s2"), "a user and device keeps one id across sessions");
});
