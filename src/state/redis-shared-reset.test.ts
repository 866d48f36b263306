// A reset's marker stored late (its Redis Cluster master did not answer at the reset: redis-cooldowns.ts #markLater)
// goes only over none or a marker its process knew at the reset, never over a later reset's (real Redis).
import assert from "node:assert/strict";
import { test } from "node:test";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { closeClient, createCommandClient } from "./redis-client.ts";
import { setOverKnown } from "./redis-shared-reset.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;

test("a late marker is stored over none, its own or one known before it, not over a later reset's", {
  skip,
}, async (t) => {
  const server = await useRedisServer(t);
  const redis = createCommandClient(server.url, false, 1_000);
  await closeWhenTestEnds(t, () => closeClient(redis));
  await redis.connect();
  assert.equal(await setOverKnown(redis, "reset-id", "r2", ["r1"]), true, "over none");
  assert.equal(await redis.get("reset-id"), "r2");
  assert.equal(await setOverKnown(redis, "reset-id", "r2", []), true, "over its own (a hung master ran its SET)");
  await redis.set("reset-id", "r1");
  assert.equal(await setOverKnown(redis, "reset-id", "r2", ["r0", "r1"]), true, "over one known before it");
  assert.equal(await redis.get("reset-id"), "r2");
  // Before 2026-12-07 a plain SET: the later reset's marker overwritten, its reset missed by a process away then.
  await redis.set("reset-id", "r3");
  assert.equal(await setOverKnown(redis, "reset-id", "r2", ["r1"]), false, "a later reset's stands");
  assert.equal(await redis.get("reset-id"), "r3");
});
