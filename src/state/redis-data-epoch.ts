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
   * Losses of one master's data noted since start (redis-master-epochs.ts): part of `seen` and `current`, so that a
   * batch begun before one leaves its give-backs out when sent again, as after a loss of all of Redis's data.
   */
  #mastersLost = 0;

  constructor(redis: SharedStateRedis, prefix: string) {
    this.#redis = redis;
    this.key = dataEpochKey(prefix);
  }

  /** The data set this process saw at its last check (undefined before the first). */
  get seen(): string | undefined {
    return this.#seen === undefined ? undefined : `${this.#seen}#${this.#mastersLost}`;
  }

  /** The data set Redis holds now (undefined: none, Redis lost its data since the last check), without noting it. */
  async current(): Promise<string | undefined> {
    const current = (await this.#redis.get(this.key)) ?? undefined;
    return current === undefined ? undefined : `${current}#${this.#mastersLost}`;
  }

  /** A Redis Cluster master lost its data (redis-master-epochs.ts): batches begun before see a new data set. */
  noteMasterLost(): void {
    this.#mastersLost += 1;
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
