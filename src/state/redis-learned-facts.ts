// Facts one process learns from a refusal that every process should know at once, without paying the same refusal:
// - a context-length refusal's lesson (limits/prompt-calibration.ts learnTooLong): the deployment's calibration
//   evidence, when the refusal raised it, and whether prompt and output turned out to share one window;
// - a limit on requests in flight the provider stated in a concurrency 429 (RedisLedger.learnLimits), which the
//   reserve script then enforces fleet-wide with its concurrency leases (BudgetBook.sharedScope);
// - a rate limit the provider stated in a 429 (a limit header, "RPM: Limit 30" in the body), which becomes a rule of
//   the scope in every process (BudgetBook.adoptStatedRules), so that each sends it to the reserve script.
// Each is written when it is learned (the evidence into the calibrations' hash, the others into keys of their own,
// hash-tagged with the provider and expiring), then published on the cooldown channel; every process applies what
// it hears to its local books and loads what is stored when it starts or Redis comes back. Planning reads only the
// local books: no round trip is added to a request. A fact learned while Redis is unreachable is written when it is
// back. A limit inferred from this process's own requests (in flight, or their spacing) is not shared: it is this
// process's share. A reload that points a scope at another key or upstream deletes what was stored of it (`forget`),
// and one that points a deployment's name elsewhere deletes its calibration and shared window (`forgetDeployment`);
// each then publishes the forget, so every replica drops its copy. A forget whose PUBLISH failed is published again;
// one a replica missed (its subscription away) reaches it at its next load: through the scope's forget marker for
// stated limits (`#loadForgets`), by what is no longer stored for a calibration (CalibrationSharing.reconcile, `load`),
// and after Redis lost its data through the deployment's forget marker (redis-deployment-forgets.ts).
// The file stays whole (about 560 lines): a lesson's write, a forget's delete and publish, and a load race on the same
// pending sets (`#unshared`, `#writing`, `#forgotten`, the known forgets), which one class keeps consistent.
import type { Clock } from "../clock.ts";
import type { BudgetRule, LearnedConcurrency } from "../limits/budget-types.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import { KnownForgets } from "./known-forgets.ts";
import {
  type ForgottenLimits,
  forgottenLimitsOf,
  type LearnedFact,
  parseFact,
  parseStored,
  type RateFact,
  type SharedFact,
  UNITS,
  WINDOWS,
} from "./learned-fact-shapes.ts";
import { getMany, type SharedStateRedis } from "./redis-client.ts";
import { type DeploymentForgets, newForgetId } from "./redis-deployment-forgets.ts";
import { publishBeside } from "./redis-keyed-publish.ts";
import {
  calibrationKey,
  cooldownChannel,
  forgottenLimitsKey,
  learnedConcurrencyKey,
  learnedRateKey,
  sharedWindowKey,
} from "./redis-keys.ts";
import { KeyedFailure, type RedisLink } from "./redis-link.ts";
import type { SharedKeys } from "./redis-shared-keys.ts";
import { RetryBackoff } from "./retry-backoff.ts";

/**
 * ms a stated limit (on requests in flight, or a rate) is kept in Redis after it was learned: processes that start
 * later adopt it. Kept in memory by those that know it (as a process's own 429 would teach it), it is only the
 * stored copy that ends, so a provider that raised its limit costs a fleet at most a day of the old one for newly
 * started processes.
 */
export const LEARNED_LIMIT_KEEP_MS = 24 * 3_600_000;
/** ms a shared window is kept in Redis after it was learned: a model's shape, which changes rarely if ever. */
export const SHARED_WINDOW_KEEP_MS = 30 * 24 * 3_600_000;

