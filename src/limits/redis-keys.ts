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

export function scopeKeys(prefix: string, scopeId: string, dayStartMs: number, monthStartMs: number): ScopeKeys {
  const base = budgetKeyBase(prefix, scopeId);
  return {
    log: `${base}:log`,
    logTokens: `${base}:log-tokens`,
    windows: `${base}:windows`,
    day: `${base}:day:${dayStartMs}`,
    month: `${base}:month:${monthStartMs}`,
    leases: `${base}:leases`,
    learned: `${base}:learned`,
  };
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
