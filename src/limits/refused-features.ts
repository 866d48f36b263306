// What each deployment refused as not supported (`tools`, `images`, `json_schema`, a parameter such as `seed`),
// learned from `unsupported` refusals (upstream/refused-feature.ts) and read by the router, which ranks such a
// candidate last for a request carrying that feature (docs/routing.md "Learned refusals"). Pure: times come in as
// arguments. Only the recorder (pipeline/recorder.ts) teaches it.
//
// Kept where the other learned facts are: the embedded store writes it to its file with each flush (`takeDirty`,
// `export`, `import`), and with Redis every lesson, and every success that clears one, is shared with the other
// replicas as it happens (state/redis-refused-features.ts, told through `onChange`; what they share comes back
// through `adopt` and `adoptAccepted`, which tell no one). A capability a provider adds later is picked up when the
// lesson ends (`cooldowns.unsupported_feature_ms`), when the candidate serves a request with that feature anyway, on
// `POST /admin/cooldowns/reset`, or when a reload points the name at another upstream.
//
// It also keeps, under a provider's key (`provider:NAME`, which no deployment key can be: deployment keys hold a
// `/`, provider names cannot), the endpoints the provider has no route for (unserved-endpoints.ts): the same
// lifetime per lesson, state file, Redis sharing, reset and forgetting serve them without a second book.

import { isRecord } from "../is-record.ts";
import { DirtyTracked } from "./dirty-tracked.ts";

/** One lesson: the feature a deployment refused, until when it counts, and the refusal's words. */
export interface FeatureRefusal {
  readonly feature: string;
  readonly reason: string;
  readonly atMs: number;
  readonly untilMs: number;
  /**
   * A refusal of the feature for its size (`stop` of more than 4 entries): it holds only for requests carrying at least
   * this many entries of it. Absent: whatever their size.
   */
  readonly minEntries?: number;
}

/**
 * A lesson as the request record and route explanations name it: the feature, its size when the lesson is about one
 * (`stop (5 entries or more)`: a smaller `stop` is not refused), then the refusal's words.
 */
export function describeRefusal(refusal: FeatureRefusal, reason = refusal.reason): string {
  const size = refusal.minEntries === undefined ? "" : ` (${refusal.minEntries} entries or more)`;
  return `${refusal.feature}${size}: ${reason}`;
}

/** How many entries each array-valued feature of a request holds (router/request-features.ts featureSizesOf). */
export type FeatureSizes = ReadonlyMap<string, number>;

/** The entries of `feature` in a request: its array's length, 1 for any other value (a `stop` string). */
function entriesOf(sizes: FeatureSizes | undefined, feature: string): number {
  return sizes?.get(feature) ?? 1;
}

/**
 * Lessons kept per deployment. A feature is any body key the request carried and the upstream named, so a client
 * sending made-up keys to a strict upstream could add lessons without end: past this many the oldest goes.
 */
export const MAX_REFUSALS_PER_DEPLOYMENT = 32;

/**
 * Lessons the gateway names itself (the learned context window, learned-context.ts), never a body key a client sent:
 * a fixed few per deployment, so they are kept apart from MAX_REFUSALS_PER_DEPLOYMENT, which bounds the lessons about
 * request features. Before 2026-12-07 they counted toward it: 32 feature lessons pushed out a window learned first, and
 * a kept window pushed out a real feature's lesson. The prefix is router/request-features.ts' GATEWAY_PREFIX, which no
 * request feature carries. The Redis script keeps the same rule (state/redis-lua-writes.ts SHARE_REFUSAL_LUA).
 */
export const GATEWAY_LESSON_PREFIX = "x_gateway_";

export function isGatewayLesson(feature: string): boolean {
  return feature.startsWith(GATEWAY_LESSON_PREFIX);
}

/**
 * What changed in the book by this process's own doing, for a shared store to pass on: a lesson learned, features a
 * success showed the deployment takes, a deployment forgotten by a reload, the admin reset.
 */
