// Whether the shared Redis is usable right now. Every Redis call reports its outcome here; the ledger and the
// cooldown sharing skip Redis while it is down and serve from local state. One log line when Redis goes down and
// one when it comes back, however many requests fail in between. On a Redis Cluster a failed command tells which
// slot failed, not that the cluster did: it counts against the master serving that slot (redis-slot-groups.ts), and
// the link goes down only with the cluster connection itself.
import { type DownGroup, FAILURES_BEFORE_DOWN, isUnservedSlotReply, SlotGroups } from "./redis-slot-groups.ts";
import type { StateLogger, StateStatus } from "./state-types.ts";

/**
 * A command failed on a key of its own, which on a Redis Cluster may sit on another master than the caller's write
 * (a batch's resend reads the data epoch first; a refused feature's write on its deployment's key): its failure counts
 * against that key's master, whatever the caller names.
 */
export class KeyedFailure extends Error {
  readonly key: string;

  constructor(key: string, cause: unknown) {
    super(`a command on ${key} failed`, { cause });
    this.key = key;
  }
}

export class RedisLink {
  /** Where Redis is, without credentials: `redis://host:port/db`. */
  readonly target: string;
  readonly #logger: StateLogger | undefined;
  readonly #now: () => number;
  readonly #isConnectionOpen: () => boolean;
  readonly #upListeners: (() => void)[] = [];
  readonly #keptDropped = new Map<string, number>();
  #isUp = false;
  #hasLoggedDown = false;
  #isClosed = false;
  #consecutiveFailures = 0;
  #downSinceMs: number;
  #lastError = "not connected yet";
  #lastScriptErrorLogMs = Number.NEGATIVE_INFINITY;
  #lastGivenUpLogMs = Number.NEGATIVE_INFINITY;
  #givenUpSinceLog = 0;
  /** On a Redis Cluster: which providers' slots do not answer. */
  readonly #groups: SlotGroups | undefined;

  constructor(
    target: string,
    logger: StateLogger | undefined,
    now: () => number,
    isConnectionOpen: () => boolean,
    isCluster = false,
    /** On a Cluster: the master serving a slot now (`host:port`), from the cluster connection's slot table. */
    masterOfSlot?: (slot: number) => string | undefined,
  ) {
    this.target = target;
    this.#logger = logger;
    this.#now = now;
    this.#isConnectionOpen = isConnectionOpen;
    this.#downSinceMs = now();
    this.#groups = isCluster ? new SlotGroups(target, logger, now, masterOfSlot) : undefined;
  }

  get isUp(): boolean {
    return this.#isUp;
  }

  /** A Redis Cluster: failures count against a provider's slot group, not the link (standalone: the link). */
  get isCluster(): boolean {
    return this.#groups !== undefined;
  }

