// The features deployments refused (limits/refused-features.ts), shared between replicas as the other learned facts
// are (redis-learned-facts.ts), so that one refusal teaches the fleet instead of costing each replica its own:
// - a lesson learned here is stored in its deployment's hash (redis-keys.ts `refusedFeaturesKey`, hash-tagged with
//   the provider; the hash expires when its latest lesson ends, each lesson carrying its own end) and published on
//   the cooldown channel; every replica adopts what it hears, and loads what is stored when it starts or Redis comes
//   back;
// - a success with a feature that cleared a lesson here deletes the stored lesson and is published: the other
//   replicas clear it too;
// - a reload that points a name at another upstream (or changes its `body:` rules) deletes the deployment's stored
//   lessons, then publishes the forget: every replica drops its copy, so that none keeps ranking the deployment by
//   what the old upstream refused. A replica not reloaded yet (a rolling reload) drops lessons still true of the
//   upstream it sends to, and learns them again at the cost of one refusal each, storing them again: the last
//   replica to reload deletes those in turn, and until then a replica already reloaded adopts them (a lesson does
//   not say which upstream it is about);
// - the admin reset deletes every stored lesson before the reset is published (`resetShared`), and a replica that
//   hears it resets its book (redis-state.ts).
// Planning reads only the local book: no round trip is added to a request. What changed while Redis was unreachable
// is written when it is back. A load (at start, when Redis is back, when the subscription is back) replaces this
// replica's lessons by what is stored: one cleared, forgotten or reset elsewhere while this replica was not hearing
// the channel goes here too (`load`); after Redis lost its data, it only adds, and every lesson held here is written
// again (`pushAll`, redis-data-epoch.ts), but not those of a deployment forgotten since by a replica this one did
// not hear: the forget leaves a marker, applied before anything is written again (redis-deployment-forgets.ts).
// What travels and is stored is read by refusal-fact-shapes.ts; the load's walk is redis-refusal-load.ts, which asks
// this class's pending sets (`#writing`, `#unshared`) about the race it must not lose a write to.
import type { Clock } from "../clock.ts";
import {
  type FeatureRefusal,
  MAX_REFUSALS_PER_DEPLOYMENT,
  type RefusalChange,
  type RefusedFeatures,
} from "../limits/refused-features.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { DEPLOYMENT_FORGET_KEEP_MS, type DeploymentForgets, newForgetId } from "./redis-deployment-forgets.ts";
import { publishBeside } from "./redis-keyed-publish.ts";
import { cooldownChannel, refusedFeaturesKey, refusedFeaturesStart } from "./redis-keys.ts";
import { KeyedFailure, type RedisLink } from "./redis-link.ts";
import { loadStoredRefusals, type RefusalsLoadStart } from "./redis-refusal-load.ts";
import type { SharedKeys } from "./redis-shared-keys.ts";
import { deleteKeysStartingWith, type UnreachedMasters } from "./redis-shared-reset.ts";
import { parseRefusalFact, type RefusalFact } from "./refusal-fact-shapes.ts";
import { RetryBackoff } from "./retry-backoff.ts";

export interface RefusalSharingOptions {
  readonly redis: SharedStateRedis;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly instanceId: string;
  readonly refusedFeatures: RefusedFeatures;
  /** The forgets' markers, shared with the calibrations' forgets (one walk finds both). */
  readonly forgets: DeploymentForgets;
}

/** Per feature of a deployment, what is to be written: its lesson, or null for a lesson a success cleared. */
type PendingChanges = Map<string, FeatureRefusal | null>;

export class RefusalSharing {
  readonly #options: RefusalSharingOptions;
  /** Changes made here that are not in Redis yet (made while it was unreachable, or the write failed), by deployment. */
  readonly #unshared = new Map<string, PendingChanges>();
  /**
   * Deployments forgotten (a reload) whose stored lessons are not deleted yet, with the forget's id (the same at every
   * retry: a send that ran is not run again, FORGET_LIMITS_LUA).
   */
  readonly #forgotten = new Map<string, string>();
  /**
   * Deployments forgotten whose lessons are deleted and whose forget's PUBLISH failed (Redis went away between the
   * two, or refused it): published again with the next retry or when Redis is back, not deleted again (a lesson
   * stored since is of what the name points at now). One per deployment: bounded however long Redis is away.
   */
  readonly #unannounced = new Map<string, string>();
  /** Writes under way (sent, not answered yet), by deployment: a load may not see them, and must not drop them. */
  readonly #writing = new Map<string, number>();
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #backoff = new RetryBackoff();
  #isStopped = false;

