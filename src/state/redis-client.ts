// The ioredis connections of the shared state, tuned so that an unreachable Redis costs a request at most one
// short timeout and never an error: no offline queue (a command while disconnected fails at once), no command
// retries, a short command timeout, and reconnection in the background. With `state.redis_cluster` the same options
// apply to an ioredis Cluster seeded from `redis_url` (it discovers the other nodes and follows slot moves).
import { Cluster, Redis } from "ioredis";
import { CHUNKED_BATCH_ADMIT_LUA, CHUNKED_BATCH_END_LUA, CHUNKED_BATCH_REST_LUA } from "./redis-chunked-batches-lua.ts";
import { nodeErrorOf } from "./redis-link.ts";
import { RESERVE_LUA } from "./redis-lua.ts";
import {
  DELETE_FIELD_IF_LUA,
  FORGET_LIMITS_LUA,
  LEARN_LUA,
  RESERVE_AFTER_WRITES_LUA,
  SET_OVER_LUA,
  SHARE_COOLDOWN_LUA,
  SHARE_REFUSAL_LUA,
  TAKE_IN_FLIGHT_LUA,
  WRITE_BATCH_LUA,
} from "./redis-lua-writes.ts";
import { type ScriptCommand, type ScriptDefinition, withScripts } from "./redis-scripts.ts";

/** ms a shared-state command may take before the request falls back to local state (`state.redis_command_timeout_ms`). */
export const COMMAND_TIMEOUT_MS = 200;
/** ms to wait for a TCP connection (start-up and every reconnection attempt). */
const CONNECT_TIMEOUT_MS = 1_000;
/** ms a closing connection waits for QUIT's answer before it is dropped (shutdown never hangs on a mute Redis). */
const QUIT_WAIT_MS = 1_000;
/** ms between reconnection attempts: 100, 200, ... capped here, so a returning Redis is noticed within a second. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * The budgets', cooldowns' and limits' Lua scripts, as commands of the connection (redis-scripts.ts: sent by digest,
 * their text once per socket and after NOSCRIPT), each call naming its key count first.
 */
const SHARED_STATE_SCRIPTS = {
  budgetReserve: { lua: RESERVE_LUA },
  budgetLearn: { lua: LEARN_LUA },
  budgetWriteBatch: { lua: WRITE_BATCH_LUA },
  budgetReserveAfterWrites: { lua: RESERVE_AFTER_WRITES_LUA },
  budgetTakeInFlight: { lua: TAKE_IN_FLIGHT_LUA },
  shareCooldown: { lua: SHARE_COOLDOWN_LUA },
  shareRefusal: { lua: SHARE_REFUSAL_LUA },
  forgetLimits: { lua: FORGET_LIMITS_LUA },
  deleteFieldIf: { lua: DELETE_FIELD_IF_LUA },
  setOver: { lua: SET_OVER_LUA },
  chunkedBatchAdmit: { lua: CHUNKED_BATCH_ADMIT_LUA },
  chunkedBatchRest: { lua: CHUNKED_BATCH_REST_LUA },
  chunkedBatchEnd: { lua: CHUNKED_BATCH_END_LUA },
} as const satisfies Record<string, ScriptDefinition>;

/** The Lua scripts as commands (EVALSHA, falling back to EVAL once after a Redis restart flushed its script cache). */
export type SharedStateCommands = Record<keyof typeof SHARED_STATE_SCRIPTS, ScriptCommand>;

/** A standalone Redis or a Redis Cluster: the same commands (every script's keys share one hash tag). */
export type RedisConnection = Redis | Cluster;
export type SharedStateRedis = RedisConnection & SharedStateCommands;

export const retryStrategy = (attempt: number): number => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS);

