// The ioredis connections of the shared state, tuned so that an unreachable Redis costs a request at most one
// short timeout and never an error: no offline queue (a command while disconnected fails at once), no command
// retries, a short command timeout, and reconnection in the background.
import { Redis } from "ioredis";
import { LEARN_LUA, RECONCILE_LUA, RESERVE_LUA, SHARE_COOLDOWN_LUA } from "./redis-lua.ts";

/** ms a shared-state command may take before the request falls back to local state. */
export const COMMAND_TIMEOUT_MS = 200;
/** ms to wait for a TCP connection (start-up and every reconnection attempt). */
const CONNECT_TIMEOUT_MS = 1_000;
/** ms between reconnection attempts: 100, 200, ... capped here, so a returning Redis is noticed within a second. */
const MAX_RECONNECT_DELAY_MS = 1_000;

type ScriptArgument = string | number;

/** The Lua scripts as commands (EVALSHA, falling back to EVAL once after a Redis restart flushed its script cache). */
export interface SharedStateCommands {
  budgetReserve(numberOfKeys: number, ...keysAndArguments: ScriptArgument[]): Promise<unknown>;
  budgetReconcile(numberOfKeys: number, ...keysAndArguments: ScriptArgument[]): Promise<unknown>;
  budgetLearn(numberOfKeys: number, ...keysAndArguments: ScriptArgument[]): Promise<unknown>;
  shareCooldown(numberOfKeys: number, ...keysAndArguments: ScriptArgument[]): Promise<unknown>;
}

export type SharedStateRedis = Redis & SharedStateCommands;

/** The command connection; `lazyConnect`, so the caller decides how long start-up may wait. */
export function createCommandClient(url: string): SharedStateRedis {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    connectionName: "llm-gateway",
  });
  client.defineCommand("budgetReserve", { lua: RESERVE_LUA });
  client.defineCommand("budgetReconcile", { lua: RECONCILE_LUA });
  client.defineCommand("budgetLearn", { lua: LEARN_LUA });
  client.defineCommand("shareCooldown", { lua: SHARE_COOLDOWN_LUA });
  return client as SharedStateRedis;
}

/**
 * The subscriber connection (a connection in subscribe mode can run nothing else). Its SUBSCRIBE may wait for a
 * connection (offline queue on, no retry limit) and is renewed after every reconnection (`autoResubscribe`).
 */
export function createSubscriberClient(url: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    connectionName: "llm-gateway-subscriber",
  });
}

/** QUIT when connected (replies in flight are delivered), otherwise drop the connection; never throws. */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch {
      // fall through to disconnect
    }
  }
  client.disconnect();
}
