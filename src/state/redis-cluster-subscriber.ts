// Pub/sub on a Redis Cluster. A PUBLISH reaches every node of a cluster, so one connection to any node hears the
// channel. ioredis's own cluster subscriber moves to another node when its connection drops and subscribes there
// again by itself, but tells nobody: what was published between the drop and that SUBSCRIBE was lost to this
// process, and nothing knew to load it (redis-cluster.test.ts kills every pub/sub connection to show it). This one
// emits "ready" on every new connection, as a standalone subscriber does after a reconnect, so CooldownSharing
// subscribes again and then loads what it missed.
import { EventEmitter } from "node:events";
import { Cluster, Redis } from "ioredis";
import { type RedisConnection, retryStrategy, type SubscriberOptions } from "./redis-client.ts";

interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * One standalone connection to one node of the cluster, moved to the next known node whenever it ends. Emits
 * "message" (channel, text) and "ready" (each new connection, before any SUBSCRIBE) like an ioredis client; its
 * connection errors are left to the command connection, which reports the same outage.
 */
export class ClusterSubscriber extends EventEmitter {
  readonly #seed: NodeAddress;
  /** Every node the command connection knows now (it follows the cluster's topology). */
  readonly #knownNodes: () => readonly NodeAddress[];
  readonly #options: SubscriberOptions;
  #connection: Redis;
  /** Connections made so far: picks the next node in turn, and how long to wait before the next one. */
  #attempts = 0;
  /** Consecutive connections that ended without being ready. */
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #isClosed = false;

  constructor(seed: NodeAddress, knownNodes: () => readonly NodeAddress[], options: SubscriberOptions) {
    super();
    this.#seed = seed;
    this.#knownNodes = knownNodes;
    this.#options = options;
    // Made now and connected by `connect`: a SUBSCRIBE sent before then waits for it (offline queue).
    this.#connection = this.#open(seed);
  }

  get status(): string {
    return this.#connection.status;
  }

  /** Connects to the seed node; resolves when ready, rejects if that first connection fails (it keeps trying). */
  connect(): Promise<void> {
    return this.#connection.connect();
  }

  /** SUBSCRIBE on the current connection (queued until it is ready); rejects when that connection ends first. */
  subscribe(channel: string): Promise<unknown> {
    return this.#connection.subscribe(channel);
  }

  /** Ends for good (closeClient calls this, or `disconnect`): no other connection after this one. */
  quit(): Promise<unknown> {
    this.#stop();
    return this.#connection.quit();
  }

  disconnect(): void {
    this.#stop();
    this.#connection.disconnect();
  }

  #stop(): void {
    this.#isClosed = true;
    clearTimeout(this.#timer);
  }

  #open(node: NodeAddress): Redis {
    this.#attempts += 1;
    // No reconnection of its own: when it ends, the next connection may go to another node (this one may be gone).
    const connection = new Redis({ ...this.#options, ...node, retryStrategy: () => null });
    this.#connection = connection;
    // Its errors are the command connection's, reported there; without a listener ioredis would print them.
    connection.on("error", () => {});
    connection.on("message", (channel: string, text: string) => this.emit("message", channel, text));
    connection.on("ready", () => {
      this.#failures = 0;
      this.emit("ready");
    });
    connection.once("end", () => {
      if (this.#isClosed || this.#connection !== connection) return;
      this.#failures += 1;
      // At once after a connection that was up (to miss as little as possible), then backing off while none works.
      const delayMs = this.#failures <= 1 ? 0 : retryStrategy(this.#failures - 1);
      this.#timer = setTimeout(() => this.#reopen(), delayMs);
      this.#timer.unref();
    });
    return connection;
  }

  #reopen(): void {
    if (this.#isClosed) return;
    const nodes = unique([...this.#knownNodes(), this.#seed]);
    const node = nodes[this.#attempts % nodes.length] ?? this.#seed;
    this.#open(node)
      .connect()
      .catch(() => {
        // its "end" moves on to the next node
      });
  }
}

function unique(nodes: readonly NodeAddress[]): NodeAddress[] {
  const byAddress = new Map<string, NodeAddress>();
  for (const node of nodes) byAddress.set(`${node.host}:${node.port}`, { host: node.host, port: node.port });
  return [...byAddress.values()];
}

/** The nodes a cluster client knows now (masters and replicas: a PUBLISH reaches them all). */
export function nodesOf(client: RedisConnection): NodeAddress[] {
  if (!(client instanceof Cluster)) return [];
  const nodes: NodeAddress[] = [];
  for (const { options } of client.nodes("all")) {
    if (options.host !== undefined && options.port !== undefined)
      nodes.push({ host: options.host, port: options.port });
  }
  return nodes;
}
