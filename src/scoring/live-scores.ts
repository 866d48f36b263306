// Scores as they are now: each deployment's static score (priority, leaderboard, size, context, adjustments)
// minus its live health penalty. Holds the health trackers; the recorder feeds them.
import type { Clock } from "../clock.ts";
import type { Deployment } from "../providers/catalog.ts";
import { type HealthSnapshot, HealthTracker } from "./health.ts";
import { boardQuality, type ModelProfile } from "./model-profile.ts";
import { explainScore, type ScoreBreakdown, type StaticScore, scoreWithHealth } from "./score.ts";
import type { ScoringSettings } from "./scoring-sources.ts";

/** What scoring reads from a config snapshot. */
export interface ScoringSnapshot {
  /** Static score per deployment index. */
  readonly staticScores: readonly StaticScore[];
  readonly profiles: readonly ModelProfile[];
  readonly scoring: ScoringSettings;
}

export class LiveScores {
  readonly #clock: Clock;
  readonly #health = new Map<string, HealthTracker>();
  #halfLifeMs: number | undefined;
  /** Failures older than this (with no success since) no longer lower a score: `cooldowns.failure_window_ms`. */
  #failureMemoryMs: number;

  constructor(clock: Clock, halfLifeMs: number | undefined, failureMemoryMs = Number.POSITIVE_INFINITY) {
    this.#clock = clock;
    this.#halfLifeMs = halfLifeMs;
    this.#failureMemoryMs = failureMemoryMs;
  }

  setFailureMemory(failureMemoryMs: number): void {
    this.#failureMemoryMs = failureMemoryMs;
  }

  /** A new config's half-life applies to trackers created from now on. */
  setHalfLife(halfLifeMs: number | undefined): void {
    this.#halfLifeMs = halfLifeMs;
  }

  /**
   * Static score minus the live health penalty. `isProbe`: the candidate's next request is its recovery probe,
   * ranked in its place as if it had not failed (its failures are what the probe is to find out about).
   */
  scoreOf(deployment: Deployment, snapshot: ScoringSnapshot, isProbe = false): number {
    const staticScore = snapshot.staticScores[deployment.index];
    if (staticScore === undefined) return 0;
    const tracker = this.#health.get(deployment.key);
    if (tracker === undefined) return staticScore.staticTotal;
    const health = tracker.snapshot(this.#failureMemoryMs);
    return scoreWithHealth(staticScore, isProbe ? withoutFailures(health) : health, snapshot.scoring.weights);
  }

  /** The score with the leaderboard term from one board (alias like `bigcodebench` covers its variants). */
  scoreOnBoard(deployment: Deployment, board: string, snapshot: ScoringSnapshot): number | undefined {
    const profile = snapshot.profiles[deployment.index];
    const staticScore = snapshot.staticScores[deployment.index];
    if (profile === undefined || staticScore === undefined) return undefined;
    const quality = boardQuality(profile, board);
    if (quality === undefined) return undefined;
    const weight = snapshot.scoring.weights.MODEL_LEADERBOARD_SCORE_SCALAR;
    const delta = staticScore.basePriority * (weight * quality - staticScore.leaderboard.weighted);
    return this.scoreOf(deployment, snapshot) + delta;
  }

  /**
   * Every score term of a deployment, for route explanations and /stats. `isProbe`: as `scoreOf` ranks a recovery
   * probe (failures ignored), so that the terms add up to the score the probe was ranked with.
   */
  explain(deployment: Deployment, snapshot: ScoringSnapshot, isProbe = false): ScoreBreakdown | undefined {
    const staticScore = snapshot.staticScores[deployment.index];
    if (staticScore === undefined) return undefined;
    const health = this.#health.get(deployment.key)?.snapshot(this.#failureMemoryMs) ?? { samples: 0 };
    return explainScore(staticScore, isProbe ? withoutFailures(health) : health, snapshot.scoring.weights);
  }

  /** Forgets a deployment's health (a reload pointed it at another upstream or key). */
  forget(deploymentKey: string): void {
    this.#health.delete(deploymentKey);
  }

  /**
   * Feeds the health term: successes and real failures (not rate limits, which cooldowns handle). `sentAtMs`: when
   * the attempt was sent (HealthTracker.record: a success sent before the latest failure forgets none).
   */
  recordHealth(deploymentKey: string, isSuccess: boolean, latencyMs: number, sentAtMs?: number): void {
    let tracker = this.#health.get(deploymentKey);
    if (tracker === undefined) {
      const halfLifeMs = this.#halfLifeMs;
      tracker = new HealthTracker(this.#clock, halfLifeMs === undefined ? {} : { halfLifeMs });
      this.#health.set(deploymentKey, tracker);
    }
    tracker.record(isSuccess, latencyMs, sentAtMs);
  }
}

function withoutFailures(health: HealthSnapshot): HealthSnapshot {
  return health.successEwma === undefined ? health : { ...health, successEwma: 1 };
}