export interface LearnedFactSharingOptions {
  readonly redis: SharedStateRedis;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly instanceId: string;
  readonly calibration: PromptCalibration | undefined;
  /** Where a stated concurrency learned elsewhere goes (RedisLedger.adoptLearnedConcurrency). */
  readonly adoptConcurrency: (scopeId: string, learned: LearnedConcurrency) => void;
  /** Where a stated rate limit learned elsewhere goes (RedisLedger.adoptStatedRules). */
  readonly adoptRules: (scopeId: string, rules: readonly BudgetRule[]) => void;
  /** Where another process's forget of a scope goes (RedisLedger.adoptForgottenStated). */
  readonly adoptForgottenLimits?: (scopeId: string) => void;
  /** The markers of the calibrations' forgets, shared with the refused features' (one walk finds both). */
  readonly forgets?: DeploymentForgets;
  /**
   * Told of each deployment whose evidence is known stored: written here, or heard from the replica that stored it
   * (it publishes after its HSET). CalibrationSharing.reconcile then drops it once it is no longer stored.
   */
  readonly onEvidenceStored?: (deploymentKey: string) => void;
}

export class LearnedFactSharing {
  readonly #options: LearnedFactSharingOptions;
  /** Facts learned here that are not in Redis yet (learned while it was unreachable, or the write failed). */
  readonly #unshared = new Map<string, LearnedFact>();
  /** When the stated rate limit in force here for a scope's unit and window was learned: scope id -> window -> ms. */
  readonly #rateLearnedAtMs = new Map<string, Map<string, number>>();
  /**
   * Scopes forgotten while Redis was unreachable, or whose delete failed, with the forget's id: deleted when it is
   * back. The id stays the same at every retry, so a send that ran although it failed here is not run again
   * (FORGET_LIMITS_LUA).
   */
  readonly #forgotten = new Map<string, string>();
  /**
   * Deployments whose calibration was forgotten (`forgetDeployment`) and whose stored copy is not deleted yet, with
   * the forget's id (its marker's: the same at every retry).
   */
  readonly #forgottenDeployments = new Map<string, string>();
  /**
   * Forgets whose delete is done and whose PUBLISH failed (Redis went away between the two, or refused it): published
   * again with the next retry or when Redis is back, not deleted again (a lesson stored since is the new key's). One
   * per scope or deployment, so it stays bounded however long Redis is away.
   */
  readonly #unannounced = new Map<string, ForgetFact>();
  /**
   * When each deployment's shared window was last learned, heard, or written (a step of `#windowStep`): a load drops
   * no window touched after it began (see `load`).
   */
  readonly #windowTouchedAt = new Map<string, number>();
  #windowStep = 0;
  /** The forget of each scope this process made, heard, or read from its marker: a load applies only one it does not know. */
  readonly #knownForgets: KnownForgets;
  /** Stated-limit writes under way (sent, not answered yet), by scope: a load's forget must not drop them. */
  readonly #writing = new Map<string, number>();
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #backoff = new RetryBackoff();
  #isStopped = false;

  constructor(options: LearnedFactSharingOptions) {
    this.#options = options;
    this.#knownForgets = new KnownForgets(options.clock, LEARNED_LIMIT_KEEP_MS);
  }

  /** A fact this process learned: stored and published now, or once Redis is back. */
  share(fact: LearnedFact): void {
    void this.#shareNow(fact);
  }

