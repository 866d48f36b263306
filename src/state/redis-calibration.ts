// Prompt calibrations (limits/prompt-calibration.ts) kept in Redis, as the embedded store keeps them in its file:
// one hash, deployment key -> `{"estimated":..,"reported":..}`. A process loads it when it starts, so a new or
// restarted gateway scales estimates from its first request; every process writes what it learned every
// `flush_interval_ms` (the last writer's evidence wins a field: each is a recent average of the same provider's
// reports) and when it closes. Loss costs little: a process that could not load learns again from its first few
// large prompts.
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
    } catch {
      this.#isPending = true;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
