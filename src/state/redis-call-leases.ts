// The concurrency leases of calls beside a reservation's own (RedisLedger.takeInFlight: a Llama Guard moderation's
// parallel calls): one member per call in the leases sorted set of every scope with a concurrency, taken by one script
// (TAKE_IN_FLIGHT_LUA, all or none), renewed with the reservations' leases, removed when the call ends.
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import type { RedisLink } from "./redis-link.ts";

export class CallLeases {
  readonly #redis: SharedStateRedis;
  readonly #link: RedisLink;
  readonly #leaseTtlMs: number;
  /** member -> the leases keys it is in. */
  readonly #held = new Map<string, readonly string[]>();

  constructor(redis: SharedStateRedis, link: RedisLink, leaseTtlMs: number) {
    this.#redis = redis;
    this.#link = link;
    this.#leaseTtlMs = leaseTtlMs;
  }

  get size(): number {
    return this.#held.size;
  }

  /**
   * A lease under `member` in each of `keys` (the leases sets of scopes whose concurrency is `limits`, in order), or
   * undefined when one is at its limit. A take that failed (a timeout: Redis may still run it) gives no slot, and its
   * member is removed at once (else it would expire unrenewed after the TTL).
   */
  async take(
    keys: readonly string[],
    limits: readonly number[],
    member: string,
    nowMs: number,
    /** A scope the keys belong to: on a Redis Cluster, a failure counts against its slot (RedisLink.recordFailure). */
    scopeId?: string,
  ): Promise<ReleaseSlot | undefined> {
    const remove = (): void => {
      this.#held.delete(member);
      if (!this.#link.isUpFor(scopeId)) return;
      for (const key of keys) void this.#link.track(this.#redis.zrem(key, member), scopeId);
    };
    let reply: unknown;
    try {
      const args = [nowMs, nowMs + this.#leaseTtlMs, member, this.#leaseTtlMs * 2, ...limits];
      reply = await this.#redis.budgetTakeInFlight(keys.length, ...keys, ...args);
    } catch (error) {
      this.#link.recordFailure(error, scopeId);
      remove();
      return undefined;
    }
    this.#link.recordSuccess(scopeId);
    if (reply !== 1) return undefined;
    this.#held.set(member, keys);
    return remove;
  }

  /** Each held lease's renewal (expiring at `expiryMs`), as RedisLedger.renewLeases sends the reservations'. */
  renewals(expiryMs: number): Promise<unknown>[] {
    const renewals: Promise<unknown>[] = [];
    for (const [member, keys] of this.#held) {
      for (const key of keys) {
        renewals.push(this.#redis.zadd(key, expiryMs, member), this.#redis.pexpire(key, this.#leaseTtlMs * 2));
      }
    }
    return renewals;
  }
}
