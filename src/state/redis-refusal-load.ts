// A load of the lessons Redis stores (RefusalSharing.load: at start, when Redis or the subscription is back): adopts
// every stored lesson that still holds and, when replacing, drops this replica's lessons that are no longer stored.
// Apart from the class that shares the lessons: only the race below ties it to that class's pending writes, and it
// asks about them through `isWriting`.
import type { Clock } from "../clock.ts";
import type { FeatureRefusal, RefusedFeatures } from "../limits/refused-features.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { deploymentKeyOf, refusedFeaturesStart } from "./redis-keys.ts";
import type { SharedKeys } from "./redis-shared-keys.ts";
import { parseStoredRefusal } from "./refusal-fact-shapes.ts";

/** Deployments' hashes read at once while loading (HGETALL each: on a Cluster they live in different slots). */
const READ_BATCH = 500;

/** What a load compares what is stored against, taken before its walk (RefusalSharing.beginLoad). */
export interface RefusalsLoadStart {
  /** Every lesson kept then (the objects themselves: `adoptUnstored` drops one only if it is still the one kept). */
  readonly known: readonly (readonly [deploymentKey: string, refusal: FeatureRefusal])[];
  /** The deployments whose write was under way then. */
  readonly writing: ReadonlySet<string>;
}

/** What a load reads and adopts into (RefusalSharingOptions holds it all). */
export interface RefusalsLoadTarget {
  readonly redis: SharedStateRedis;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly refusedFeatures: RefusedFeatures;
}

/**
 * Adopts every stored lesson that still holds, and (`isReplacing`) drops this replica's lessons that are not stored
 * (cleared, forgotten or reset by another replica while this one's subscription was away: it never heard it); returns
 * how many it adopted. On a Cluster with a master down, it adopts what the others hold, drops nothing, then throws
 * that master's error.
 *
 * The race: the walk that found `keys` runs while lessons are learned, cleared and heard. What is dropped is only
 * what the book kept at `began` (taken before the walk), is still the very lesson kept now (not learned or heard
 * again meanwhile: that one is newer than what the walk saw), and was not being written: no write of its deployment
 * under way at `began` (sent before the walk, perhaps stored after it passed the key) nor now, nor waiting to be
 * written after a failed write (`isWriting`, asked once the walk is done). A lesson learned since `began` is a new
 * object, so it stays whatever the walk found.
 */
export async function loadStoredRefusals(
  target: RefusalsLoadTarget,
  keys: SharedKeys,
  began: RefusalsLoadStart,
  isReplacing: boolean,
  isWriting: (deploymentKey: string) => boolean,
): Promise<number> {
  const { redis, keyPrefix, clock, refusedFeatures } = target;
  const stored = new Set<string>();
  const start = refusedFeaturesStart(keyPrefix);
  let loaded = 0;
  for (let first = 0; first < keys.refusedFeatures.length; first += READ_BATCH) {
    const batch = keys.refusedFeatures.slice(first, first + READ_BATCH);
    const hashes = await Promise.all(batch.map((key) => redis.hgetall(key)));
    batch.forEach((key, index) => {
      const deploymentKey = deploymentKeyOf(key.slice(start.length));
      if (deploymentKey === undefined) return;
      for (const text of Object.values(hashes[index] ?? {})) {
        const refusal = parseStoredRefusal(text);
        if (refusal === undefined || refusal.untilMs <= clock.now()) continue;
        stored.add(lessonId(deploymentKey, refusal.feature));
        refusedFeatures.adopt(deploymentKey, refusal, clock.now());
        loaded++;
      }
    });
  }
  if (keys.failure !== undefined) throw keys.failure.error;
  if (!isReplacing) return loaded;
  for (const [deploymentKey, refusal] of began.known) {
    if (stored.has(lessonId(deploymentKey, refusal.feature))) continue;
    if (began.writing.has(deploymentKey) || isWriting(deploymentKey)) continue;
    refusedFeatures.adoptUnstored(deploymentKey, refusal);
  }
  return loaded;
}

function lessonId(deploymentKey: string, feature: string): string {
  return `${deploymentKey}\n${feature}`;
}