/** The command connection; `lazyConnect`, so the caller decides how long start-up may wait. */
export function createCommandClient(
  url: string,
  isCluster = false,
  /** The request log's reads are larger and off the request path: it allows more. */
  commandTimeoutMs = COMMAND_TIMEOUT_MS,
): SharedStateRedis {
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    connectionName: "llm-gateway",
  };
  // Commands issued in the same turn of the event loop (many requests under load) go out in one write: on
  // loopback each write costs about as much kernel time as the command it carries. withScripts keeps the scripts out
  // of a Cluster's auto-pipelining: ioredis groups its commands by the node of their first argument, which for a
  // script is its key count, and then refuses the whole batch when its keys are on several masters ("All keys in the
  // pipeline should belong to the same slots allocation group"): reserves fell back to local state and cooldowns
  // were never shared whenever two providers on different masters were served in the same turn.
  const client: RedisConnection = isCluster
    ? new Cluster([seedNode(url)], { ...clusterOptions(url, options), enableAutoPipelining: true })
    : new Redis(url, { ...options, retryStrategy, enableAutoPipelining: true });
  return withScripts(client, SHARED_STATE_SCRIPTS);
}

/**
 * The subscriber connection's options (a connection in subscribe mode can run nothing else). Its SUBSCRIBE may
 * wait for a connection (offline queue on, no retry limit). CooldownSharing subscribes again after every
 * reconnection itself: ioredis's own re-SUBSCRIBE has no rejection handler, so a connection closed before its
 * answer (a shutdown just after a blip) was an unhandled rejection.
 */
export function subscriberOptions(url: string) {
  return {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    connectionName: "llm-gateway-subscriber",
    autoResubscribe: false,
    ...credentialsOf(url),
  };
}

export type SubscriberOptions = ReturnType<typeof subscriberOptions>;

/** The standalone subscriber (on a Cluster: redis-cluster-subscriber.ts). */
export function createSubscriberClient(url: string): Redis {
  return new Redis(url, { ...subscriberOptions(url), retryStrategy });
}

/** ms start-up waits, at most, for a connection to become ready (then it starts from local state). */
export const START_READY_WAIT_MS = 5_000;

/**
 * `client.connect()`, bounded: resolves once the client is ready, rejects after `waitMs`, or (a standalone Redis) when
 * the first attempt fails. An ioredis Cluster never settles connect() when its ready check fails (cluster_state:fail,
 * or CLUSTER INFO past the command timeout on a loaded machine): it reconnects by itself, and a start awaiting that
 * promise never ended (redis-cluster-start.test.ts). A Cluster's first attempt that fails is waited past too: its
 * slot map is read (CLUSTER SLOTS) on a new connection that inherits the 200 ms command timeout, which a loaded
 * machine missed at start-up, and ioredis connects again ~100 ms later (redis-cluster-start-check.test.ts).
 * Whatever happens later, ioredis goes on reconnecting in the background.
 *
 * The rejection names the attempt's own error: connect() itself only says "Connection is closed." (standalone) or
 * "None of startup nodes is available" (Cluster), and the start ignores the 'error' events that came before it while
 * connecting (redis-state.ts). A refused password or permission ends the wait at once: no later attempt gets past it
 * (redis-start-refusals.test.ts).
 */
export function connectWithin(client: RedisConnection, waitMs = START_READY_WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    let attemptError: unknown;
    const onReady = (): void => finish(undefined);
    const onError = (error: unknown): void => {
      attemptError = nodeErrorOf(error);
      if (isRefusedCredential(attemptError)) finish(attemptError);
    };
    const timer = setTimeout(() => {
      const last = attemptError === undefined ? "a Redis Cluster:" : `${describeAttemptError(attemptError)};`;
      finish(new Error(`Redis was not ready within ${waitMs} ms (${last} is its cluster_state ok?)`));
    }, waitMs);
    function finish(error: unknown): void {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("error", onError);
      if (error === undefined) resolve();
      else reject(error);
    }
    client.once("ready", onReady);
    client.on("error", onError);
    client.connect().then(
      () => finish(undefined),
      (error: unknown) => {
        attemptError ??= error;
        if (!(client instanceof Cluster)) finish(attemptError ?? new Error("Redis connection failed"));
      },
    );
  });
}

/** Redis refused who we are (AUTH, or an ACL user without the command): a configuration error, not an outage. */
function isRefusedCredential(error: unknown): boolean {
  return error instanceof Error && /^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR invalid password/.test(error.message);
}

function describeAttemptError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `redis://user:pass@host:port/db` -> the cluster's first node (a cluster has no databases but 0). */
export function seedNode(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: parsed.port === "" ? 6379 : Number(parsed.port) };
}

