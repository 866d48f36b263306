// The per-master sentinels (redis-master-epochs.ts) on a cluster whose slots are unevenly assigned: a master serving
// one slot that none of the first tags tried hashes to still gets a sentinel, and its data loss is found.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "ioredis";
import type { SharedStateRedis } from "./redis-client.ts";
import { RedisDataEpoch } from "./redis-data-epoch.ts";
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

test("a loss one read finds is noted at once, and a load that began before it learns of it", async () => {
  // Two readers race when a master answers again: its return (which then replays the writes kept for it) and a load
  // (a start, the subscription back). Before, each caller noted what its own read found: the one that read second
  // found nothing new, so a load took the data set as the same one and replaced this process's lessons by what the
  // empty master held while the lessons were being written again, and a return's replay could go before the load
  // that found the loss had noted it (its give-backs applied to the new, empty counters).
  const { redis, stores } = clusterOf((slot) => (slot < 8_192 ? "a:1" : "b:2"));
  const dataEpoch = new RedisDataEpoch(redis, "p:");
  await dataEpoch.check();
  const epochs = new MasterEpochs(redis, "p:", dataEpoch);
  assert.deepEqual(await epochs.lostSlots(), [], "first reads: nothing lost");
  const loadBegan = epochs.lossesFound;
  const before = dataEpoch.seenFor(1);
  stores.get("a:1")?.clear();
  // The master's return reads first and finds the loss.
  assert.equal((await epochs.lostSlots()).length, 8_192, "the loss found");
  assert.notEqual(dataEpoch.seenFor(1), before, "noted by the read that found it, before its caller acts");
  assert.equal(dataEpoch.seenFor(9_000), before, "not for the master that kept its data");
  // The load reads after it: nothing new to it, yet it knows a loss was found since it began.
  assert.deepEqual(await epochs.lostSlots(), []);
  assert.ok(epochs.lossesFound > loadBegan, "a loss found since the load began");
});