  constructor(options: RefusalSharingOptions) {
    this.#options = options;
    options.refusedFeatures.onChange((change) => this.#changed(change));
  }

  #changed(change: RefusalChange): void {
    if (change.kind === "reset") {
      // What is stored is deleted by the shared reset (`resetShared`, or the replica that published it): nothing
      // learned before it may be written after it.
      this.#unshared.clear();
      this.#forgotten.clear();
      this.#unannounced.clear();
      return;
    }
    const { deploymentKey } = change;
    if (change.kind === "forgotten") {
      this.#unshared.delete(deploymentKey);
      this.#unannounced.delete(deploymentKey);
      this.#forgotten.set(deploymentKey, newForgetId());
      if (this.#options.link.isUp) void this.#send(() => this.#deleteForgotten());
      return;
    }
    const changes: PendingChanges =
      change.kind === "learned"
        ? new Map([[change.refusal.feature, change.refusal]])
        : new Map(change.features.map((feature) => [feature, null]));
    if (!this.#options.link.isUp) {
      this.#pend(deploymentKey, changes, true);
      return;
    }
    void this.#send(() =>
      this.#write(deploymentKey, changes).catch((error: unknown) => {
        this.#pend(deploymentKey, changes, false);
        throw error;
      }),
    );
  }

  /** Counts the deployment's write as under way until it is answered (see `load`). */
  async #whileWriting(deploymentKey: string, write: () => Promise<void>): Promise<void> {
    this.#writing.set(deploymentKey, (this.#writing.get(deploymentKey) ?? 0) + 1);
    try {
      await write();
    } finally {
      const left = (this.#writing.get(deploymentKey) ?? 1) - 1;
      if (left === 0) this.#writing.delete(deploymentKey);
      else this.#writing.set(deploymentKey, left);
    }
  }

  /** Runs a write; a failure is counted against the link and tried again later. False when it failed. */
  async #send(write: () => Promise<void>): Promise<boolean> {
    try {
      await write();
    } catch (error) {
      this.#options.link.recordFailure(error);
      this.#scheduleRetry();
      return false;
    }
    this.#options.link.recordSuccess();
    return true;
  }

  /**
   * Keeps changes to write later. A failed write's change does not replace one made since (`isNewer` false): the
   * later change of a feature is the one that stands.
   */
  #pend(deploymentKey: string, changes: PendingChanges, isNewer: boolean): void {
    let pending = this.#unshared.get(deploymentKey);
    if (pending === undefined) {
      pending = new Map();
      this.#unshared.set(deploymentKey, pending);
    }
    for (const [feature, change] of changes) if (isNewer || !pending.has(feature)) pending.set(feature, change);
  }

  /**
   * A write that failed while Redis was up (a timeout, an error reply such as a refused PUBLISH) is tried again
   * later, as a cooldown's store is: nothing else would before Redis is next marked down and up (then `pushLocal`
   * does), and a refusal never marks it down. The delay backs off while the retries keep failing (RetryBackoff);
   * `pushLocal` succeeding whole sets it back.
   */
  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#isStopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#options.link.isUp) void this.#send(() => this.pushLocal());
    }, this.#backoff.nextDelayMs());
    this.#retryTimer.unref();
  }

  /** No more retries (the backend is closing). */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#retryTimer);
  }

  /**
   * Deletes what was forgotten and writes what changed while Redis was unreachable (called when it is back, before
   * `load`). What fails stays to be written.
   */
  async pushLocal(): Promise<void> {
    await this.#deleteForgotten();
    const unshared = [...this.#unshared];
    this.#unshared.clear();
    const written = await Promise.allSettled(
      unshared.map(([deploymentKey, changes]) =>
        this.#write(deploymentKey, changes).catch((error: unknown) => {
          this.#pend(deploymentKey, changes, false);
          throw error;
        }),
      ),
    );
    // Every failure told (each a KeyedFailure when its deployment's key failed: on a Cluster, each counts against its
    // own master), not only the first.
    const failures = written.flatMap((write) => (write.status === "rejected" ? [write.reason] : []));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, "writes of refused features failed");
    this.#backoff.reset();
  }

  /**
   * Deletes what is stored of each forgotten deployment, then publishes the forget: in that order, so a replica that
   * hears it and loads finds nothing of it (and one that loads before it hears it drops its copy all the same). What
   * failed stays to be deleted, or (the delete done) to be published.
   */
  async #deleteForgotten(): Promise<void> {
    const forgotten = [...this.#forgotten];
    this.#forgotten.clear();
    const unannounced = [...this.#unannounced];
    this.#unannounced.clear();
    const { redis, keyPrefix, forgets } = this.#options;
    await Promise.all([
      ...unannounced.map(([deploymentKey, forgetId]) => this.#announceForgotten(deploymentKey, forgetId)),
      ...forgotten.map(async ([deploymentKey, forgetId]) => {
        // The marker (redis-deployment-forgets.ts) and the delete in one script, under the deployment's hash tag.
        const keys = [forgets.markerKey("refusals", deploymentKey), refusedFeaturesKey(keyPrefix, deploymentKey)];
        // Known before it is sent: a send that timed out after it ran leaves this process's own marker.
        forgets.note("refusals", deploymentKey, forgetId);
        try {
          await redis.forgetLimits(keys.length, ...keys, forgetId, DEPLOYMENT_FORGET_KEEP_MS);
          // Answered: counts for its master, as a failure counts against it (failures apart are not in a row).
          this.#options.link.recordSuccess(undefined, keys[1]);
        } catch (error) {
          // Unless the deployment was forgotten again meanwhile (that forget is the one to send).
          if (!this.#forgotten.has(deploymentKey)) this.#forgotten.set(deploymentKey, forgetId);
          throw new KeyedFailure(keys[1] as string, error);
        }
        await this.#announceForgotten(deploymentKey, forgetId);
      }),
    ]);
  }

  /** A lost forget left every listening replica ranking the deployment by what the old upstream refused. */
  async #announceForgotten(deploymentKey: string, forgetId: string): Promise<void> {
    try {
      await this.#publish({ kind: "forgotten-refusals", deploymentKey, forgetId });
    } catch (error) {
      this.#unannounced.set(deploymentKey, forgetId);
      throw error;
    }
  }

  /**
   * Stores a deployment's lessons (the script also drops its ended ones, bounds them and sets the hash's expiry) and
   * deletes the cleared ones, then publishes each: in that order, so a process that loads between the two has them
   * already and one that hears them finds them stored.
   */
  #write(deploymentKey: string, changes: PendingChanges): Promise<void> {
    return this.#whileWriting(deploymentKey, () => this.#store(deploymentKey, changes));
  }

  async #store(deploymentKey: string, changes: PendingChanges): Promise<void> {
    const { redis, keyPrefix, clock } = this.#options;
    const key = refusedFeaturesKey(keyPrefix, deploymentKey);
    // A failure on the deployment's key counts against its master on a Cluster (before 2026-12-07, against none: a
    // hung master's lessons timed out, each retry a command timeout, its providers still taken as shared). Its PUBLISH
    // goes through the same master (`#publish`), and counts likewise.
    // An answer counts for that master likewise: failures apart, an answer between, are not "in a row".
    const onKey = <T>(command: Promise<T>): Promise<T> =>
      command.then(
        (answer) => {
          this.#options.link.recordSuccess(undefined, key);
          return answer;
        },
        (error: unknown) => {
          throw new KeyedFailure(key, error);
        },
      );
    const accepted: string[] = [];
    for (const [feature, refusal] of changes) {
      if (refusal === null) {
        accepted.push(feature);
        continue;
      }
      // Ended while it waited to be written: nothing to tell.
      if (refusal.untilMs <= clock.now()) continue;
      await onKey(
        redis.shareRefusal(1, key, feature, JSON.stringify(refusal), clock.now(), MAX_REFUSALS_PER_DEPLOYMENT),
      );
      await this.#publish({ kind: "refused-feature", deploymentKey, refusal });
    }
    if (accepted.length === 0) return;
    await onKey(redis.hdel(key, ...accepted));
    await this.#publish({ kind: "accepted-features", deploymentKey, features: accepted });
  }

  /** Through the master of the deployment's key (redis-keyed-publish.ts): its outcome counts for that master. */
  async #publish(fact: RefusalFact): Promise<void> {
    const { redis, link, keyPrefix, instanceId } = this.#options;
    const message = JSON.stringify({ origin: instanceId, type: "learned", fact });
    const key = refusedFeaturesKey(keyPrefix, fact.deploymentKey);
    await publishBeside(redis, link, key, cooldownChannel(keyPrefix), message);
  }

  /** A fact another process published; what is not a refusal fact (another kind of learned fact) is skipped. */
  receive(value: unknown): void {
    const fact = parseRefusalFact(value);
    if (fact === undefined) return;
    const { refusedFeatures, clock } = this.#options;
    if (fact.kind === "refused-feature") refusedFeatures.adopt(fact.deploymentKey, fact.refusal, clock.now());
    else if (fact.kind === "accepted-features") refusedFeatures.adoptAccepted(fact.deploymentKey, fact.features);
    else {
      this.#options.forgets.note("refusals", fact.deploymentKey, fact.forgetId);
      refusedFeatures.adoptForgotten(fact.deploymentKey);
    }
  }

  /**
   * Drops the lessons of each deployment whose forget this process did not hear (`DeploymentForgets.unknown`), unless
   * it is writing one of them (learned since the forget, perhaps not stored yet). Called by every load before anything
   * is written again; at the first (nothing is held yet) with `isApplying` false.
   */
  applyForgets(deploymentKeys: readonly string[], isApplying: boolean): void {
    if (!isApplying) return;
    for (const deploymentKey of deploymentKeys) {
      if (this.#writing.has(deploymentKey) || this.#unshared.has(deploymentKey)) continue;
      this.#options.refusedFeatures.adoptForgotten(deploymentKey);
    }
  }

  /** What a load compares what is stored against (see `load`): taken before its keys are walked. */
  beginLoad(): RefusalsLoadStart {
    return { known: this.#options.refusedFeatures.lessons(), writing: new Set(this.#writing.keys()) };
  }

  /**
   * Adopts every stored lesson that still holds and (`isReplacing`) drops this replica's lessons that are not stored
   * (redis-refusal-load.ts); returns how many it adopted. A lesson of a deployment with a write under way, or one
   * waiting to be written after a failed write, is not dropped: the walk may have passed its key before it was stored.
   */
  load(keys: SharedKeys, began: RefusalsLoadStart, isReplacing: boolean): Promise<number> {
    return loadStoredRefusals(
      this.#options,
      keys,
      began,
      isReplacing,
      (deploymentKey) => this.#writing.has(deploymentKey) || this.#unshared.has(deploymentKey),
    );
  }

  /**
   * Writes every lesson this process holds (Redis lost its data: redis-data-epoch.ts), so that a later reload, which
   * drops what is not stored, finds them. What fails waits to be written (and is kept by a reload) and is tried
   * again shortly; it does not keep the reload from running.
   */
  async pushAll(): Promise<void> {
    for (const [deploymentKey, refusal] of this.#options.refusedFeatures.lessons()) {
      this.#pend(deploymentKey, new Map([[refusal.feature, refusal]]), false);
    }
    await this.pushLocal().then(
      () => this.#options.link.recordSuccess(),
      (error: unknown) => {
        this.#options.link.recordFailure(error);
        this.#scheduleRetry();
      },
    );
  }

  /** Deletes every stored lesson (the admin reset, before it is published); a Cluster master not reached is noted. */
  async resetShared(unreached?: UnreachedMasters): Promise<void> {
    await deleteKeysStartingWith(this.#options.redis, refusedFeaturesStart(this.#options.keyPrefix), unreached);
  }
}
