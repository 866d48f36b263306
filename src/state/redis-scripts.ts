// Lua scripts as commands of a connection (ioredis `defineCommand`): sent by digest (EVALSHA), their whole text only
// on a socket's first call and after Redis answers NOSCRIPT (a SCRIPT FLUSH, a restart, a failover to a replica that
// never ran it), then as EVAL once more. `redis.eval` sent the text with every call (KEEP_WITHIN_BUDGET_LUA ~2 KB).
import { Cluster, type Redis } from "ioredis";

/** As redis-client.ts's RedisConnection (not imported: that file defines its scripts with this one). */
type RedisConnection = Redis | Cluster;

type ScriptArgument = string | number;
/** A script as a command: its keys then its ARGV, or (no `numberOfKeys` in its definition) their count first. */
export type ScriptCommand = (...keysAndArguments: ScriptArgument[]) => Promise<unknown>;

export interface ScriptDefinition {
  readonly lua: string;
  /** Keys of every call; absent when it varies (the count is then the call's first argument). */
  readonly numberOfKeys?: number;
}

/**
 * Defines `scripts` on a connection no command has used yet: an auto-pipeline open when a command is defined lacks
 * it, and ioredis then fails the whole batch (`results[i] is not iterable`), so definitions come with the connection,
 * never lazily at a first call. A Cluster's auto-pipelining groups commands by the slot of their first argument: a
 * script whose first argument is its key count (a number) would be grouped by the slot of "3" and its batch refused
 * when its keys are on another master, so those are kept out of it.
 */
export function withScripts<Connection extends RedisConnection, Name extends string>(
  redis: Connection,
  scripts: Readonly<Record<Name, ScriptDefinition>>,
): Connection & Record<Name, ScriptCommand> {
  for (const [name, script] of Object.entries<ScriptDefinition>(scripts)) {
    redis.defineCommand(name, script.numberOfKeys === undefined ? { lua: script.lua } : { ...script });
    if (script.numberOfKeys === undefined && redis instanceof Cluster) {
      // A new array: ioredis's default one is shared by every Cluster of the process.
      redis.options.autoPipeliningIgnoredCommands = [...(redis.options.autoPipeliningIgnoredCommands ?? []), name];
    }
  }
  return redis as Connection & Record<Name, ScriptCommand>;
}
