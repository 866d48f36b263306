// Key layout of the Redis-shared state (documented in docs/limits.md). Every key starts with the configured
// `state.redis_key_prefix`, so several gateways (or environments) can share one Redis.

/**
 * ms a budget key outlives the window it counts (the reserve and retime scripts set it), so that a late reconcile
 * still finds it.
 */
export const BUDGET_KEEP_MS = 60_000;

/** The sliding windows the reserve script keeps, in ms, in the order of their keys. */
export const SLIDING_WINDOWS_MS = [1_000, 60_000, 3_600_000] as const;

/**
 * Keys of one budget scope. Day and month counters are keyed by their window's start, so they never need a reset.
 * Each sliding window is a sorted set of runs (member: run id, score: when its last charge was made) and a hash
 * holding each run ("firstMs,lastMs,requests,tokens") and the window's totals (fields `r` and `t`). Fixed windows'
 * counters and buckets' debts share one hash per scope (`counters`), one field each.
 */
export interface ScopeKeys {
  /** Per SLIDING_WINDOWS_MS entry: [runs sorted set, runs hash]. */
  readonly sliding: readonly (readonly [string, string])[];
  readonly day: string;
  readonly month: string;
  readonly leases: string;
  readonly learned: string;
  /** Fixed windows (`f:<windowMs>@<offsetMs>` -> "startMs,requests,tokens") and buckets (`b:<unit>:<windowMs>:<limit>` -> "used,atMs"). */
  readonly counters: string;
}

/**
 * Every key of a scope carries a Redis Cluster hash tag naming its provider (`{groq}`), so the provider pool and
 * its deployments, which one reserve script charges together, live in one slot.
 */
export function budgetKeyBase(prefix: string, scopeId: string): string {
  return `${prefix}budget:{${providerTag(scopeId)}}:${scopeId}`;
}

/**
 * A once-write's marker (redis-once-writes.ts), in the scope's slot but outside `budget:`: an admin reset deletes the
 * budget keys, and a marker deleted with them let a batch that had run (its reply lost) run again on the counters
 * charged since the reset, when its resend landed before the reset's message (redis-write-batches.test.ts).
 */
export function onceMarkerKey(prefix: string, scopeId: string, instanceId: string, id: number): string {
  return `${prefix}once:{${providerTag(scopeId)}}:${scopeId}:${instanceId}:${id}`;
}

/** Markers kept in a process's applied set per provider slot (redis-lua-writes.ts FIRST_TIME_FUNCTION), newest first. */
export const ONCE_APPLIED_MAX = 128;
/**
 * ms the applied set lives after its last batch: as long as a batch kept for a Cluster master's return may wait and
 * still be applied once (a day's outage). At most ONCE_APPLIED_MAX short members per provider and process.
 */
export const ONCE_APPLIED_KEEP_MS = 86_400_000;

/**
 * The batches a process applied on a provider's slot (`P once:{T}:applied:<process>`; a scope id always holds a `:`
 * after its kind, so no marker is named so).
 */
export function onceAppliedKey(prefix: string, scopeId: string, instanceId: string): string {
  return `${prefix}once:{${providerTag(scopeId)}}:applied:${instanceId}`;
}

/**
 * `provider:groq`, `deployment:groq/llama` and the audio-seconds scopes `provider:groq#audio`,
 * `deployment:groq/whisper#audio` -> `groq` (braces replaced: they would end the tag early). The pool's `#audio`
 * scope is cut at the `#` (a provider's name never holds one): tagged `groq#audio`, it hashed to another slot than
 * the model's `#audio` scope, and the one script that reserves both failed with CROSSSLOT on a Redis Cluster (each
 * process then counted the seconds alone).
 */
