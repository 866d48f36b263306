// The admin reset's deletes and its announcement on a Redis that may be a Cluster with a master that does not answer
// (dead without a replica in its place, or hung). The keys a master holds can only be deleted on it, so a reset then
// deletes what every other master holds, is still marked and published (every process forgets its own copies), and
// ends with a 503 naming the masters not reached: an honest "partly done, retry", not a success that left a dead
// master's budgets and cooldowns to come back with it. Before, the first failed SCAN (or a master the slot table names
// but the pool no longer holds) ended the reset before it deleted anything anywhere, and nobody heard it.
import { Cluster } from "ioredis";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { type SharedStateRedis, scanKeys, unlinkMany } from "./redis-client.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { keysStartingWith } from "./redis-keys.ts";

/** The masters (`host:port`) a reset could not reach: collected by every step, reported once at its end. */
export type UnreachedMasters = Set<string>;

/**
 * UNLINKs every key starting with `start`, SCAN by SCAN (never KEYS: it would block a shared Redis). With `unreached`
 * on a Cluster, a master whose SCAN fails is added there and the others are still walked; otherwise a failure throws.
 */
export async function deleteKeysStartingWith(
  redis: SharedStateRedis,
  start: string,
  unreached?: UnreachedMasters,
): Promise<number> {
  const onNodeFailed =
    unreached !== undefined && redis instanceof Cluster
      ? (_error: unknown, master: string) => unreached.add(master)
      : undefined;
  let deleted = 0;
  for await (const keys of scanKeys(redis, keysStartingWith(start), onNodeFailed)) {
    deleted += await unlinkMany(redis, keys);
  }
  return deleted;
}

/**
 * SET of a key without a hash tag (one master holds it); on a Cluster, a failure adds that master to `unreached`.
 * Whether the SET was answered (false: that master may come back holding the value before, or this one).
 */
export async function setOrNote(
  redis: SharedStateRedis,
  key: string,
  value: string,
  unreached: UnreachedMasters | undefined,
): Promise<boolean> {
  try {
    await redis.set(key, value);
    return true;
  } catch (error) {
    if (unreached === undefined || !(redis instanceof Cluster)) throw error;
    unreached.add(redis.slots[hashSlot(key)]?.[0] ?? `the master of ${key}`);
    return false;
  }
}

/**
 * PUBLISH through the first master that answers (any node relays it to every subscriber on every node): ioredis sends
 * a PUBLISH to a master at random, and one that drew the dead master failed the reset after its deletes.
 */
export async function publishOnAnyMaster(redis: SharedStateRedis, channel: string, message: string): Promise<void> {
  if (!(redis instanceof Cluster)) {
    await redis.publish(channel, message);
    return;
  }
  let failure: unknown = new Error("no Redis Cluster master is connected");
  for (const master of redis.nodes("master")) {
    try {
      await master.publish(channel, message);
      return;
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/**
 * Stores a reset's marker stored late (its master did not answer at the reset) only over none or a marker `before` it
 * (one its process knew when it made the reset): false when the key holds another, a later reset's from a process
 * whose publish this one did not hear. Before 2026-12-07 the late SET overwrote that newer marker, and a process that
 * missed the newer reset (its subscription away) then read the older one and never applied it.
 */
export async function setOverKnown(
  redis: SharedStateRedis,
  key: string,
  value: string,
  before: readonly string[],
): Promise<boolean> {
  return Number(await redis.setOver(1, key, value, ...before)) === 1;
}

/** ms between tries to store a reset's marker that its master did not take (retryUntilDone). */
const MARK_AGAIN_AFTER_MS = 1_000;

/**
 * Calls `attempt` every MARK_AGAIN_AFTER_MS until it resolves true (a rejection is a false) or `isStopped()`; returns
 * what stops it sooner. One try at a time: the next is timed from the end of the one before.
 */
export function retryUntilDone(attempt: () => Promise<boolean>, isStopped: () => boolean): () => void {
  let timer: NodeJS.Timeout | undefined;
  let isCancelled = false;
  const next = () => {
    if (isCancelled || isStopped()) return;
    timer = setTimeout(() => {
      void attempt()
        .catch(() => false)
        .then((isDone) => {
          if (!isDone) next();
        });
    }, MARK_AGAIN_AFTER_MS).unref();
  };
  next();
  return () => {
    isCancelled = true;
    clearTimeout(timer);
  };
}

/** The reset's answer when a master was not reached: what was reset, what was not, and what to do. */
export function resetIncomplete(unreached: UnreachedMasters): ServiceUnavailableError {
  const masters = [...unreached].sort().join(", ");
  return new ServiceUnavailableError(
    `The reset did not reach Redis Cluster master ${masters}: the budgets, cooldowns and refused features stored there were not reset (every other master's were, and every gateway process forgot its own); retry once it answers.`,
    { retryAfterMs: 1_000 },
  );
}
