// The keys a load of what replicas share reads (cooldowns, stated limits and their scopes' forget markers, shared
// windows, refused features, deployments' forget markers), found by one SCAN walk per load (one per master on a
// Cluster) and sorted by kind here. A SCAN's MATCH filters what one walk of the whole key space returns: it does not
// spare the walk, so a walk per kind (five per load, as before) cost five times the round trips and server time on a
// Redis that holds much else, at every start, reconnect and resubscription of every replica. The walk's pattern keeps
// only the kinds' first letters; the budget keys come back whole (a dozen per scope: stated limits and markers are
// picked from them here), which is what one walk costs instead of five.
import { type RedisConnection, scanKeys } from "./redis-client.ts";
import { deploymentForgetsStart, refusedFeaturesStart, sharedWindowStart } from "./redis-keys.ts";

/** The keys of one load, by kind. */
export interface SharedKeys {
  readonly cooldowns: readonly string[];
  /** Every scope's forget marker (redis-keys.ts `forgottenLimitsKey`). */
  readonly scopeForgets: readonly string[];
  /** Every scope's stated concurrency and stated rate limits. */
  readonly statedLimits: readonly string[];
  readonly sharedWindows: readonly string[];
  readonly refusedFeatures: readonly string[];
  /** Every deployment's forget marker, of either kind (redis-deployment-forgets.ts). */
  readonly deploymentForgets: readonly string[];
  /**
   * The first error of a node whose SCAN failed (a Cluster master that just died, still in the client's node list):
   * its keys are missing, so a load adopts what the others hold and drops nothing, then throws it.
   */
  readonly failure: { readonly error: unknown } | undefined;
}

/** The ends of a budget key's name that make it a forget marker or a stated limit (redis-keys.ts). */
const SCOPE_FORGET_SUFFIX = ":forgotten-limits";
const STATED_LIMIT_SUFFIX = /:(?:learned-concurrency|learned-rate:[^:]+:[^:]+)$/;

/** Walks the key space once (every master of a Cluster) and sorts what a load reads by kind. Never throws. */
export async function walkSharedKeys(redis: RedisConnection, prefix: string): Promise<SharedKeys> {
  const starts = {
    cooldowns: `${prefix}cooldown:`,
    budget: `${prefix}budget:`,
    sharedWindows: sharedWindowStart(prefix),
    refusedFeatures: refusedFeaturesStart(prefix),
    deploymentForgets: deploymentForgetsStart(prefix),
  };
  const keys = {
    cooldowns: [] as string[],
    scopeForgets: [] as string[],
    statedLimits: [] as string[],
    sharedWindows: [] as string[],
    refusedFeatures: [] as string[],
    deploymentForgets: [] as string[],
  };
  let failure: { readonly error: unknown } | undefined;
  const pattern = sharedKeysPattern(prefix, Object.values(starts));
  const onNodeFailed = (error: unknown): void => {
    failure ??= { error };
  };
  for await (const batch of scanKeys(redis, pattern, onNodeFailed)) {
    for (const key of batch) {
      if (key.startsWith(starts.budget)) {
        if (key.endsWith(SCOPE_FORGET_SUFFIX)) keys.scopeForgets.push(key);
        else if (STATED_LIMIT_SUFFIX.test(key)) keys.statedLimits.push(key);
      } else if (key.startsWith(starts.cooldowns)) keys.cooldowns.push(key);
      else if (key.startsWith(starts.sharedWindows)) keys.sharedWindows.push(key);
      else if (key.startsWith(starts.refusedFeatures)) keys.refusedFeatures.push(key);
      else if (key.startsWith(starts.deploymentForgets)) keys.deploymentForgets.push(key);
    }
  }
  return { ...keys, failure };
}

/**
 * `P[bcfrs]*`: the prefix (its glob characters escaped), then any of the kinds' first letters, so that the rows of
 * the request log, kept responses and batches (`P{...}`) and the single keys (`P data-epoch`, ...) stay in Redis.
 */
function sharedKeysPattern(prefix: string, starts: readonly string[]): string {
  const firstLetters = new Set(starts.map((start) => start.charAt(prefix.length)));
  const escaped = prefix.replace(/[*?[\]\\]/g, (character) => `\\${character}`);
  return `${escaped}[${[...firstLetters].sort().join("")}]*`;
}
