// Forget markers of a deployment's shared lessons (its refused features, its prompt calibration). A reload that points
// a name elsewhere deletes what is stored of the deployment and publishes the forget (redis-refused-features.ts,
// redis-learned-facts.ts `forgetDeployment`); a replica whose subscription was away drops its copy at its next load
// all the same, by what is no longer stored, as long as Redis kept its data. After Redis lost its data (a restart
// without persistence, a flush) that tells nothing: nothing is stored, and every replica writes again what it holds
// (redis-data-epoch.ts), so a forget made since, which the replica did not hear, was undone for the whole fleet. The
// forget also leaves a marker naming it, kept DEPLOYMENT_FORGET_KEEP_MS; each load, before anything is written again,
// applies the markers this process does not know (it neither made nor heard that forget).
import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import { KnownForgets } from "./known-forgets.ts";
import { getMany, type SharedStateRedis } from "./redis-client.ts";
import { deploymentForgetKey, deploymentForgetsStart, deploymentKeyOf, type ForgottenLessons } from "./redis-keys.ts";

/**
 * ms a marker is kept. It only matters to a replica that missed the forget across a loss of Redis's data, until it is
 * back (seconds); a day covers a replica cut off far longer, and bounds what stays of a reload that churns names.
 */
export const DEPLOYMENT_FORGET_KEEP_MS = 24 * 3_600_000;

/** Markers read per MGET. */
const GET_BATCH = 500;

/** A new forget's id: the same at every retry of its send, so that a send that ran is not run again. */
export function newForgetId(): string {
  return randomBytes(6).toString("hex");
}

/** Deployments whose forget this process did not know, by what was forgotten. */
export type UnknownForgets = Record<ForgottenLessons, string[]>;

export class DeploymentForgets {
  readonly #redis: SharedStateRedis;
  readonly #prefix: string;
  readonly #known: Record<ForgottenLessons, KnownForgets>;
  readonly #clock: Clock;
  /**
   * When this process started: a forget made before holds nothing of what it learned (its config already names what
   * the forget was for). Only the first load's data-set check said so: a first load that failed after it (a
   * command timed out, a Cluster master down) left markers unread, and a later load applied forgets older than this
   * process, dropping what it had learned since of the upstreams its names point at now.
   */
  readonly #startedAtMs: number;

  constructor(redis: SharedStateRedis, prefix: string, clock: Clock) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#clock = clock;
    this.#startedAtMs = clock.now();
    this.#known = {
      refusals: new KnownForgets(clock, DEPLOYMENT_FORGET_KEEP_MS),
      calibration: new KnownForgets(clock, DEPLOYMENT_FORGET_KEEP_MS),
    };
  }

  markerKey(lessons: ForgottenLessons, deploymentKey: string): string {
    return deploymentForgetKey(this.#prefix, lessons, deploymentKey);
  }

  /** A forget this process made or heard: its marker is not applied again. (One of an earlier version has no id.) */
  note(lessons: ForgottenLessons, deploymentKey: string, forgetId: string | undefined): void {
    if (forgetId !== undefined) this.#known[lessons].note(deploymentKey, forgetId);
  }

  /** Sets the marker of a calibration's forget (a refusal's is set by the forget's script with its delete). */
  async mark(lessons: ForgottenLessons, deploymentKey: string, forgetId: string): Promise<void> {
    await this.#redis.set(this.markerKey(lessons, deploymentKey), forgetId, "PX", DEPLOYMENT_FORGET_KEEP_MS);
  }

  /**
   * Reads the markers a load's walk found (SharedKeys.deploymentForgets); returns the deployments whose marker names
   * a forget this process does not know, and notes them known (a marker is applied once). With a node whose SCAN
   * failed (a Cluster's master down) its markers are read at a later load: the caller goes on with the others, as its
   * loads of the lessons do (stopping there would skip writing its lessons again after a loss of data).
   */
  async unknown(keys: readonly string[]): Promise<UnknownForgets> {
    const start = deploymentForgetsStart(this.#prefix);
    const unknown: UnknownForgets = { refusals: [], calibration: [] };
    for (let first = 0; first < keys.length; first += GET_BATCH) {
      const batch = keys.slice(first, first + GET_BATCH);
      const forgetIds = await getMany(this.#redis, batch);
      for (const [index, key] of batch.entries()) {
        const rest = key.slice(start.length);
        const colon = rest.indexOf(":");
        const lessons = rest.slice(0, colon);
        const deploymentKey = deploymentKeyOf(rest.slice(colon + 1));
        const forgetId = forgetIds[index];
        if (lessons !== "refusals" && lessons !== "calibration") continue;
        if (deploymentKey === undefined || typeof forgetId !== "string" || forgetId === "") continue;
        if (this.#known[lessons].isKnown(deploymentKey, forgetId)) continue;
        this.#known[lessons].note(deploymentKey, forgetId);
        if (!(await this.#isSetBeforeStart(key))) unknown[lessons].push(deploymentKey);
      }
    }
    return unknown;
  }

  /**
   * Whether the marker was set before this process started, told by what is left of its life (relative: no clock of
   * another host is read). Only markers this process does not know are asked: few, and only after a forget.
   */
  async #isSetBeforeStart(key: string): Promise<boolean> {
    const leftMs = await this.#redis.pttl(key);
    if (leftMs < 0) return false; // gone meanwhile (or kept for good): applied, as before
    return this.#clock.now() - (DEPLOYMENT_FORGET_KEEP_MS - leftMs) < this.#startedAtMs;
  }
}
