// Whether Redis still holds what it held when this process last looked, or lost it (restarted without persistence,
// flushed). A reload of the shared lessons replaces this process's copies by what is stored (redis-refused-features.ts
// `load`): right when another replica cleared or forgot one while this process did not hear it, wrong when Redis
// lost everything, which would take every lesson from every replica. The first process to find no epoch sets one
// (SET NX); a process that finds another than the one it saw last knows the data set is a new one: it writes again
// every lesson it holds (as it does every cooldown), so that a later reload finds them stored, and adds only.
import { randomBytes } from "node:crypto";
import type { SharedStateRedis } from "./redis-client.ts";
import { dataEpochKey } from "./redis-keys.ts";

export class RedisDataEpoch {
  readonly #redis: SharedStateRedis;
  /** The epoch's key (no hash tag: on a Cluster, one master holds it). */
  readonly key: string;
  #seen: string | undefined;
  /**
   * Per Cluster slot, losses of its master's data noted since start (redis-master-epochs.ts): part of `seenFor` and
   * `currentFor`, so that a batch of that slot begun before one leaves its give-backs out when sent again, as after a
   * loss of all of Redis's data. Only that slot's: a batch for a master that kept its data (a charge kept for a hung
   * master's return) counted everywhere, its charges were dropped from counters that still held its reservations.
   */
  readonly #slotLosses = new Map<number, number>();

  constructor(redis: SharedStateRedis, prefix: string) {
    this.#redis = redis;
    this.key = dataEpochKey(prefix);
  }

  /** The data set this process saw at its last check, for keys of `slot` (undefined before the first). */
  seenFor(slot: number): string | undefined {
    return this.#seen === undefined ? undefined : `${this.#seen}#${this.#slotLosses.get(slot) ?? 0}`;
  }

  /** The data set Redis holds now for keys of `slot` (undefined: none, Redis lost its data), without noting it. */
  async currentFor(slot: number): Promise<string | undefined> {
    const current = (await this.#redis.get(this.key)) ?? undefined;
    return current === undefined ? undefined : `${current}#${this.#slotLosses.get(slot) ?? 0}`;
  }

  /** A Redis Cluster master lost its data (redis-master-epochs.ts): batches of its slots begun before see a new one. */
  noteMasterLost(slots: readonly number[]): void {
    for (const slot of slots) this.#slotLosses.set(slot, (this.#slotLosses.get(slot) ?? 0) + 1);
  }

  /**
   * `same`: Redis holds the data set this process saw at its last check; `first`: the first check (at start);
   * `new`: Redis lost its data since (or was flushed).
   */
  async check(): Promise<"first" | "same" | "new"> {
    await this.#redis.set(this.key, randomBytes(8).toString("hex"), "NX");
    const current = (await this.#redis.get(this.key)) ?? "";
    const seen = this.#seen;
    this.#seen = current;
    if (seen === undefined) return "first";
    return current === seen ? "same" : "new";
  }
}