export type RefusalChange =
  | { readonly kind: "learned"; readonly deploymentKey: string; readonly refusal: FeatureRefusal }
  | { readonly kind: "accepted"; readonly deploymentKey: string; readonly features: readonly string[] }
  | { readonly kind: "forgotten"; readonly deploymentKey: string }
  | { readonly kind: "reset" };

/** The book as the embedded store keeps it: deployment key -> its lessons. */
export type PersistedRefusals = Record<string, readonly FeatureRefusal[]>;

export class RefusedFeatures extends DirtyTracked {
  readonly #byDeployment = new Map<string, Map<string, FeatureRefusal>>();
  #lifetimeMs: number;
  /** Told of every change made here (the Redis backend shares it). */
  #onChange: ((change: RefusalChange) => void) | undefined;

  constructor(lifetimeMs: number) {
    super();
    this.#lifetimeMs = lifetimeMs;
  }

  /** `cooldowns.unsupported_feature_ms`, at start and on every reload (lessons already learned keep their end). */
  setLifetime(lifetimeMs: number): void {
    this.#lifetimeMs = lifetimeMs;
  }

  /** Calls `listener` with each change this process makes (one listener: the state backend). */
  onChange(listener: (change: RefusalChange) => void): void {
    this.#onChange = listener;
  }

  /**
   * `lifetimeMs`: the lesson's own, when it is not a feature's (a provider's unserved endpoint, unserved-endpoints.ts).
   * `minEntries`: a refusal for its size (FeatureRefusal.minEntries); a sized lesson that still holds and starts lower
   * keeps its start (both sizes were refused).
   */
  learn(
    deploymentKey: string,
    feature: string,
    reason: string,
    nowMs: number,
    lifetimeMs = this.#lifetimeMs,
    minEntries?: number,
  ): void {
    const known = this.#byDeployment.get(deploymentKey)?.get(feature);
    const start =
      minEntries !== undefined && known?.minEntries !== undefined && known.untilMs > nowMs
        ? Math.min(known.minEntries, minEntries)
        : minEntries;
    const refusal: FeatureRefusal = {
      feature,
      reason,
      atMs: nowMs,
      untilMs: nowMs + lifetimeMs,
      ...(start === undefined ? {} : { minEntries: start }),
    };
    this.#keep(deploymentKey, refusal, nowMs);
    this.markDirty();
    this.#onChange?.({ kind: "learned", deploymentKey, refusal });
  }

  /**
   * A lesson another replica learned, or a store kept: kept with its own end, unless this process knows a lesson of
   * the same feature that ends later. Two sized lessons that both hold keep the lower start, as `learn` does (both
   * sizes were refused), with the later end: taken whole, another replica's lesson learned from a larger request (8
   * entries sent, no limit stated) replaced this one's start of 5, and requests of 5 to 7 were sent to be refused
   * again. Tells no one: it is already where it came from.
   */
  adopt(deploymentKey: string, refusal: FeatureRefusal, nowMs: number): void {
    if (refusal.untilMs <= nowMs) return;
    const known = this.#byDeployment.get(deploymentKey)?.get(refusal.feature);
    const isKnownHolding = known !== undefined && known.untilMs > nowMs;
    const later = isKnownHolding && known.untilMs >= refusal.untilMs ? known : refusal;
    const start =
      isKnownHolding && known.minEntries !== undefined && refusal.minEntries !== undefined
        ? Math.min(known.minEntries, refusal.minEntries)
        : undefined;
    if (later === known && (start === undefined || start === known.minEntries)) return;
    const kept = start === undefined || start === later.minEntries ? later : { ...later, minEntries: start };
    this.#keep(deploymentKey, kept, nowMs);
  }

