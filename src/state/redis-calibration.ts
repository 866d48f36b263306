// Prompt calibrations (limits/prompt-calibration.ts) kept in Redis, as the embedded store keeps them in its file:
// one hash, deployment key -> `{"estimated":..,"reported":..}`. A process loads it when it starts, so a new or
// restarted gateway scales estimates from its first request; every process writes what it learned every
// `flush_interval_ms` (the last writer's evidence wins a field: each is a recent average of the same provider's
// reports) and when it closes. Loss costs little: a process that could not load learns again from its first few
// large prompts. A deployment forgotten by another replica's reload (redis-learned-facts.ts `forgetDeployment`) is
// dropped when that is heard; one whose forget was not heard (the subscription was away) is dropped at the next
// reload of what is shared (`reconcile`), so that this process's flush does not write it back: evidence loaded,
// flushed, or heard from another replica's context-length refusal alike.
import type { PromptCalibration, PromptEvidence } from "../limits/prompt-calibration.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { calibrationKey } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";

export class CalibrationSharing {
  readonly #redis: SharedStateRedis;
  readonly #link: RedisLink;
  readonly #key: string;
  readonly #calibration: PromptCalibration;
  #timer: NodeJS.Timeout | undefined;
  /** Learned since the last write that succeeded. */
  #isPending = false;
  /**
   * Deployments whose evidence this process knows was stored (loaded at start, written by its flush or its own
   * context-length refusal, or heard from another replica's refusal: `noteStored`): one no longer stored was deleted
   * by another replica's forget. Heard evidence counts too: left out, a replica whose subscription was away when it
   * was forgotten kept the old upstream's factor, and its next flush stored it again for the whole fleet.
   */
  readonly #stored = new Set<string>();
  /**
   * What this process's last flush wrote of each deployment (its JSON): a flush writes every evidence held, so one
   * that ran while the subscription was away wrote back a deployment another replica had just forgotten
   * (`dropWrittenBack`). One entry per deployment with evidence.
   */
  readonly #written = new Map<string, string>();

  constructor(redis: SharedStateRedis, link: RedisLink, prefix: string, calibration: PromptCalibration) {
    this.#redis = redis;
    this.#link = link;
    this.#key = calibrationKey(prefix);
    this.#calibration = calibration;
  }

  /** What the fleet learned so far; returns how many deployments. */
  async load(): Promise<number> {
    const fields = await this.#redis.hgetall(this.#key);
    const persisted: Record<string, unknown> = {};
    for (const [deploymentKey, text] of Object.entries(fields)) {
      try {
        persisted[deploymentKey] = JSON.parse(text) as PromptEvidence;
        this.#stored.add(deploymentKey);
      } catch {
        // a foreign or corrupt field: skipped
      }
    }
    return this.#calibration.import(persisted);
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  /** Writes what was learned, if anything, while Redis is up; a failed write is tried again at the next one. */
  async flush(): Promise<void> {
    if (this.#calibration.takeDirty()) this.#isPending = true;
    if (!this.#isPending || !this.#link.isUp) return;
    const fields = Object.entries(this.#calibration.export()).flatMap(([key, evidence]) => [
      key,
      JSON.stringify(evidence),
    ]);
    if (fields.length === 0) return;
    this.#isPending = false;
    try {
      await this.#redis.hset(this.#key, ...fields);
      for (let index = 0; index < fields.length; index += 2) {
        this.#stored.add(fields[index] ?? "");
        this.#written.set(fields[index] ?? "", fields[index + 1] ?? "");
      }
      if (this.#link.isCluster) this.#link.recordSuccess(undefined, this.#key);
    } catch (error) {
      // On a Cluster, against the master of its hash's slot (a hung one answers no slot of its own). A standalone
      // Redis keeps its link as before: the next flush tries again, uncounted.
      if (this.#link.isCluster) this.#link.recordFailure(error, undefined, this.#key);
      this.#isPending = true;
    }
  }

  /** Redis lost its data (redis-data-epoch.ts): nothing of this process's is stored; all of it is written again. */
  async pushAll(): Promise<void> {
    this.#stored.clear();
    this.#isPending = true;
    await this.flush();
  }

  /**
   * The deployment's evidence is stored: this process's context-length refusal wrote it, or another replica's did and
   * published it (after its HSET; redis-learned-facts.ts `onEvidenceStored`).
   */
  noteStored(deploymentKey: string): void {
    this.#stored.add(deploymentKey);
  }

  /** This process forgot the deployment (a reload): what it learns of it from now on is not stored yet. */
  forgotten(deploymentKey: string): void {
    this.#stored.delete(deploymentKey);
    this.#written.delete(deploymentKey);
  }

  /**
   * Deletes from Redis what this process's flush wrote of each deployment whose forget it did not hear (applied from
   * its marker, redis-deployment-forgets.ts): with its subscription away, a flush wrote the old upstream's evidence
   * back after the forget deleted it, and every replica starting since loaded it. Only while the field still holds
   * what this process wrote (DELETE_FIELD_IF_LUA): evidence stored since by another replica is not touched.
   */
  async dropWrittenBack(deploymentKeys: readonly string[]): Promise<void> {
    for (const deploymentKey of deploymentKeys) {
      const written = this.#written.get(deploymentKey);
      if (written === undefined) continue;
      this.#written.delete(deploymentKey);
      await this.#redis.deleteFieldIf(1, this.#key, deploymentKey, written);
    }
  }

  /**
   * Drops the evidence of every deployment this process knew stored and that is no longer (called whenever Redis or
   * the subscription is back: a forget published meanwhile reached nobody here); returns how many. The race: a flush
   * of this process's under way may write a deployment again just after it was read as deleted; its evidence is
   * then dropped here and stored there until the next forget of it, as it was before any reconcile.
   */
  async reconcile(): Promise<number> {
    if (this.#stored.size === 0) return 0;
    const storedNow = new Set(await this.#redis.hkeys(this.#key));
    let dropped = 0;
    for (const deploymentKey of [...this.#stored]) {
      if (storedNow.has(deploymentKey)) continue;
      this.#stored.delete(deploymentKey);
      if (!this.#calibration.hasEvidence(deploymentKey)) continue;
      this.#calibration.adoptUnstoredEvidence(deploymentKey);
      dropped++;
    }
    return dropped;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
