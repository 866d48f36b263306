// Cooldowns shared between gateway processes: a 429 seen by one process makes every process skip that candidate.
// Each cooldown set locally is stored in Redis (expiring when the cooldown ends) and published; every process
// imports what the others publish, and loads what is stored when it starts or reconnects. A later end wins
// everywhere, as in AvailabilityBook.importCooldowns. Circuit-breaker state stays per process: it describes this
// process's connections to a provider.
// A parked key is stored under its key's fingerprint (`cooldown:provider:<name>:key:<fingerprint>`), beside the
// provider's other cooldowns: it parks only the replicas configured with that key (AvailabilityBook filters on
// import), and it does not stand in the way of the fixed key's own cooldowns (a later end wins per Redis key).
// The admin reset (`resetShared`) is published with an id it also leaves in `P reset-id`: a process that did not hear
// it (its subscription away) applies it at its next load.

import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { AvailabilityBook, Cooldown, CooldownChange, PersistedCooldowns } from "../limits/availability.ts";
import { getMany, type SharedStateRedis } from "./redis-client.ts";
import { parseCooldown, parseMessage, type SharedMessage } from "./redis-cooldown-messages.ts";
import { cooldownChannel, cooldownKey, resetMarkerKey } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";
import type { SharedKeys } from "./redis-shared-keys.ts";
import {
  deleteKeysStartingWith,
  publishOnAnyMaster,
  retryUntilDone,
  setOrNote,
  setOverKnown,
  type UnreachedMasters,
} from "./redis-shared-reset.ts";
import { RetryBackoff } from "./retry-backoff.ts";

/**
 * What sharing needs of its subscriber: a standalone ioredis client, or a ClusterSubscriber. Either emits "ready"
 * on every new connection (which hears nothing until it subscribes) and "message" for each one published.
 */
export interface PubSubConnection {
  subscribe(channel: string): Promise<unknown>;
  on(event: "message" | "ready", listener: (...args: string[]) => void): unknown;
}

export interface CooldownSharingOptions {
  readonly redis: SharedStateRedis;
  readonly subscriber: PubSubConnection;
  readonly availability: AvailabilityBook;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly instanceId: string;
  /** Another process reset the shared state (admin reset). */
  readonly onRemoteReset: () => void;
  /** Another process published a learned fact (redis-learned-facts.ts); it reads it. */
  readonly onLearned?: (fact: unknown) => void;
  /**
   * Loads everything shared (redis-state.ts: one walk of the keys, then the cooldowns through `load`, then the
   * lessons), after a late subscription.
   */
  readonly loadShared: () => Promise<unknown>;
}

/** ms before the first retry of a refused SUBSCRIBE; doubled at each retry, up to SUBSCRIBE_RETRY_MAX_MS. */
const SUBSCRIBE_RETRY_MS = 100;
const SUBSCRIBE_RETRY_MAX_MS = 2_000;

export class CooldownSharing {
  readonly #options: CooldownSharingOptions;
  readonly #channel: string;
  #isStopped = false;
  #isSubscribed = false;
  /** A load ran before the subscription was in place: what was published in between reached neither. */
  #hasLoadedUnsubscribed = false;
  /** Cooldowns whose store failed while Redis was up, by scope and key, stored again after `#backoff`'s delay. */
  readonly #unshared = new Map<string, CooldownChange>();
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #backoff: RetryBackoff;
  /** The latest admin reset this process made, heard, or read from its marker (`P reset-id`). */
  #knownResetId: string | undefined;
  /** Markers known before resets whose own was not stored (`unmarked`): its master may come back with one (not missed). */
  readonly #unmarkedBefore = new Set<string>();
  /** Stops storing the marker of a reset this process made that its master did not take (#markLater). */
  #stopMarking: (() => void) | undefined;
  /** The first load only reads the marker: a process that starts holds nothing a reset before it would clear. */
  #hasReadReset = false;

  constructor(options: CooldownSharingOptions) {
    this.#options = options;
    this.#channel = cooldownChannel(options.keyPrefix);
    this.#backoff = new RetryBackoff();
  }

