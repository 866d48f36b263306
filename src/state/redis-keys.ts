// Key layout of the Redis-shared state (documented in docs/limits.md). Every key starts with the configured
// `state.redis_key_prefix`, so several gateways (or environments) can share one Redis.

/** Keys of one budget scope. Day and month counters are keyed by their window's start, so they never need a reset. */
export interface ScopeKeys {
  readonly log: string;
  readonly logTokens: string;
  readonly windows: string;
  readonly day: string;
  readonly month: string;
  readonly leases: string;
  readonly learned: string;
}

export function budgetKeyBase(prefix: string, scopeId: string): string {
  return `${prefix}budget:${scopeId}`;
}

/**
 * `tokenWindows` names the scope's sliding token windows (e.g. "60000-3600000"): the running sums live under a
 * key per set of windows, so a config change that adds or drops one starts from sums rebuilt from the log rather
 * than from stale ones.
 */
export function scopeKeys(
  prefix: string,
  scopeId: string,
  at: { readonly dayStartMs: number; readonly monthStartMs: number; readonly tokenWindows: string },
): ScopeKeys {
  const base = budgetKeyBase(prefix, scopeId);
  return {
    log: `${base}:log`,
    logTokens: `${base}:log-tokens`,
    windows: `${base}:windows:${at.tokenWindows}`,
    day: `${base}:day:${at.dayStartMs}`,
    month: `${base}:month:${at.monthStartMs}`,
    leases: leasesKey(prefix, scopeId),
    learned: learnedKey(prefix, scopeId),
  };
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

/** A SCAN MATCH pattern for every key starting with `start` (glob characters in the prefix escaped). */
export function keysStartingWith(start: string): string {
  return `${start.replace(/[*?[\]\\]/g, (character) => `\\${character}`)}*`;
}
