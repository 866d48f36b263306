// The per-master sentinels (redis-master-epochs.ts) on a cluster whose slots are unevenly assigned: a master serving
// one slot that none of the first tags tried hashes to still gets a sentinel, and its data loss is found.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "ioredis";
import type { SharedStateRedis } from "./redis-client.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { MasterEpochs } from "./redis-master-epochs.ts";

/** A Cluster connection stand-in: its slot table, and GET / SET NX on one store per master. */
function clusterOf(masterOfSlot: (slot: number) => string) {
  const slots = Array.from({ length: 16_384 }, (_, slot) => [masterOfSlot(slot)]);
  const stores = new Map<string, Map<string, string>>();
  const storeOf = (key: string) => {
    const master = masterOfSlot(hashSlot(key));
    const store = stores.get(master) ?? new Map<string, string>();
    stores.set(master, store);
    return store;
  };
  const redis = Object.assign(Object.create(Cluster.prototype), {
    slots,
    get: async (key: string) => storeOf(key).get(key) ?? null,
    set: async (key: string, value: string) => {
      const store = storeOf(key);
      if (!store.has(key)) store.set(key, value);
      return "OK";
    },
  }) as SharedStateRedis;
  return { redis, stores };
}

test("a master serving one slot no early tag hashes to: its data loss is found", async () => {
  // Slot 0: none of `epoch-0` .. `epoch-4095` hashes there.
  const { redis, stores } = clusterOf((slot) => (slot === 0 ? "a:1" : slot < 8_192 ? "b:2" : "c:3"));
  const epochs = new MasterEpochs(redis, "p:");
  assert.deepEqual(await epochs.lostSlots(), [], "first reads: nothing lost");
  assert.deepEqual(await epochs.lostSlots(), [], "read again: nothing lost");
  assert.ok((stores.get("a:1")?.size ?? 0) > 0, "a sentinel on the one-slot master");
  stores.get("a:1")?.clear();
  assert.deepEqual(await epochs.lostSlots(), [0], "the one-slot master's loss found");
  stores.get("b:2")?.clear();
  const lost = await epochs.lostSlots();
  assert.equal(lost.length, 8_191, "every slot of the master that lost its data");
  assert.deepEqual([lost[0], lost.at(-1)], [1, 8_191]);
});