  /** Stores and publishes the fact; false when that failed (it is then tried again later). */
  async #shareNow(fact: LearnedFact): Promise<boolean> {
    const id = idOf(fact);
    if (fact.kind === "rate") this.#noteRate(fact);
    this.#touchWindow(fact);
    if (!this.#options.link.isUp) {
      this.#unshared.set(id, fact);
      return true;
    }
    try {
      await this.#whileWriting(fact, () => this.#write(fact));
    } catch (error) {
      // On a Cluster, against the master of its slot: a stated limit's is its provider's, a context lesson's the
      // calibration hash's (its first write).
      const scopeId = fact.kind === "context" ? undefined : fact.scopeId;
      this.#options.link.recordFailure(error, scopeId, calibrationKey(this.#options.keyPrefix));
      this.#retryLater(id, fact);
      return false;
    }
    this.#options.link.recordSuccess(
      fact.kind === "context" ? undefined : fact.scopeId,
      calibrationKey(this.#options.keyPrefix),
    );
    return true;
  }

  /** Counts a stated limit's write as under way until it is answered (see `#loadForgets`). */
  async #whileWriting(fact: LearnedFact, write: () => Promise<void>): Promise<void> {
    if (fact.kind === "context") return write();
    const { scopeId } = fact;
    this.#writing.set(scopeId, (this.#writing.get(scopeId) ?? 0) + 1);
    try {
      await write();
    } finally {
      const left = (this.#writing.get(scopeId) ?? 1) - 1;
      if (left === 0) this.#writing.delete(scopeId);
      else this.#writing.set(scopeId, left);
    }
  }

  /** No more retries (the backend is closing). */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#retryTimer);
  }

  /**
   * A write (or a forgotten scope's delete) that failed while Redis was up (a timeout, an error reply such as a
   * refused PUBLISH) is tried again later, as a cooldown's store is: nothing else would before Redis is next marked
   * down and up (then `pushLocal` does), and a refusal never marks it down. The delay backs off while the retries keep
   * failing (RetryBackoff).
   */
  #retryLater(id: string, fact: LearnedFact): void {
    this.#unshared.set(id, fact);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#isStopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#retryRound();
    }, this.#backoff.nextDelayMs());
    this.#retryTimer.unref();
  }

  /** Sends every pending delete and fact again; once all of them are done, the next failure waits the first delay. */
  async #retryRound(): Promise<void> {
    const hasForgotten = this.#forgotten.size > 0 || this.#forgottenDeployments.size > 0 || this.#unannounced.size > 0;
    const deleted = hasForgotten && this.#options.link.isUp ? this.#sendDeletes() : Promise.resolve(true);
    const facts = [...this.#unshared.values()];
    this.#unshared.clear();
    const results = await Promise.all([deleted, ...facts.map((pending) => this.#shareNow(pending))]);
    if (results.every((isDone) => isDone)) this.#backoff.reset();
  }

  /**
   * A reload pointed the scope at another key or upstream: what was stored of it (its stated limits) is deleted, and
   * what was learned of it here and not written yet is dropped, so that no process adopts the old key's limits for
   * the new one at its start or a reconnect; then the forget is published, and every replica drops the stated limits
   * it holds for the scope (`adoptForgottenLimits`). Without it, a replica that reloaded earlier in a rolling reload
   * and heard the old key's limit from one not reloaded yet held the new key to it for good (a stated limit does
   * not lapse). A replica not reloaded yet drops a limit still true of its key, and learns it again at its next 429.
   */
  forget(scopeId: string): void {
    for (const [id, fact] of this.#unshared) {
      if (fact.kind !== "context" && fact.scopeId === scopeId) this.#unshared.delete(id);
    }
    this.#rateLearnedAtMs.delete(scopeId);
    this.#unannounced.delete(`limits ${scopeId}`);
    this.#forgotten.set(scopeId, newForgetId());
    if (this.#options.link.isUp) void this.#sendDeletes();
  }

  /**
   * A reload pointed the deployment's name at another upstream (PromptCalibration.forget): its stored evidence and
   * shared window are deleted and an unwritten lesson of it dropped, so that neither this process at a reconnect nor
   * one started later adopts the old upstream's for the new one; then the forget is published, and every replica
   * drops its copy (one that kept it would go on scaling the new upstream's prompts by the old tokenizer's factor,
   * and write it back with its next flush). A replica not reloaded yet (a rolling reload) loses evidence still true
   * of the upstream it sends to, and learns it again from its next few large prompts.
   */
  forgetDeployment(deploymentKey: string): void {
    this.#unshared.delete(`context ${deploymentKey}`);
    this.#unannounced.delete(`calibration ${deploymentKey}`);
    this.#forgottenDeployments.set(deploymentKey, newForgetId());
    if (this.#options.link.isUp) void this.#sendDeletes();
  }

  /** Deletes and publishes what was forgotten; false when that failed (it is then tried again later). */
  async #sendDeletes(): Promise<boolean> {
    try {
      await this.#deleteForgotten();
    } catch (error) {
      this.#options.link.recordFailure(error);
      this.#scheduleRetry();
      return false;
    }
    this.#options.link.recordSuccess();
    return true;
  }

  /**
   * Deletes what is stored of every scope and deployment forgotten since, then publishes each forget; what failed
   * stays to be deleted, or (the delete done) to be published (`#unannounced`).
   */
  async #deleteForgotten(): Promise<void> {
    const scopes = [...this.#forgotten];
    this.#forgotten.clear();
    const deployments = [...this.#forgottenDeployments];
    this.#forgottenDeployments.clear();
    const unannounced = [...this.#unannounced.values()];
    this.#unannounced.clear();
    const { redis, keyPrefix } = this.#options;
    await Promise.all([
      ...unannounced.map((fact) => this.#announce(fact)),
      ...scopes.map(async ([scopeId, forgetId]) => {
        // The marker and the delete in one script: a replica that loads between the two would drop the limits, then
        // adopt them again; and a retry must not delete again (FORGET_LIMITS_LUA). All of a scope's keys share its
        // hash tag (one Cluster slot).
        const marker = JSON.stringify({ scopeId, forgetId });
        const keys = [forgottenLimitsKey(keyPrefix, scopeId), ...storedKeysOf(keyPrefix, scopeId)];
        try {
          await redis.forgetLimits(keys.length, ...keys, marker, LEARNED_LIMIT_KEEP_MS);
          // Answered or failed, it counts for or against the master of the scope's slot (before: neither).
          this.#options.link.recordSuccess(scopeId);
        } catch (error) {
          // Unless the scope was forgotten again meanwhile (that forget is the one to send).
          if (!this.#forgotten.has(scopeId)) this.#forgotten.set(scopeId, forgetId);
          throw new KeyedFailure(keys[0] as string, error);
        }
        this.#knownForgets.note(scopeId, forgetId);
        await this.#announce({ kind: "forgotten-limits", scopeId, forgetId });
      }),
      ...deployments.map(async ([deploymentKey, forgetId]) => {
        const { forgets } = this.#options;
        // Known before it is sent: a SET that timed out after it ran leaves this process's own marker.
        forgets?.note("calibration", deploymentKey, forgetId);
        try {
          // The marker first: a replica back after Redis lost its data and loading between the two drops its copy
          // rather than writing it again. (Setting it again at a retry changes nothing.)
          await forgets?.mark("calibration", deploymentKey, forgetId);
          await this.#deleteCalibration(deploymentKey);
        } catch (error) {
          if (!this.#forgottenDeployments.has(deploymentKey)) this.#forgottenDeployments.set(deploymentKey, forgetId);
          throw error;
        }
        // After the delete: a replica that hears it and loads finds nothing of it.
        await this.#announce({ kind: "forgotten-calibration", deploymentKey, forgetId });
      }),
    ]);
  }

  /**
   * Publishes a forget whose delete is done. A failed PUBLISH is kept to be sent again: lost, it left every replica
   * that was listening with the forgotten limits or calibration until it ended (for a stated limit, for good).
   */
  async #announce(fact: ForgetFact): Promise<void> {
    const id = fact.kind === "forgotten-limits" ? `limits ${fact.scopeId}` : `calibration ${fact.deploymentKey}`;
    try {
      await this.#publish(fact);
    } catch (error) {
      this.#unannounced.set(id, fact);
      throw error;
    }
  }

  /**
   * A deployment's stored evidence and shared window. Not what this process learned again since the forget (of the
   * upstream the name points at now, while the delete waited for Redis): that is written by its own flush or lesson.
   */
  async #deleteCalibration(key: string): Promise<void> {
    const { redis, keyPrefix, calibration } = this.#options;
    if (calibration?.hasEvidence(key) !== true) await redis.hdel(calibrationKey(keyPrefix), key);
    if (calibration?.sharesWindow(key) !== true) await redis.unlink(sharedWindowKey(keyPrefix, key));
  }

  /**
   * Deletes what was forgotten and writes what was learned while Redis was unreachable (called when it is back,
   * before `load`).
   */
  async pushLocal(): Promise<void> {
    await this.#deleteForgotten();
    const facts = [...this.#unshared.values()];
    this.#unshared.clear();
    await Promise.all(
      facts.map((fact) =>
        this.#write(fact).catch((error: unknown) => {
          this.#unshared.set(idOf(fact), fact);
          throw error;
        }),
      ),
    );
    this.#backoff.reset();
  }

  /** A fact another process published. What is not a well-formed fact is skipped. */
  receive(value: unknown): void {
    const fact = parseFact(value);
    if (fact !== undefined) this.#apply(fact);
  }

  /** What a load compares what is stored against (see `load`): taken before its keys are walked. */
  beginLoad(): LearnedFactsLoadStart {
    return {
      knownWindows: this.#options.calibration?.exportSharedWindows() ?? [],
      windowStep: this.#windowStep,
    };
  }

  /**
   * Adopts every stored stated concurrency, stated rate limit and shared window, and drops this process's shared
   * windows that are not stored (forgotten by another replica while this one did not hear it); returns how many it
   * adopted. (The calibrations' evidence is loaded once at start by CalibrationSharing: a later load would replace
   * what this process learned since; CalibrationSharing.reconcile drops what was forgotten.)
   *
   * The race: a window is dropped only if it was kept before `began` (taken before the walk that found `keys`) and
   * was not learned, heard or written since (a write lands after the walk may have passed its key), nor waits to be
   * written (`#unshared`). With a node of a Cluster down, nothing is dropped. `isApplyingForgets`: the scopes' forget
   * markers this process does not know are applied (every load but the first, also after Redis lost its data), not
   * only recorded.
   */
  async load(
    keys: SharedKeys,
    began: LearnedFactsLoadStart,
    isReplacing: boolean,
    isApplyingForgets = isReplacing,
  ): Promise<number> {
    const { redis } = this.#options;
    const storedWindows = new Set<string>();
    let loaded = 0;
    // The markers before the stated limits: a limit stored since a forget (the new key's) is adopted again.
    await this.#loadForgets(keys.scopeForgets, isApplyingForgets);
    const apply = (values: readonly (string | null)[]): void => {
      for (const text of values) {
        const fact = parseStored(text);
        if (fact === undefined) continue;
        if (fact.kind === "context" && fact.lesson.isSharedWindow) storedWindows.add(fact.lesson.deploymentKey);
        this.#apply(fact);
        loaded++;
      }
    };
    for (const stored of [keys.statedLimits, keys.sharedWindows]) {
      for (let start = 0; start < stored.length; start += GET_BATCH) {
        apply(await getMany(redis, stored.slice(start, start + GET_BATCH)));
      }
    }
    if (keys.failure !== undefined) throw keys.failure.error;
    if (!isReplacing) return loaded;
    for (const deploymentKey of began.knownWindows) {
      if (storedWindows.has(deploymentKey) || this.#unshared.has(`context ${deploymentKey}`)) continue;
      if ((this.#windowTouchedAt.get(deploymentKey) ?? 0) > began.windowStep) continue;
      this.#options.calibration?.adoptUnstoredWindow(deploymentKey);
    }
    return loaded;
  }

  /**
   * Drops the calibration (evidence and shared window) of each deployment whose forget this process did not hear
   * (DeploymentForgets.unknown), unless a lesson of it waits to be written (learned since the forget). Called by every
   * load before anything is written again; at the first (nothing is held yet) with `isApplying` false. Returns the
   * deployments dropped.
   */
  applyDeploymentForgets(deploymentKeys: readonly string[], isApplying: boolean): string[] {
    if (!isApplying) return [];
    const applied: string[] = [];
    for (const deploymentKey of deploymentKeys) {
      if (this.#unshared.has(`context ${deploymentKey}`)) continue;
      this.#options.calibration?.adoptForgotten(deploymentKey);
      applied.push(deploymentKey);
    }
    return applied;
  }

  /**
   * Applies the forget of every scope whose marker this process does not know (its subscription was away when the
   * forget was published: the replica kept the old key's stated limits, which do not lapse, until it ended); only
   * records them at the first load (nothing is held yet). After Redis lost its data too: a marker then is a forget
   * made since, which this process did not hear. Before the stated limits are
   * loaded: one stored since the forget (the new key's) is adopted again. Not a scope whose stated limit this process
   * is writing or has still to write: learned since the forget, perhaps not stored yet, it would be lost here.
   */
  async #loadForgets(markerKeys: readonly string[], isApplying: boolean): Promise<void> {
    const { redis } = this.#options;
    for (let start = 0; start < markerKeys.length; start += GET_BATCH) {
      for (const text of await getMany(redis, markerKeys.slice(start, start + GET_BATCH))) {
        const marker = parseMarker(text);
        if (marker?.forgetId === undefined || this.#knownForgets.isKnown(marker.scopeId, marker.forgetId)) continue;
        this.#knownForgets.note(marker.scopeId, marker.forgetId);
        if (isApplying && !this.#isWritingLimits(marker.scopeId)) this.#adoptForgottenLimits(marker.scopeId);
      }
    }
  }

  #isWritingLimits(scopeId: string): boolean {
    if (this.#writing.has(scopeId)) return true;
    for (const fact of this.#unshared.values()) if (fact.kind !== "context" && fact.scopeId === scopeId) return true;
    return false;
  }

  /**
   * Writes every shared window this process holds (Redis lost its data: redis-data-epoch.ts), so that a later reload,
   * which drops what is not stored, finds them: as a window learned now is (a failed write waits, kept by a reload,
   * and is tried again).
   */
  pushWindows(): void {
    for (const deploymentKey of this.#options.calibration?.exportSharedWindows() ?? []) {
      this.share({ kind: "context", lesson: { deploymentKey, evidence: undefined, isSharedWindow: true } });
    }
  }

  /** Notes a shared window learned, heard or written now (see `load`). */
  #touchWindow(fact: SharedFact): void {
    if (fact.kind !== "context" || !fact.lesson.isSharedWindow) return;
    this.#windowStep++;
    this.#windowTouchedAt.set(fact.lesson.deploymentKey, this.#windowStep);
  }

  #apply(fact: SharedFact): void {
    this.#touchWindow(fact);
    if (fact.kind === "concurrency") this.#options.adoptConcurrency(fact.scopeId, fact.learned);
    else if (fact.kind === "rate") this.#adoptRate(fact);
    else if (fact.kind === "forgotten-calibration") {
      this.#options.forgets?.note("calibration", fact.deploymentKey, fact.forgetId);
      this.#options.calibration?.adoptForgotten(fact.deploymentKey);
    } else if (fact.kind === "forgotten-limits") {
      if (fact.forgetId !== undefined) this.#knownForgets.note(fact.scopeId, fact.forgetId);
      this.#adoptForgottenLimits(fact.scopeId);
    } else {
      this.#options.calibration?.adopt(fact.lesson);
      if (fact.lesson.evidence !== undefined) this.#options.onEvidenceStored?.(fact.lesson.deploymentKey);
    }
  }

  /** Another process forgot the scope: a statement heard from now on is adopted whatever was known before. */
  #adoptForgottenLimits(scopeId: string): void {
    this.#rateLearnedAtMs.delete(scopeId);
    this.#options.adoptForgottenLimits?.(scopeId);
  }

  /**
   * A stated rate limit stands until a later statement of the same window: one this process learned (or heard) since
   * is not replaced by an older one that crossed it on the channel or is still stored.
   */
  #adoptRate(fact: RateFact): void {
    const knownAtMs = this.#rateLearnedAtMs.get(fact.scopeId)?.get(`${fact.rule.unit}:${fact.rule.window}`);
    if (knownAtMs !== undefined && knownAtMs >= fact.learnedAtMs) return;
    this.#noteRate(fact);
    this.#options.adoptRules(fact.scopeId, [fact.rule]);
  }

  #noteRate(fact: RateFact): void {
    let windows = this.#rateLearnedAtMs.get(fact.scopeId);
    if (windows === undefined) {
      windows = new Map();
      this.#rateLearnedAtMs.set(fact.scopeId, windows);
    }
    windows.set(`${fact.rule.unit}:${fact.rule.window}`, fact.learnedAtMs);
  }

  /** Stores the fact (SET with its expiry, or HSET of the evidence), then publishes it; in that order, so a process
   * that loads between the two has it already and one that hears it finds it stored. */
  async #write(fact: LearnedFact): Promise<void> {
    const { redis, keyPrefix, clock } = this.#options;
    if (fact.kind === "concurrency") {
      const stored = JSON.stringify({ kind: "concurrency", scopeId: fact.scopeId, learned: fact.learned });
      await redis.set(learnedConcurrencyKey(keyPrefix, fact.scopeId), stored, "PX", LEARNED_LIMIT_KEEP_MS);
    } else if (fact.kind === "rate") {
      const { scopeId, rule } = fact;
      await redis.set(
        learnedRateKey(keyPrefix, scopeId, rule.unit, rule.window),
        JSON.stringify(fact),
        "PX",
        LEARNED_LIMIT_KEEP_MS,
      );
    } else {
      const { deploymentKey, evidence, isSharedWindow } = fact.lesson;
      if (evidence !== undefined) {
        await redis.hset(calibrationKey(keyPrefix), deploymentKey, JSON.stringify(evidence));
        this.#options.onEvidenceStored?.(deploymentKey);
      }
      if (isSharedWindow) {
        const stored = JSON.stringify({ kind: "shared-window", deploymentKey, learnedAtMs: clock.now() });
        await redis.set(sharedWindowKey(keyPrefix, deploymentKey), stored, "PX", SHARED_WINDOW_KEEP_MS);
        // Stored now, perhaps after a load's walk passed its key: that load must not drop it.
        this.#touchWindow(fact);
      }
    }
    await this.#publish(fact);
  }

  /** Through the master of the fact's key (redis-keyed-publish.ts): its outcome counts for that master. */
  async #publish(fact: SharedFact): Promise<void> {
    const { redis, link, keyPrefix, instanceId } = this.#options;
    const message = JSON.stringify({ origin: instanceId, type: "learned", fact });
    const key =
      fact.kind === "context"
        ? sharedWindowKey(keyPrefix, fact.lesson.deploymentKey)
        : fact.kind === "forgotten-calibration"
          ? sharedWindowKey(keyPrefix, fact.deploymentKey)
          : forgottenLimitsKey(keyPrefix, fact.scopeId);
    await publishBeside(redis, link, key, cooldownChannel(keyPrefix), message);
  }
}

/** Keys read per MGET while loading. */
const GET_BATCH = 500;

function parseMarker(text: string | null | undefined): ForgottenLimits | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    return forgottenLimitsOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** What a load compares what is stored against, taken before its walk (LearnedFactSharing.beginLoad). */
export interface LearnedFactsLoadStart {
  readonly knownWindows: readonly string[];
  /** `#windowStep` then: a window touched after it is kept, stored or not. */
  readonly windowStep: number;
}

/** A forget as it is published. */
type ForgetFact = SharedFact & { readonly kind: "forgotten-limits" | "forgotten-calibration" };

/** One pending write per fact: a later lesson about the same scope or deployment replaces an unsent one. */
function idOf(fact: LearnedFact): string {
  if (fact.kind === "rate") return `rate ${fact.scopeId} ${fact.rule.unit}:${fact.rule.window}`;
  return fact.kind === "concurrency" ? `concurrency ${fact.scopeId}` : `context ${fact.lesson.deploymentKey}`;
}

/** Every key a scope's stated limits may be stored under (its learned concurrency, a rate per unit and window). */
function storedKeysOf(prefix: string, scopeId: string): string[] {
  const keys = [learnedConcurrencyKey(prefix, scopeId)];
  for (const unit of UNITS) for (const window of WINDOWS) keys.push(learnedRateKey(prefix, scopeId, unit, window));
  return keys;
}
