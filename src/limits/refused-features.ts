// What each deployment refused as not supported (`tools`, `images`, `json_schema`, a parameter such as `seed`),
// learned from `unsupported` refusals (upstream/refused-feature.ts) and read by the router, which ranks such a
// candidate last for a request carrying that feature (docs/routing.md "Learned refusals"). Pure: times come in as
// arguments. Only the recorder (pipeline/recorder.ts) teaches it.
//
// Per process and in memory only, like a learned shared context window (prompt-calibration.ts): relearning costs
// one refused request per process, a wrong lesson only moves a candidate to the end of the line, and a capability a
// provider adds later is picked up when the lesson ends (`cooldowns.unsupported_feature_ms`), when the candidate
// serves a request with that feature anyway, on `POST /admin/cooldowns/reset`, or when a reload points the name at
// another upstream.

/** One lesson: the feature a deployment refused, until when it counts, and the refusal's words. */
export interface FeatureRefusal {
  readonly feature: string;
  readonly reason: string;
  readonly atMs: number;
  readonly untilMs: number;
}

/**
 * Lessons kept per deployment. A feature is any body key the request carried and the upstream named, so a client
 * sending made-up keys to a strict upstream could add lessons without end: past this many the oldest goes.
 */
export const MAX_REFUSALS_PER_DEPLOYMENT = 32;

export class RefusedFeatures {
  readonly #byDeployment = new Map<string, Map<string, FeatureRefusal>>();
  #lifetimeMs: number;

  constructor(lifetimeMs: number) {
    this.#lifetimeMs = lifetimeMs;
  }

  /** `cooldowns.unsupported_feature_ms`, at start and on every reload (lessons already learned keep their end). */
  setLifetime(lifetimeMs: number): void {
    this.#lifetimeMs = lifetimeMs;
  }

  learn(deploymentKey: string, feature: string, reason: string, nowMs: number): void {
    let refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) {
      refusals = new Map();
      this.#byDeployment.set(deploymentKey, refusals);
    }
    for (const [known, refusal] of refusals) if (refusal.untilMs <= nowMs) refusals.delete(known);
    // Re-inserted so that the map's order is the lessons' age: the first one is the one to drop.
    refusals.delete(feature);
    refusals.set(feature, { feature, reason, atMs: nowMs, untilMs: nowMs + this.#lifetimeMs });
    for (const [oldest] of refusals) {
      if (refusals.size <= MAX_REFUSALS_PER_DEPLOYMENT) break;
      refusals.delete(oldest);
    }
  }

  /**
   * The deployment's lesson about one of `features`, if it holds at `nowMs` (the first in the request's order).
   * Side-effect free, so that the router can ask while it plans: an ended lesson is dropped by the deployment's next
   * `learn` (or `unlearn`, `forget`); until then it is only not read.
   */
  refusalOf(deploymentKey: string, features: readonly string[], nowMs: number): FeatureRefusal | undefined {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return undefined;
    for (const feature of features) {
      const refusal = refusals.get(feature);
      if (refusal !== undefined && refusal.untilMs > nowMs) return refusal;
    }
    return undefined;
  }

  /** Whether any lesson (perhaps ended, not yet dropped) is kept for the deployment: cheap, asked on every success. */
  knows(deploymentKey: string): boolean {
    return this.#byDeployment.has(deploymentKey);
  }

  /** The deployment answered a request carrying these features: whatever it refused of them, it takes now. */
  unlearn(deploymentKey: string, features: readonly string[]): void {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return;
    for (const feature of features) refusals.delete(feature);
    if (refusals.size === 0) this.#byDeployment.delete(deploymentKey);
  }

  /** Every lesson of a deployment whose name a reload pointed at another upstream. */
  forget(deploymentKey: string): void {
    this.#byDeployment.delete(deploymentKey);
  }

  /** `POST /admin/cooldowns/reset`. */
  reset(): void {
    this.#byDeployment.clear();
  }

  /** The deployment's lessons that hold at `nowMs`, oldest first (for /stats). Side-effect free. */
  refusalsOf(deploymentKey: string, nowMs: number): readonly FeatureRefusal[] {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return [];
    return [...refusals.values()].filter((refusal) => refusal.untilMs > nowMs);
  }
}
