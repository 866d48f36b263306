// On a Redis Cluster, whether one master lost its data (restarted empty, or failed over to a replica that had not
// received the last writes) while the data epoch (redis-data-epoch.ts), a key of one slot on one master, says nothing:
// before, that master's slot range went on as if nothing happened: the lessons this process held for keys there were
// dropped by the next load (not stored: "forgotten"), never written again, and a give-back sent again afterwards
// lowered new counters, which counted newer charges. One sentinel per master (`P data-epoch:{epoch-N}`, the first
// such tag whose slot that master serves, found from the cluster connection's slot table) is set once (SET NX) and
// read at every load and whenever a master answers again: another value, or none, where a value was seen, means that
// master's data set is new, and the process treats it as after a loss of all of Redis's data.
import { Cluster } from "ioredis";
import type { SharedStateRedis } from "./redis-client.ts";
import type { RedisDataEpoch } from "./redis-data-epoch.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { dataEpochKey } from "./redis-keys.ts";

/** Tags tried, in order, to find one in every master's slots (a few per master suffice: slots are spread). */
const MAX_TAGS_TRIED = 4_096;

export class MasterEpochs {
  readonly #redis: SharedStateRedis;
  readonly #prefix: string;
  /** Per sentinel key, the value seen at its last answered read. */
  readonly #seen = new Map<string, string>();
  /** Where a loss is noted the moment a read finds it (RedisDataEpoch.noteMasterLost). */
  readonly #dataEpoch: Pick<RedisDataEpoch, "noteMasterLost"> | undefined;
  #lossesFound = 0;

  constructor(redis: SharedStateRedis, prefix: string, dataEpoch?: Pick<RedisDataEpoch, "noteMasterLost">) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#dataEpoch = dataEpoch;
  }

  /**
   * How many reads found a master's loss so far. A master that answers again is read by two callers that race: its
   * return (which then replays the writes kept for it) and a load (a start, the subscription back). Only the read that
   * finds the loss reports it; the other finds nothing new. So a loss is noted on the data epoch by the read that finds
   * it, before any caller acts (a replay right after leaves the give-backs begun before it out, whoever read first),
   * and a load compares this count with the one it saw before its walk: a loss found meanwhile by the return means
   * its walk may have read the empty master half written again, so it only adds (redis-state.ts `loadLessons`).
   */
  get lossesFound(): number {
    return this.#lossesFound;
  }

  /**
   * Reads every master's sentinel (setting one where none is: a master seen for the first time, or one that lost it):
   * the slots of each master that answered holding another data set than at its last read (none: nothing lost). A
   * master that does not answer is skipped (read again at the next check). Always none on a standalone Redis (the
   * data epoch is its one sentinel).
   */
  async lostSlots(): Promise<number[]> {
    const keys = this.#sentinelKeys();
    const reads = await Promise.allSettled(keys.map((key) => this.#read(key)));
    const lost: number[] = [];
    reads.forEach((read, index) => {
      const key = keys[index] as string;
      if (read.status === "rejected") return;
      const seen = this.#seen.get(key);
      if (seen !== undefined && read.value.found !== seen) lost.push(...this.#slotsBeside(key));
      this.#seen.set(key, read.value.now);
    });
    if (lost.length > 0) {
      this.#lossesFound += 1;
      this.#dataEpoch?.noteMasterLost(lost);
    }
    return lost;
  }

  /** Every slot of the master serving `key`'s slot now. */
  #slotsBeside(key: string): number[] {
    const slots = (this.#redis as Cluster).slots;
    const master = slots[hashSlot(key)]?.[0];
    const beside: number[] = [];
    for (let slot = 0; slot < slots.length; slot++) if (slots[slot]?.[0] === master) beside.push(slot);
    return beside;
  }

  /** The value found (undefined: none) and the one set now when none was. */
  async #read(key: string): Promise<{ found: string | undefined; now: string }> {
    const found = (await this.#redis.get(key)) ?? undefined;
    if (found !== undefined) return { found, now: found };
    const value = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    await this.#redis.set(key, value, "NX");
    return { found, now: (await this.#redis.get(key)) ?? value };
  }

  /** One key per master of the slot table, in a slot that master serves. */
  #sentinelKeys(): string[] {
    const redis = this.#redis;
    if (!(redis instanceof Cluster)) return [];
    // From the slot table, not the connection pool: a master that died leaves the pool until it is back, and its
    // sentinel must be read at once then (its group's return).
    const masters = new Set<string>();
    for (const nodes of redis.slots) if (nodes?.[0] !== undefined) masters.add(nodes[0]);
    const keys: string[] = [];
    for (let index = 0; index < MAX_TAGS_TRIED && masters.size > 0; index++) {
      const key = `${dataEpochKey(this.#prefix)}:{epoch-${index}}`;
      const master = redis.slots[hashSlot(key)]?.[0];
      if (master === undefined || !masters.delete(master)) continue;
      keys.push(key);
    }
    // A master serving few slots (uneven slots, a resharding under way) that no tag tried hashes to: the tag of one
    // of its slots, searched for (before, it had no sentinel and its data loss went unseen).
    for (const master of masters) {
      const slot = redis.slots.findIndex((nodes) => nodes?.[0] === master);
      if (slot >= 0) keys.push(`${dataEpochKey(this.#prefix)}:{epoch-${tagOfSlot(slot)}}`);
    }
    return keys;
  }
}

/** Per slot not reached by the first MAX_TAGS_TRIED tags, the first `epoch-N` hashing there (found once: ~16,384 tried). */
const farTags = new Map<number, number>();

function tagOfSlot(slot: number): number {
  let index = farTags.get(slot);
  if (index !== undefined) return index;
  index = MAX_TAGS_TRIED;
  // Bounded all the same (CRC16 reaches every slot well before): past it, a sentinel on another master is harmless.
  while (hashSlot(`epoch-${index}`) !== slot && index < 100 * MAX_TAGS_TRIED * 16) index += 1;
  farTags.set(slot, index);
  return index;
}