  /**
   * Hooks into the availability book and the subscriber connection. Resolves once subscribed, or once stopped
   * (never rejects); while Redis is down it waits, and it subscribes again after every reconnect (#resubscribe).
   */
  start(): Promise<void> {
    const { availability, subscriber } = this.#options;
    availability.onCooldown((change) => this.#share(change));
    subscriber.on("message", (channel: string, text: string) => {
      if (channel === this.#channel) this.#receive(text);
    });
    subscriber.on("ready", () => this.#resubscribe());
    return this.#subscribe();
  }

  /** No more SUBSCRIBE retries (the backend is closing). */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#retryTimer);
    this.#stopMarking?.();
  }

  async #subscribe(): Promise<void> {
    for (let delayMs = SUBSCRIBE_RETRY_MS; !this.#isStopped; delayMs = Math.min(delayMs * 2, SUBSCRIBE_RETRY_MAX_MS)) {
      try {
        await this.#options.subscriber.subscribe(this.#channel);
      } catch {
        // The subscriber's connection went away before answering (it is then not sent again by itself): this
        // process would never hear another cooldown. Retried until it holds or the backend closes.
        await new Promise<void>((resolve) => setTimeout(resolve, delayMs).unref());
        continue;
      }
      this.#isSubscribed = true;
      // Start-up stopped waiting for the subscription and loaded without it, or the subscriber was away: load what
      // was published meanwhile.
      if (this.#hasLoadedUnsubscribed && !this.#isStopped) {
        this.#hasLoadedUnsubscribed = false;
        void this.#options.link.track(this.#options.loadShared());
      }
      return;
    }
  }

  /**
   * The subscriber connected again after losing its connection: a new connection hears no channel until it
   * subscribes (ioredis's own re-SUBSCRIBE is off, see createSubscriberClient), and what was published while it
   * was away reached nobody here, so it is loaded once subscribed.
   */
  #resubscribe(): void {
    if (!this.#isSubscribed || this.#isStopped) return;
    this.#isSubscribed = false;
    this.#hasLoadedUnsubscribed = true;
    void this.#subscribe();
  }

  /**
   * A load begins (before its walk of the keys): what is published from now until the subscription is in place
   * reaches neither that load nor the subscription, so a late subscription loads again.
   */
  beginLoad(): void {
    if (!this.#isSubscribed) this.#hasLoadedUnsubscribed = true;
  }

  /**
   * Applies an admin reset this process did not hear, then imports every cooldown a load's walk found; returns how
   * many. (On a Cluster with a master down, the walk found what the others hold: the caller throws its error.)
   */
  async load(keys: SharedKeys): Promise<number> {
    const { redis, keyPrefix, availability } = this.#options;
    await this.#applyMissedReset();
    const start = `${keyPrefix}cooldown:`;
    const deployments: [string, Cooldown][] = [];
    const providers: [string, Cooldown][] = [];
    for (let first = 0; first < keys.cooldowns.length; first += GET_BATCH) {
      const batch = keys.cooldowns.slice(first, first + GET_BATCH);
      const values = await getMany(redis, batch);
      batch.forEach((key, index) => {
        const cooldown = parseCooldown(values[index]);
        const rest = key.slice(start.length);
        if (cooldown === undefined) return;
        if (rest.startsWith("deployment:")) deployments.push([rest.slice("deployment:".length), cooldown]);
        else if (rest.startsWith("provider:")) {
          // The name ends before `:key:` (provider names have no colon); the fingerprint is in the value.
          const [name = ""] = rest.slice("provider:".length).split(KEY_PARK_INFIX, 1);
          providers.push([name, cooldown]);
        }
      });
    }
    availability.importCooldowns({ deployments, providers });
    return deployments.length + providers.length;
  }

  /**
   * Applies an admin reset this process did not hear (its subscription was away when it was published), as if heard
   * now: the reset deleted every shared cooldown, budget key (stated limits with them) and refused feature, and left
   * its id in its marker; without this, the process kept the stated limits it had heard until it ended, and its
   * cooldowns until they did. Before the stored cooldowns are imported (and, the caller's part, the lessons loaded):
   * what was stored since the reset is adopted again.
   */
  async #applyMissedReset(): Promise<void> {
    const resetId = await this.#options.redis.get(resetMarkerKey(this.#options.keyPrefix));
    const isFirst = !this.#hasReadReset;
    this.#hasReadReset = true;
    if (resetId === null || resetId === this.#knownResetId || this.#unmarkedBefore.has(resetId)) return;
    this.#knownResetId = resetId;
    if (!isFirst) this.#applyRemoteReset();
  }

  /** A reset made or heard; unmarked, the marker known before it may still be the one a load reads. */
  #noteReset(resetId: string, isMarked: boolean): void {
    if (isMarked) this.#unmarkedBefore.clear();
    else if (this.#knownResetId !== undefined && this.#unmarkedBefore.size < 16)
      this.#unmarkedBefore.add(this.#knownResetId);
    this.#knownResetId = resetId;
  }

  #applyRemoteReset(): void {
    this.#options.availability.reset();
    this.#options.onRemoteReset();
  }

  /** Stores every active local cooldown (set while Redis was unreachable) in Redis. */
  async pushLocal(): Promise<void> {
    const persisted: PersistedCooldowns = this.#options.availability.exportCooldowns();
    const changes: CooldownChange[] = [
      ...persisted.deployments.map(([key, cooldown]): CooldownChange => ({ scope: "deployment", key, cooldown })),
      ...persisted.providers.map(([key, cooldown]): CooldownChange => ({ scope: "provider", key, cooldown })),
    ];
    this.#unshared.clear();
    await Promise.all(
      changes.map((change) =>
        this.#store(change).catch((error: unknown) => {
          this.#retryLater(change);
          throw error;
        }),
      ),
    );
    this.#backoff.reset();
  }

  /**
   * Deletes every shared cooldown and tells the other processes to forget theirs (admin reset). A Cluster master not
   * reached (its cooldowns, or the marker's master) is noted in `unreached`; the reset is still published.
   */
  async resetShared(unreached?: UnreachedMasters): Promise<void> {
    const { redis, keyPrefix, instanceId } = this.#options;
    await deleteKeysStartingWith(redis, `${keyPrefix}cooldown:`, unreached);
    // The marker after every delete (the caller's first): a replica that reads it and loads finds nothing stale.
    const resetId = randomBytes(6).toString("hex");
    // Known before its SET: a load meanwhile reads the marker before it, or this one.
    this.#noteReset(resetId, false);
    const isMarked = await setOrNote(redis, resetMarkerKey(keyPrefix), resetId, unreached);
    // Only the latest reset decides what is marked later: two made at once here whose SETs both failed, the later's
    // settling first, had the earlier one cancel the later's retry and start its own, which gave up at once (not the
    // latest): neither marker was ever stored. Nor does an earlier one's SET forget what the later's retry stores over.
    if (this.#knownResetId === resetId) {
      if (isMarked) this.#unmarkedBefore.clear();
      this.#stopMarking?.();
      if (!isMarked) this.#markLater(resetId);
    }
    const message: SharedMessage = { origin: instanceId, type: "reset", resetId };
    await publishOnAnyMaster(redis, this.#channel, JSON.stringify(isMarked ? message : { ...message, unmarked: true }));
  }

  /**
   * A reset whose marker its master did not take: stored once that master answers, and the reset published again,
   * marked. A process whose subscription was away at the first publish (its loads since read the marker before it, or
   * could not read it) hears it then, or reads it at its next load; one that heard it knows the id and ignores it.
   * Before 2026-12-07 such a process never learned of that reset. Given up once a later reset is made or heard (its
   * own marker stands for both), or the backend closes (the process ends: the reset's 503 told the admin to retry).
   */
  #markLater(resetId: string): void {
    const { redis, keyPrefix, instanceId } = this.#options;
    this.#stopMarking = retryUntilDone(
      async () => {
        if (this.#knownResetId !== resetId) return true;
        // Over a newer reset's marker (made where this process did not hear it), neither stored nor published again.
        if (!(await setOverKnown(redis, resetMarkerKey(keyPrefix), resetId, [...this.#unmarkedBefore]))) return true;
        if (this.#knownResetId !== resetId) return true;
        this.#unmarkedBefore.clear();
        const message: SharedMessage = { origin: instanceId, type: "reset", resetId };
        // Unpublished, it is still read from its marker at each process's next load.
        await publishOnAnyMaster(redis, this.#channel, JSON.stringify(message)).catch(() => undefined);
        return true;
      },
      () => this.#isStopped,
    );
  }

  #share(change: CooldownChange): void {
    void this.#shareNow(change);
  }

  /** Stores and publishes the change; false when that failed (it is then tried again later). */
  async #shareNow(change: CooldownChange): Promise<boolean> {
    // While Redis is down the cooldown is local only; pushLocal() shares it when Redis is back.
    if (!this.#options.link.isUp) return true;
    try {
      await this.#store(change);
    } catch (error) {
      // On a Cluster, against the master of its key's slot (a hung one answers no slot of its own).
      this.#options.link.recordFailure(error, undefined, storedKey(this.#options.keyPrefix, change));
      this.#retryLater(change);
      return false;
    }
    this.#options.link.recordSuccess(undefined, storedKey(this.#options.keyPrefix, change));
    return true;
  }

  /**
   * A store that failed while Redis was up (a timeout, an error reply such as a refused PUBLISH) is tried again
   * later: nothing else would share that cooldown before Redis is next marked down and up, and a refusal never marks
   * it down. The delay backs off while the retries keep failing (RetryBackoff). Repeated timeouts mark Redis down;
   * from then on `#share` keeps cooldowns local and `pushLocal` shares them all when Redis is back.
   */
  #retryLater(change: CooldownChange): void {
    this.#unshared.set(storedKey(this.#options.keyPrefix, change), change);
    if (this.#retryTimer !== undefined || this.#isStopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#retryRound();
    }, this.#backoff.nextDelayMs());
    this.#retryTimer.unref();
  }

  /** Shares every pending cooldown again; once all of them are stored, the next failure waits the first delay again. */
  async #retryRound(): Promise<void> {
    const changes = [...this.#unshared.values()];
    this.#unshared.clear();
    const results = await Promise.all(changes.map((pending) => this.#shareNow(pending)));
    if (results.every((isShared) => isShared)) this.#backoff.reset();
  }

  async #store(change: CooldownChange): Promise<void> {
    const { redis, keyPrefix, clock, instanceId } = this.#options;
    const ttlMs = Math.ceil(change.cooldown.untilMs - clock.now());
    if (ttlMs <= 0) return;
    const message: SharedMessage = { origin: instanceId, type: "cooldown", change };
    await redis.shareCooldown(
      1,
      storedKey(keyPrefix, change),
      JSON.stringify(change.cooldown),
      change.cooldown.untilMs,
      ttlMs,
      this.#channel,
      JSON.stringify(message),
    );
  }

  #receive(text: string): void {
    const message = parseMessage(text);
    if (message === undefined || message.origin === this.#options.instanceId) return;
    if (message.type === "reset") {
      // Already applied from its marker by a load that ran before the message came.
      if (message.resetId !== undefined && message.resetId === this.#knownResetId) return;
      // Known before the latest (heard unmarked, then published again, marked, once its marker was stored): applied.
      if (message.resetId !== undefined && this.#unmarkedBefore.has(message.resetId)) return;
      if (message.resetId !== undefined) this.#noteReset(message.resetId, message.unmarked !== true);
      this.#applyRemoteReset();
      return;
    }
    if (message.type === "learned") {
      this.#options.onLearned?.(message.fact);
      return;
    }
    const { scope, key, cooldown } = message.change;
    const entry: [string, Cooldown] = [key, cooldown];
    this.#options.availability.importCooldowns(
      scope === "deployment" ? { deployments: [entry], providers: [] } : { deployments: [], providers: [entry] },
    );
  }
}

/** Cooldowns read per MGET while loading. */
const GET_BATCH = 500;

/** Between a provider's name and a parked key's fingerprint in the Redis key. */
const KEY_PARK_INFIX = ":key:";

/** Where a cooldown is stored: a parked key apart from its provider's other cooldowns, one key per fingerprint. */
function storedKey(keyPrefix: string, change: CooldownChange): string {
  const fingerprint = change.cooldown.keyFingerprint;
  const key =
    change.scope === "provider" && fingerprint !== undefined
      ? `${change.key}${KEY_PARK_INFIX}${fingerprint}`
      : change.key;
  return cooldownKey(keyPrefix, change.scope, key);
}