  /** Stores a lesson, dropping the deployment's ended ones, and its oldest feature lesson past MAX_REFUSALS_PER_DEPLOYMENT. */
  #keep(deploymentKey: string, refusal: FeatureRefusal, nowMs: number): void {
    let refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) {
      refusals = new Map();
      this.#byDeployment.set(deploymentKey, refusals);
    }
    for (const [known, kept] of refusals) if (kept.untilMs <= nowMs) refusals.delete(known);
    refusals.delete(refusal.feature);
    refusals.set(refusal.feature, refusal);
    // By when each was learned, not by the map's order: an adopted lesson may be older than those kept here.
    const features = [...refusals.values()].filter((kept) => !isGatewayLesson(kept.feature));
    features.sort((a, b) => a.atMs - b.atMs);
    for (const oldest of features.slice(0, Math.max(0, features.length - MAX_REFUSALS_PER_DEPLOYMENT))) {
      refusals.delete(oldest.feature);
    }
  }

  /**
   * The deployment's lesson about one of `features`, if it holds at `nowMs` (the first in the request's order).
   * Side-effect free, so that the router can ask while it plans: an ended lesson is dropped by the deployment's next
   * `learn` (or `unlearn`, `forget`); until then it is only not read.
   */
  refusalOf(
    deploymentKey: string,
    features: readonly string[],
    nowMs: number,
    /** The request's sizes: a lesson about a size holds for a request at least that large. Absent: every lesson holds. */
    sizes?: FeatureSizes,
  ): FeatureRefusal | undefined {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return undefined;
    for (const feature of features) {
      const refusal = refusals.get(feature);
      if (refusal === undefined || refusal.untilMs <= nowMs) continue;
      if (sizes === undefined || refusal.minEntries === undefined || entriesOf(sizes, feature) >= refusal.minEntries) {
        return refusal;
      }
    }
    return undefined;
  }

  /** Whether any lesson (perhaps ended, not yet dropped) is kept for the deployment: cheap, asked on every success. */
  knows(deploymentKey: string): boolean {
    return this.#byDeployment.has(deploymentKey);
  }

  /**
   * The deployment answered a request carrying these features, sent at `sentAtMs`: whatever it refused of them before
   * then, it takes now. A refusal learned after the request was sent (the two in flight at once) is newer evidence
   * and stays: cleared by the slower success, the next request with the feature was sent there to be refused again.
   */
  unlearn(
    deploymentKey: string,
    features: readonly string[],
    sentAtMs = Number.POSITIVE_INFINITY,
    /** The request's sizes: a lesson about a size ends only when the request carried at least that many entries. */
    sizes?: FeatureSizes,
  ): void {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return;
    const answered = features.filter((feature) => {
      const refusal = refusals.get(feature);
      if (refusal === undefined || refusal.atMs > sentAtMs) return false;
      // A 1-entry `stop` answered says nothing of the 5 it refused.
      return refusal.minEntries === undefined || entriesOf(sizes, feature) >= refusal.minEntries;
    });
    const removed = this.#remove(deploymentKey, answered);
    if (removed.length === 0) return;
    this.markDirty();
    this.#onChange?.({ kind: "accepted", deploymentKey, features: removed });
  }

  /** Another replica's deployment answered a request carrying these features (`unlearn` there). Tells no one. */
  adoptAccepted(deploymentKey: string, features: readonly string[]): void {
    this.#remove(deploymentKey, features);
  }

  /**
   * Another replica forgot the deployment (a reload pointed its name elsewhere there) and deleted what was stored of
   * it: this copy goes too, so that no replica keeps ranking it by the old upstream's refusals. Tells no one.
   */
  adoptForgotten(deploymentKey: string): void {
    this.#byDeployment.delete(deploymentKey);
  }

  /**
   * Every lesson kept, as it is now (the objects themselves: `adoptUnstored` removes one only if it is still the one
   * kept). For a shared store's reload, which compares them with what is stored. Side-effect free.
   */
  lessons(): [deploymentKey: string, refusal: FeatureRefusal][] {
    const lessons: [string, FeatureRefusal][] = [];
    for (const [deploymentKey, refusals] of this.#byDeployment) {
      for (const refusal of refusals.values()) lessons.push([deploymentKey, refusal]);
    }
    return lessons;
  }

  /**
   * A reload of the shared lessons no longer found this one stored (cleared or forgotten by another replica while
   * this one did not hear it): removed, unless it is no longer the one kept (learned or heard again since `lessons`
   * was read, so newer than what the reload saw). Tells no one.
   */
  adoptUnstored(deploymentKey: string, refusal: FeatureRefusal): boolean {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals?.get(refusal.feature) !== refusal) return false;
    this.#remove(deploymentKey, [refusal.feature]);
    return true;
  }

  /** Removes the deployment's lessons about `features`; returns the features it had lessons about. */
  #remove(deploymentKey: string, features: readonly string[]): string[] {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return [];
    const removed = features.filter((feature) => refusals.delete(feature));
    if (refusals.size === 0) this.#byDeployment.delete(deploymentKey);
    return removed;
  }

  /** Every lesson of a deployment whose name a reload pointed at another upstream. */
  forget(deploymentKey: string): void {
    this.#byDeployment.delete(deploymentKey);
    this.markDirty();
    this.#onChange?.({ kind: "forgotten", deploymentKey });
  }

  /** `POST /admin/cooldowns/reset` (here or, with Redis, on another replica). */
  reset(): void {
    this.#byDeployment.clear();
    this.markDirty();
    this.#onChange?.({ kind: "reset" });
  }

  /** The deployment's lessons that hold at `nowMs`, oldest first (for /stats). Side-effect free. */
  refusalsOf(deploymentKey: string, nowMs: number): readonly FeatureRefusal[] {
    const refusals = this.#byDeployment.get(deploymentKey);
    if (refusals === undefined) return [];
    return [...refusals.values()].filter((refusal) => refusal.untilMs > nowMs).sort((a, b) => a.atMs - b.atMs);
  }

  /** Every lesson that holds at `nowMs`, by deployment (for the embedded store). */
  export(nowMs: number): PersistedRefusals {
    const persisted: Record<string, readonly FeatureRefusal[]> = {};
    for (const deploymentKey of this.#byDeployment.keys()) {
      const refusals = this.refusalsOf(deploymentKey, nowMs);
      if (refusals.length > 0) persisted[deploymentKey] = refusals;
    }
    return persisted;
  }

  /**
   * What a previous run kept (`export`): the lessons that still hold at `nowMs`, each with its own end; what is not a
   * lesson is skipped. Returns how many were taken.
   */
  import(persisted: unknown, nowMs: number): number {
    if (!isRecord(persisted)) return 0;
    let imported = 0;
    for (const [deploymentKey, refusals] of Object.entries(persisted)) {
      if (deploymentKey === "" || !Array.isArray(refusals)) continue;
      for (const value of refusals) {
        const refusal = featureRefusalOf(value);
        if (refusal === undefined || refusal.untilMs <= nowMs) continue;
        this.adopt(deploymentKey, refusal, nowMs);
        imported++;
      }
    }
    return imported;
  }
}

/** A lesson as it is stored or travels (`{feature, reason, atMs, untilMs, minEntries?}`); undefined when it is not one. */
export function featureRefusalOf(value: unknown): FeatureRefusal | undefined {
  if (!isRecord(value)) return undefined;
  const { feature, reason, atMs, untilMs, minEntries } = value;
  if (typeof feature !== "string" || feature === "" || typeof reason !== "string") return undefined;
  if (typeof atMs !== "number" || !Number.isFinite(atMs)) return undefined;
  if (typeof untilMs !== "number" || !Number.isFinite(untilMs)) return undefined;
  const isSized = typeof minEntries === "number" && Number.isInteger(minEntries) && minEntries > 0;
  return { feature, reason, atMs, untilMs, ...(isSized ? { minEntries } : {}) };
}