  /** Whether the keys of this budget scope (its provider's hash tag) are shared now: the link, and on a Cluster its slot. */
  isUpFor(scopeId: string | undefined): boolean {
    if (!this.#isUp) return false;
    if (scopeId === undefined || this.#groups === undefined) return true;
    return !this.#groups.isDown(SlotGroups.tagOf(scopeId), kindOf(scopeId));
  }

  /** Whether `key` (a key without a budget scope: the data epoch) is shared now: the link, and on a Cluster its slot. */
  isUpForKey(key: string): boolean {
    if (!this.#isUp) return false;
    return this.#groups === undefined || !this.#groups.isDown(SlotGroups.tagOfKey(key), "key");
  }

  /** The Cluster masters not answering now (none on a standalone Redis): probed once a second. */
  downGroups(): DownGroup[] {
    return this.#groups?.downGroups() ?? [];
  }

  /** A probe of a down group answered (`error` undefined) or failed. */
  probed(groupId: string, error?: unknown): void {
    this.#groups?.probed(groupId, error === undefined ? undefined : describeError(error));
  }

  /** Called (without awaiting) when a Cluster master answers again, with its tags: replay what was local meanwhile. */
  onGroupUp(listener: (tags: readonly string[]) => void): void {
    this.#groups?.onUp(listener);
  }

  /** Called (without awaiting) every time Redis becomes reachable: resynchronise what was local meanwhile. */
  onUp(listener: () => void): void {
    this.#upListeners.push(listener);
  }

  markUp(): void {
    this.#consecutiveFailures = 0;
    if (this.#isUp || this.#isClosed) return;
    this.#isUp = true;
    if (this.#hasLoggedDown) {
      this.#logger?.info(
        { redis: this.target, downForMs: this.#now() - this.#downSinceMs },
        "Redis is reachable again: budgets and cooldowns are shared again",
      );
    } else {
      this.#logger?.info({ redis: this.target }, "budgets and cooldowns are shared through Redis");
    }
    for (const listener of this.#upListeners) listener();
  }

  /**
   * The connection is gone (closed, refused, reset): down at once. `undefined`: closed without an error of its
   * own, which keeps the more useful error (e.g. ECONNREFUSED) that usually comes just before.
   */
  markDown(error: unknown): void {
    this.#consecutiveFailures = 0;
    const isTransition = !this.#isClosed && (this.#isUp || !this.#hasLoggedDown);
    if (error !== undefined) this.#lastError = describeError(error);
    else if (isTransition) this.#lastError = "connection closed";
    if (isTransition) {
      this.#isUp = false;
      this.#downSinceMs = this.#now();
      this.#hasLoggedDown = true;
      this.#logger?.warn(
        { redis: this.target, error: this.#lastError },
        "Redis is unreachable: serving from local state (budgets are per process) until it is back",
      );
    }
  }

  /**
   * `scopeId`: the budget scope the command's keys belong to; `key`: else a key it wrote (a cooldown's, a lesson's).
   * On a Cluster, the master of its slot answered.
   */
  recordSuccess(scopeId?: string, key?: string): void {
    this.#consecutiveFailures = 0;
    const tag = tagOf(scopeId, key);
    if (tag !== undefined) this.#groups?.recordSuccess(tag);
  }

  /** A command sent without waiting for its answer: its outcome still counts towards Redis being up or down. */
  track(command: Promise<unknown>, scopeId?: string): Promise<void> {
    return command.then(
      () => this.recordSuccess(scopeId),
      (error: unknown) => this.recordFailure(error, scopeId),
    );
  }

  /**
   * A command failed. On a closed connection Redis is down at once; on an open one a few failures in a row mean
   * Redis is hung or overloaded. An error reply (a bug or a foreign key of the wrong type) says nothing about
   * reachability: it is logged at most once a minute and only that request falls back to local state. On a Cluster,
   * failures on an open connection count against the master of the slot of `scopeId` (or of `key`, a write that
   * carries no budget scope: a cooldown, a lesson; none without either), and a reply saying the slot has no master
   * (CLUSTERDOWN...) is such a failure.
   */
  recordFailure(error: unknown, scopeId?: string, key?: string): void {
    if (error instanceof KeyedFailure) {
      this.recordFailure(error.cause, undefined, error.key);
      return;
    }
    // Writes on several keys that failed together (RefusalSharing.pushLocal): on a Cluster each counts against its own
    // key's master (a PUBLISH among them, on no key, against none: it no longer hid the keyed ones); on a standalone
    // Redis they are one failure, as one write was.
    if (
      error instanceof AggregateError &&
      error.errors.length > 0 &&
      error.errors.some((each) => each instanceof KeyedFailure)
    ) {
      for (const each of this.#groups === undefined ? error.errors.slice(0, 1) : error.errors) this.recordFailure(each);
      return;
    }
    const isSlotFailure = this.#groups !== undefined && isUnservedSlotReply(error);
    if (error instanceof Error && error.name === "ReplyError" && !isSlotFailure) {
      this.recordRejected(error);
      return;
    }
    if (!this.#isConnectionOpen()) {
      this.markDown(error);
      return;
    }
    if (!this.#isUp) return;
    if (this.#groups !== undefined) {
      const tag = tagOf(scopeId, key);
      if (tag === undefined) return;
      this.#groups.recordFailure(tag, describeError(error), scopeId === undefined ? "key" : kindOf(scopeId));
      return;
    }
    this.#consecutiveFailures += 1;
    this.#lastError = describeError(error);
    if (this.#consecutiveFailures >= FAILURES_BEFORE_DOWN) this.markDown(error);
  }

  /** Redis answered, but not what the script should answer: logged at most once a minute. */
  recordRejected(error: unknown): void {
    const nowMs = this.#now();
    if (nowMs - this.#lastScriptErrorLogMs < 60_000) return;
    this.#lastScriptErrorLogMs = nowMs;
    this.#logger?.warn({ redis: this.target, error: describeError(error) }, "Redis rejected a shared-state command");
  }

  /**
   * A write that must not be lost (a reconcile, give-back or retime: redis-once-writes.ts) failed every resend. On a
   * Redis Cluster the link stays up while one master is dead (the others answer), so a batch for that master's slots
   * was dropped after ~4 s without a word, and the shared counts it would have moved stayed off until their windows
   * ended. Logged at most once a minute, with how many were given up since the last line.
   */
  recordGivenUp(error: unknown): void {
    this.#givenUpSinceLog += 1;
    const nowMs = this.#now();
    if (nowMs - this.#lastGivenUpLogMs < 60_000) return;
    this.#lastGivenUpLogMs = nowMs;
    const writes = this.#givenUpSinceLog;
    this.#givenUpSinceLog = 0;
    this.#logger?.warn(
      { redis: this.target, writes, error: describeError(error) },
      "Redis did not take a shared budget write after every resend: the shared counts it would have moved (a give-back, a late send's retime) stay off until their windows end",
    );
  }

  /**
   * Counts writes the bound dropped as they are dropped (keptWritesDropped: the metric), by the scope each moved: a
   * client's budget (`client:NAME`) under its own key, not its hash tag's: that tag is the client's name, which a
   * provider may share (one series for both before), and is cut at a `/` or `#` the name may hold.
   */
  countKeptDropped(scopeId: string, writes: number): void {
    const key = kindOf(scopeId) === "client" ? scopeId : `provider:${SlotGroups.tagOf(scopeId)}`;
    this.#keptDropped.set(key, (this.#keptDropped.get(key) ?? 0) + writes);
  }

  /**
   * The budget writes kept for a Cluster master's return that the bound dropped since start
   * (`llm_gateway_state_kept_writes_dropped_total`), keyed `provider:TAG` (a provider's scopes, by hash tag) or
   * `client:NAME` (a client's budget): the warnings say when dropping begins and the total at the replay, which an
   * alert cannot count.
   */
  keptWritesDropped(): ReadonlyMap<string, number> {
    return this.#keptDropped;
  }

  /**
   * Writes kept for a Cluster master's return that the bound (`bound`, MAX_KEPT_WRITES per provider) drops, oldest first: the
   * shared counts they would have moved stay off (a give-back lost: counted high; a charge lost: counted low) until
   * their windows end. Said, not silent: once when a provider's first write is dropped, once with the count when its
   * master answers again and what is left is replayed.
   */
  recordKeptDropped(tag: string, writes: number, isReplayed: boolean, bound: number): void {
    const what = isReplayed
      ? `${writes} budget writes of provider ${tag} kept for its Redis Cluster master's return were dropped (oldest first, past ${bound}); the rest are replayed`
      : `more than ${bound} budget writes of provider ${tag} are kept for its Redis Cluster master's return: the oldest are dropped from now on`;
    this.#logger?.warn(
      { redis: this.target, provider: tag, dropped: writes },
      `${what}; the shared counts they would have moved (give-backs, charges) stay off until their windows end`,
    );
  }

  close(): void {
    this.#isClosed = true;
    this.#isUp = false;
  }

  status(): StateStatus {
    if (this.#isUp) {
      const local = this.#groups?.describeDown();
      const localProviders = this.#groups === undefined ? {} : { localProviders: this.#groups.downProviderTags() };
      if (local !== undefined) {
        return {
          kind: "redis",
          isDegraded: true,
          detail: `shared through ${this.target} but ${local}`,
          ...localProviders,
        };
      }
      return { kind: "redis", isDegraded: false, detail: `shared through ${this.target}`, ...localProviders };
    }
    return {
      kind: "redis",
      isDegraded: true,
      detail: `${this.target} unreachable since ${new Date(this.#downSinceMs).toISOString()} (${this.#lastError}); serving from local state`,
    };
  }
}

/** A client's budget (`client:NAME`, snapshot.ts CLIENT_SCOPE_PREFIX): its tag is the client's name, never shown. */
function kindOf(scopeId: string): "provider" | "client" {
  return scopeId.startsWith("client:") ? "client" : "provider";
}

function tagOf(scopeId: string | undefined, key: string | undefined): string | undefined {
  if (scopeId !== undefined) return SlotGroups.tagOf(scopeId);
  return key === undefined ? undefined : SlotGroups.tagOfKey(key);
}

function describeError(error: unknown): string {
  // What failed, not only where (a given-up batch's warning named the data epoch's key without the timeout).
  if (error instanceof KeyedFailure) return describeError(error.cause);
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0]);
  // A Cluster's "Failed to refresh slots cache." says why only in its seed's error (a refused password).
  const nodeError = nodeErrorOf(error);
  if (nodeError !== error && error instanceof Error) return `${error.message} (${describeError(nodeError)})`;
  if (error instanceof Error) return error.message === "" ? error.name : error.message;
  return String(error);
}

/** A Cluster's "Failed to refresh slots cache." carries the seed's own error (ioredis ClusterAllFailedError). */
export function nodeErrorOf(error: unknown): unknown {
  if (error instanceof Error && "lastNodeError" in error && error.lastNodeError instanceof Error) {
    return error.lastNodeError;
  }
  return error;
}

/** `redis://user:secret@host:6379/2` -> `redis://host:6379/2`: status and logs never show credentials. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname === "/" ? "" : parsed.pathname;
    return `${parsed.protocol}//${parsed.host}${path}`;
  } catch {
    return "redis (unparseable URL)";
  }
}