export function providerTag(scopeId: string): string {
  const colon = scopeId.indexOf(":");
  const rest = colon < 0 ? scopeId : scopeId.slice(colon + 1);
  const end = rest.search(/[/#]/);
  const provider = end < 0 ? rest : rest.slice(0, end);
  return provider.replace(/[{}]/g, "_") || "_";
}

export function scopeKeys(
  prefix: string,
  scopeId: string,
  at: { readonly dayStartMs: number; readonly monthStartMs: number },
): ScopeKeys {
  const base = budgetKeyBase(prefix, scopeId);
  return {
    sliding: SLIDING_WINDOWS_MS.map((windowMs) => [`${base}:win:${windowMs}`, `${base}:win:${windowMs}:runs`] as const),
    day: `${base}:day:${at.dayStartMs}`,
    month: `${base}:month:${at.monthStartMs}`,
    leases: leasesKey(prefix, scopeId),
    learned: learnedKey(prefix, scopeId),
    counters: `${base}:counters`,
  };
}

/**
 * The key a down Cluster master's probe asks EXISTS of (never written): `{tag}`, so the slot of `tag`, whether it is a
 * provider's tag or what the cluster hashes of a key without one (redis-slot-groups.ts). A tag holding a `}` is such
 * a whole key (a hash tag's text never holds one, a provider's tag has its braces replaced): `{tag}` would end at that
 * `}`, in another slot, so the key itself is asked (EXISTS only reads it).
 */
export function probeKey(prefix: string, tag: string): string {
  return tag.includes("}") ? tag : `${prefix}probe:{${tag}}`;
}

/**
 * A named client's embeddings batches under way (redis-chunked-batches.ts): a sorted set of batch ids scored by their
 * deadlines, and `:rests`, a hash of what each has still to charge. Tagged as the client's budget keys (`{NAME}`), not
 * under `budget:` (an admin reset of the counters leaves the batches under way; each lapses at its deadline).
 */
export function chunkedBatchesKeys(prefix: string, scopeId: string): readonly [string, string] {
  const key = `${prefix}chunked-batches:{${providerTag(scopeId)}}:${scopeId}`;
  return [key, `${key}:rests`];
}

export function leasesKey(prefix: string, scopeId: string): string {
  return `${budgetKeyBase(prefix, scopeId)}:leases`;
}

export function learnedKey(prefix: string, scopeId: string): string {
  return `${budgetKeyBase(prefix, scopeId)}:learned`;
}

export function cooldownKey(prefix: string, scope: "deployment" | "provider", key: string): string {
  return `${prefix}cooldown:${scope}:${key}`;
}

export function cooldownChannel(prefix: string): string {
  return `${prefix}cooldowns`;
}

/**
 * A limit on requests in flight the provider stated for a scope (redis-learned-facts.ts), beside the scope's budget
 * keys (same hash tag; an admin reset of the budgets deletes it with them).
 */
export function learnedConcurrencyKey(prefix: string, scopeId: string): string {
  return `${budgetKeyBase(prefix, scopeId)}:learned-concurrency`;
}

/**
 * A rate limit the provider stated for a scope (redis-learned-facts.ts), one key per unit and window (`requests`,
 * `minute`), beside the scope's budget keys (same hash tag; an admin reset of the budgets deletes it with them).
 */
export function learnedRateKey(prefix: string, scopeId: string, unit: string, window: string): string {
  return `${budgetKeyBase(prefix, scopeId)}:learned-rate:${unit}:${window}`;
}

/**
 * A scope whose stated limits a reload forgot (redis-learned-facts.ts `forget`): `{"scopeId","forgetId"}`, kept as
 * long as a stated limit is, so that a replica whose subscription was away when the forget was published learns of
 * it at its next load. Beside the scope's budget keys (same hash tag; an admin reset deletes it with them).
 */
export function forgottenLimitsKey(prefix: string, scopeId: string): string {
  return `${budgetKeyBase(prefix, scopeId)}:forgotten-limits`;
}

/**
 * A deployment whose context-length refusal showed that prompt and output share one window (redis-learned-facts.ts),
 * hash-tagged with its provider as the budget keys are.
 */
export function sharedWindowKey(prefix: string, deploymentKey: string): string {
  return `${sharedWindowStart(prefix)}{${providerTag(`deployment:${deploymentKey}`)}}:${deploymentKey}`;
}

/** Every shared-window key starts with this. */
export function sharedWindowStart(prefix: string): string {
  return `${prefix}shared-window:`;
}

/**
 * The features a deployment refused (redis-refused-features.ts): one hash per deployment, feature -> its lesson,
 * hash-tagged with its provider as the budget keys are, expiring when its latest lesson ends.
 */
export function refusedFeaturesKey(prefix: string, deploymentKey: string): string {
  return `${refusedFeaturesStart(prefix)}{${providerTag(`deployment:${deploymentKey}`)}}:${deploymentKey}`;
}

/** Every refused-features key starts with this. */
export function refusedFeaturesStart(prefix: string): string {
  return `${prefix}refused-features:`;
}

/** What a deployment forget marker (redis-deployment-forgets.ts) is about. */
export type ForgottenLessons = "refusals" | "calibration";

/**
 * A deployment whose refused features or prompt calibration a reload forgot (redis-deployment-forgets.ts): its
 * forget's id, hash-tagged with its provider as the refused features' hash is (the forget's script sets the one and
 * deletes the other in one slot).
 */
export function deploymentForgetKey(prefix: string, lessons: ForgottenLessons, deploymentKey: string): string {
  return `${deploymentForgetsStart(prefix)}${lessons}:{${providerTag(`deployment:${deploymentKey}`)}}:${deploymentKey}`;
}

/** Every deployment forget marker starts with this. */
export function deploymentForgetsStart(prefix: string): string {
  return `${prefix}forgotten-deployment:`;
}

/**
 * `{groq}:groq/llama` (a deployment's key after its start) -> `groq/llama`: the tag has no brace of its own
 * (providerTag).
 */
export function deploymentKeyOf(rest: string): string | undefined {
  const end = rest.indexOf("}:");
  if (!rest.startsWith("{") || end < 0) return undefined;
  const deploymentKey = rest.slice(end + 2);
  return deploymentKey === "" ? undefined : deploymentKey;
}

/** The prompt calibrations' hash (redis-calibration.ts). */
export function calibrationKey(prefix: string): string {
  return `${prefix}prompt-calibration`;
}

/**
 * The id of the latest admin reset (redis-cooldowns.ts `resetShared`): a replica whose subscription was away when it
 * was published applies it at its next load.
 */
export function resetMarkerKey(prefix: string): string {
  return `${prefix}reset-id`;
}

/** A value set once per Redis data set (redis-data-epoch.ts): another one means Redis lost what it held. */
export function dataEpochKey(prefix: string): string {
  return `${prefix}data-epoch`;
}

/** A SCAN MATCH pattern for every key starting with `start` (glob characters in the prefix escaped). */
export function keysStartingWith(start: string): string {
  return `${start.replace(/[*?[\]\\]/g, (character) => `\\${character}`)}*`;
}