/** The URL's user, password and TLS, as options for a connection to one node of a cluster. */
function credentialsOf(url: string) {
  const parsed = new URL(url);
  return {
    ...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** The command connection's options on a Cluster: its own, and each node connection's (`redisOptions`). */
function clusterOptions(url: string, options: { readonly enableOfflineQueue: boolean; readonly lazyConnect: boolean }) {
  const { enableOfflineQueue, ...nodeOptions } = options;
  return {
    lazyConnect: true,
    enableOfflineQueue,
    // Slot maps are refreshed on MOVED replies; a stale one must not stall start-up.
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    clusterRetryStrategy: retryStrategy,
    // Slot moves after a failover: follow them a few times, briefly, rather than failing the command.
    maxRedirections: 4,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 100,
    redisOptions: { ...nodeOptions, ...credentialsOf(url) },
  };
}

/**
 * Every key matching `pattern`, batch by batch (SCAN, never KEYS). A cluster is scanned node by node: a SCAN
 * only sees the keys of the node that answers it. With `onNodeFailed`, a node whose SCAN fails (a master that
 * just died, still in the client's node list) is reported there and skipped, and the others are still scanned;
 * without it, the failure is thrown. `master` is the node's `host:port`.
 */
export async function* scanKeys(
  client: RedisConnection,
  pattern: string,
  onNodeFailed?: (error: unknown, master: string) => void,
): AsyncGenerator<string[]> {
  const nodes = client instanceof Cluster ? client.nodes("master") : [client];
  // A master that died leaves the connection pool while the slot table still names it: not scanned, it was not a
  // failure either, and a load dropped every lesson stored there as "not stored" (redis-master-epochs.ts).
  const unscanned = client instanceof Cluster ? mastersOutsidePool(client) : [];
  for (const master of unscanned) {
    const error = new Error(`Redis Cluster master ${master} is not connected`);
    if (onNodeFailed === undefined) throw error;
    onNodeFailed(error, master);
  }
  for (const node of nodes) {
    let cursor = "0";
    do {
      let batch: [string, string[]];
      try {
        batch = await node.scan(cursor, "MATCH", pattern, "COUNT", 500);
      } catch (error) {
        if (onNodeFailed === undefined) throw error;
        onNodeFailed(error, `${node.options.host}:${node.options.port}`);
        break;
      }
      const [next, keys] = batch;
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }
}

/** The masters the slot table names that the connection pool holds no connection to (`host:port`). */
function mastersOutsidePool(client: Cluster): string[] {
  const pooled = new Set(client.nodes("master").map((node) => `${node.options.host}:${node.options.port}`));
  const named = new Set<string>();
  for (const nodes of client.slots) if (nodes?.[0] !== undefined && !pooled.has(nodes[0])) named.add(nodes[0]);
  return [...named];
}

/** GET of several keys: one MGET, or (keys of several slots in a cluster) one GET each. */
export async function getMany(client: RedisConnection, keys: readonly string[]): Promise<(string | null)[]> {
  if (!(client instanceof Cluster)) return client.mget(...keys);
  return Promise.all(keys.map((key) => client.get(key)));
}

/** UNLINK of several keys; returns how many existed. */
export async function unlinkMany(client: RedisConnection, keys: readonly string[]): Promise<number> {
  if (!(client instanceof Cluster)) return client.unlink(...keys);
  const counts = await Promise.all(keys.map((key) => client.unlink(key)));
  return counts.reduce((sum, count) => sum + count, 0);
}

/** A connection closeClient can close: an ioredis client, or a ClusterSubscriber. */
export interface Closable {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * QUIT when connected (replies in flight are delivered), for at most QUIT_WAIT_MS; otherwise, or after that, drop
 * the connection. Never throws.
 */
export async function closeClient(client: Closable): Promise<void> {
  if (client.status === "ready") {
    // QUIT is never auto-pipelined: sent at once, it went before the commands of this turn still queued for the
    // auto-pipeline's write (setImmediate), which then failed with "Connection is closed" (a lease's give-back, a
    // slot's release issued just before the close). After one turn they are on the wire, ahead of it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let timer: NodeJS.Timeout | undefined;
    const hasQuit = await Promise.race([
      client.quit().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), QUIT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (hasQuit) return;
  }
  client.disconnect();
}
