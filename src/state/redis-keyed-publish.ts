// A PUBLISH names a channel, not a key: on a Redis Cluster any node takes it and relays it to every subscriber on
// every node. ioredis sent each (its turn's auto-pipeline) to a master at random, and its failure (a timeout on a
// hung master) counted against no master (RedisLink.recordFailure needs a key's slot): a lesson's or a forget's
// PUBLISH that drew the hung master timed out and was tried again on its backoff, whichever provider it was about,
// while the hung master's own providers stayed shared. It now goes to the master of the key whose write it follows
// (the lesson's, the forget's): its outcome counts for or against that master, as the write's does, and one hung
// master no longer holds back the lessons of providers on the others.
import { Cluster } from "ioredis";
import type { SharedStateRedis } from "./redis-client.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { KeyedFailure, type RedisLink } from "./redis-link.ts";

/**
 * PUBLISHes `message` through the master of `key`'s slot (on a standalone Redis, or a master the connection does not
 * know yet, as any command); answered, it counts for that master; failed, it throws a KeyedFailure of `key`.
 */
export async function publishBeside(
  redis: SharedStateRedis,
  link: Pick<RedisLink, "recordSuccess">,
  key: string,
  channel: string,
  message: string,
): Promise<void> {
  try {
    await (masterOf(redis, key) ?? redis).publish(channel, message);
  } catch (error) {
    throw new KeyedFailure(key, error);
  }
  link.recordSuccess(undefined, key);
}

/** The cluster connection's own connection to the master serving `key`'s slot, or undefined. */
function masterOf(redis: SharedStateRedis, key: string) {
  if (!(redis instanceof Cluster)) return undefined;
  const address = redis.slots[hashSlot(key)]?.[0];
  if (address === undefined) return undefined;
  return redis.nodes("master").find((node) => `${node.options.host}:${node.options.port}` === address);
}
