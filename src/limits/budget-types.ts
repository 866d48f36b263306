// The budget model's shapes: rules, scopes, costs, verdicts, reservations, what /stats shows, and the ledger
// interface both the in-process book (budgets.ts) and the Redis ledger (state/redis-ledger.ts) implement.
import type { DayReset } from "../config/day-reset.ts";
import type { Limits } from "../config/types.ts";
import type { RateLimitUnit, RateLimitWindow } from "./header-dialects.ts";
import type { ReleaseSlot } from "./in-flight-gate.ts";
import type { LearnedRule, RefusalFacts } from "./limit-learning.ts";
import type { LearnedWindow } from "./rate-limit-headers.ts";
import type { WindowAlgorithm } from "./window-counters.ts";

/** The windows that slide (the others are wall-clock day and month counters). */
const SLIDING_WINDOW_MS: Partial<Record<RateLimitWindow, number>> = { second: 1_000, minute: 60_000, hour: 3_600_000 };

export type BudgetUnit = RateLimitUnit;
export type BudgetWindow = RateLimitWindow;

export interface BudgetRule {
  readonly unit: BudgetUnit;
  readonly window: BudgetWindow;
  readonly limit: number;
  /** How the provider counts a second/minute/hour window (default `sliding`); day and month are wall-clock. */
  readonly algorithm?: WindowAlgorithm;
  /** `fixed`: where windows start, ms after the clock's aligned boundary (default 0: on the second/minute/hour). */
  readonly offsetMs?: number;
  /** Set on a limit learned from the provider's answers (not configured): what it was learned from. */
  readonly learnedFrom?: string;
  /**
   * A learned limit inferred from the spacing of this process's own sends (the provider stated none): it is this
   * process's share of what the key accepted, not the key's limit, so a ledger shared by several processes paces
   * only this process by it (redis-ledger.ts); the key's other clients are not in its evidence.
   */
  readonly isOwnEvidence?: true;
  /**
   * For a limit inferred from our own sends: when a 429 last taught or confirmed it. It lapses
   * INFERRED_LIMIT_LIFETIME_MS later (inferred-limits.ts), so that one low reading cannot pace a candidate for good.
   */
  readonly learnedAtMs?: number;
  /**
   * For a limit inferred from our own sends that a later 429 lowered: the limit climbs back, a step at a time,
   * toward the highest one inferred before (limit-recovery.ts, RECOVERY_INTERVAL_MS), so that a transient 429, or another
   * client of the key using part of it for a while, does not pace the candidate low until the limit lapses.
   */
  readonly recovery?: LimitRecovery;
  /**
   * `audio_seconds`: an `ash`/`asd` budget. It lives on an audio-seconds scope (AUDIO_SCOPE_SUFFIX) and counts in
   * the `tokens` unit there, a reservation's tokens being the upload's seconds: every window algorithm and both
   * ledgers (the embedded book, Redis) count it as they count tokens. Only its name and wording differ.
   */
  readonly measure?: "audio_seconds";
}

/**
 * A limit on requests in flight learned from a concurrency refusal (GitHub Models' `UserConcurrentRequests`): the
 * provider refuses a request while that many of the key's requests are running, whatever the rate. Checked with the
 * scope's configured `concurrency` (the lower wins). Kept with the scope's other learned limits (the embedded store's
 * rows); with Redis, one the provider stated is shared with the other processes and enforced fleet-wide by Redis's
 * concurrency leases, while one inferred from this process's own requests in flight paces this process alone
 * (docs/limits.md "Limits learned from 429s").
 */
export interface LearnedConcurrency {
  readonly limit: number;
  readonly evidence: string;
  /** Inferred from our own requests in flight (the refusal stated no number): lapses like an inferred rate. */
  readonly isOwnEvidence?: true;
  readonly learnedAtMs: number;
}

/** How a lowered inferred limit climbs back. */
export interface LimitRecovery {
  /** The highest limit inferred for this window since it was first learned: where the climb stops. */
  readonly ceiling: number;
  /** When the next step up is due. */
  readonly nextStepAtMs: number;
  /** When a 429 last lowered the limit: another lower reading within `intervalMs` of it lowers it no further. */
  readonly loweredAtMs: number;
  /** Between two steps; doubled each time a 429 lowers the limit again while it climbs (to at most 16 times). */
  readonly intervalMs: number;
}

/**
 * The budget scope id prefix of a key's account-wide pool (`provider:groq`): every model of one provider entry's
 * key shares it. The same name labels the pool's cooldown after an account-wide 429 (docs/routing.md "Pools").
 */
export const POOL_SCOPE_PREFIX = "provider:";

/** A budget holder: a provider (account-wide pool) or one provider+model. */
export interface BudgetScope {
  /** `provider:groq` or `deployment:groq/llama-3.3-70b`. */
  readonly id: string;
  readonly rules: readonly BudgetRule[];
  readonly concurrency: number | undefined;
  readonly dayReset: DayReset;
}

export interface BudgetCost {
  /** Estimated tokens charged up front (prompt + reserved output); reconciled with usage later. */
  readonly tokens: number;
  /**
   * Upstream calls the request makes, each counted by the request budgets (rps/rpm/rph/rpd) as the provider counts
   * it: a Llama Guard moderation of N inputs is N chat calls (upstream/moderation-dialect.ts). Default 1.
   */
  readonly requests?: number;
  /**
   * Tokens alone: no request in the request rules and no concurrency slot, checked or held (a named client's chunk of
   * an embeddings batch, pipeline/client-chunk-charges.ts: its request, and its slot, were charged once for the batch).
   */
  readonly isTokensOnly?: true;
}

/**
 * A retry time that never comes: the request is larger than a whole token budget of the scope, so no wait lets it
 * through (a verdict's `retryAtMs` is then Infinity). The plan skips such a candidate for good, the final error is
 * a 413 rather than a 429, and nothing queues or tells a client to come back for it.
 */
export function isNeverFit(retryAtMs: number | undefined): boolean {
  return retryAtMs !== undefined && !Number.isFinite(retryAtMs);
}

/**
 * When a refusal at a concurrency limit says to look again, ms from now: a slot frees when a request in flight ends,
 * which no clock tells. A refusal by a spent budget as well is told that budget's later time instead (scope-check.ts
 * `laterDenial`): coming back sooner would only meet it.
 */
export const CONCURRENCY_RETRY_MS = 100;

/**
 * The wait a client refused for a full slot alone is told (`retry-after`, `retry-after-ms`): a second, not
 * CONCURRENCY_RETRY_MS. An SDK has a few retries (the openai SDK's default: 2), each spent 100 ms apart while the
 * request in flight still held the slot; `retry-after: 1` had them a second apart.
 */
export const SLOT_RETRY_ADVICE_MS = 1_000;

export type BudgetVerdict =
  | { readonly isAllowed: true }
  | {
      readonly isAllowed: false;
      readonly reason: string;
      readonly retryAtMs: number;
      readonly scopeId: string;
      /**
       * A full concurrency slot binds: `retryAtMs` is CONCURRENCY_RETRY_MS from now, when the gateway looks again,
       * not a time the slot frees (client-budget.ts tells a client more than that).
       */
      readonly isSlot?: true;
    };

export interface Reservation {
  readonly id: number;
  readonly scopes: readonly BudgetScope[];
  readonly atMs: number;
  tokens: number;
  /** Requests charged (BudgetCost.requests), less the calls given back as never sent (releaseUnsentCalls); absent: one. */
  requests?: number;
  /** Charged tokens alone (BudgetCost.isTokensOnly): it holds no concurrency slot to free. */
  readonly isTokensOnly?: true;
  isReleased: boolean;
  /**
   * A transcription's reservation of its upload's seconds on the deployment's audio-seconds scopes (`ash`/`asd`),
   * taken with this one and settled with it (pipeline/recorder.ts): its tokens are the seconds.
   */
  audio?: Reservation;
}

export interface WindowUsage {
  readonly unit: BudgetUnit;
  readonly window: BudgetWindow;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetsAtMs: number | undefined;
  /** `config`: declared; `provider`: a "remaining" header; `learned`: a limit inferred from 429s (see evidence). */
  readonly source: "config" | "provider" | "learned";
  /** How the window counts: `sliding`, `fixed`, `bucket` (day and month: `fixed`). */
  readonly algorithm: WindowAlgorithm;
  /** For a learned limit: what it was learned from. */
  readonly evidence?: string;
  /**
   * For a provider's report that stated no limit (only what is left: Azure OpenAI's headers): `limit` is that count,
   * and nothing is known of the window once it resets (the report lapses then).
   */
  readonly isLimitUnknown?: boolean;
  /** For a limit inferred from our own sends: when it lapses unless a 429 confirms it first (inferred-limits.ts). */
  readonly lapsesAtMs?: number;
  /** For an inferred limit a later 429 lowered: the limit it climbs back to, and when its next step is due. */
  readonly recoversTo?: number;
  readonly nextStepAtMs?: number;
}

/**
 * Turns a `limits:` config block into rules. A model's block without `window` counts the way its provider's
 * block (`inherited`) says.
 */
export function rulesFromLimits(
  limits: Limits | undefined,
  inherited?: Limits,
): { rules: BudgetRule[]; concurrency: number | undefined } {
  if (limits === undefined) return { rules: [], concurrency: undefined };
  const rules: BudgetRule[] = [];
  const algorithm = limits.window ?? inherited?.window ?? "sliding";
  const offsetMs = limits.window === undefined ? (inherited?.windowOffsetMs ?? 0) : (limits.windowOffsetMs ?? 0);
  const add = (unit: BudgetUnit, window: BudgetWindow, limit: number | undefined) => {
    if (limit === undefined) return;
    if (algorithm === "sliding" || SLIDING_WINDOW_MS[window] === undefined) rules.push({ unit, window, limit });
    else rules.push({ unit, window, limit, algorithm, offsetMs });
  };
  add("requests", "second", limits.rps);
  add("requests", "minute", limits.rpm);
  add("requests", "hour", limits.rph);
  add("requests", "day", limits.rpd);
  add("tokens", "minute", limits.tpm);
  add("tokens", "hour", limits.tph);
  add("tokens", "day", limits.tpd);
  add("tokens", "month", limits.tokensPerMonth);
  return { rules, concurrency: limits.concurrency };
}

/**
 * The `ash`/`asd` budgets of a `limits:` block, as rules of an audio-seconds scope (BudgetRule.measure). Hour and day
 * windows: the hour slides (or counts as the block's `window` says), the day resets at the provider's `day_reset`.
 */
export function audioRulesFromLimits(limits: Limits | undefined, inherited?: Limits): BudgetRule[] {
  if (limits === undefined || (limits.ash === undefined && limits.asd === undefined)) return [];
  const algorithm = limits.window ?? inherited?.window ?? "sliding";
  const offsetMs = limits.window === undefined ? (inherited?.windowOffsetMs ?? 0) : (limits.windowOffsetMs ?? 0);
  const rules: BudgetRule[] = [];
  const measure = "audio_seconds";
  if (limits.ash !== undefined) {
    rules.push(
      algorithm === "sliding"
        ? { unit: "tokens", window: "hour", limit: limits.ash, measure }
        : { unit: "tokens", window: "hour", limit: limits.ash, measure, algorithm, offsetMs },
    );
  }
  if (limits.asd !== undefined) rules.push({ unit: "tokens", window: "day", limit: limits.asd, measure });
  return rules;
}

/** What an audio-seconds scope's id adds to its provider's or deployment's (`deployment:groq/whisper-large-v3#audio`). */
export const AUDIO_SCOPE_SUFFIX = "#audio";

export type Denied = BudgetVerdict & { isAllowed: false };

/**
 * The scope an answer's limits are learned into, from a deployment's scopes ([pool, own] or [own]): the key's pool
 * when the answer is about the account-wide pool (its 429 names the pool, or the provider counts per account) and
 * the deployment has one, else the deployment's own scope. Learned into the pool, the limit paces every model of
 * the key from then on, and the spacing it is inferred from is the pool's (every model's sends), not one model's.
 */
export function learningScope(scopes: readonly BudgetScope[], isAccountWide: boolean): BudgetScope | undefined {
  const own = scopes[scopes.length - 1];
  if (!isAccountWide) return own;
  return scopes.find((scope) => scope !== own && scope.id.startsWith(POOL_SCOPE_PREFIX)) ?? own;
}

/**
 * What the request path needs from budget accounting. `BudgetBook` (in-process) answers synchronously; the
 * Redis-shared ledger answers `reserve` asynchronously (one atomic round trip). Callers await only a Promise.
 */
export interface BudgetLedger {
  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict;
  reserve(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
  ): Reservation | Denied | Promise<Reservation | Denied>;
  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void;
  /**
   * The reservation's request was handed to an upstream connection at `atMs`, later than it was reserved (a new
   * connection's set-up and TLS handshake, a shared ledger's round trip came between). The provider counts it
   * from its arrival, so the sliding windows count it from the send: else a window frees early by that gap and
   * lets a request more through than the provider's own window does.
   */
  markSent(reservation: Reservation, atMs: number): void;
  release(reservation: Reservation): void;
  /**
   * Of the reservation's upstream calls (BudgetCost.requests), `calls` were never sent (a Llama Guard moderation that
   * failed at an earlier input, or whose client went away): the request budgets stop counting them, in every window
   * they were charged to. Its tokens are the reconcile's (what the calls that were sent spent).
   */
  releaseUnsentCalls(reservation: Reservation, calls: number, nowMs: number): void;
  /**
   * One more request in flight on `scopes` beside the reservations' own, now or never: a call an attempt makes beside
   * its first (a Llama Guard moderation's parallel calls, upstream/moderation-attempt.ts). Undefined when a scope is at
   * its concurrency (configured or learned; with Redis, counted fleet-wide), else its release (idempotent): every
   * scope counts the call in flight until then. Its requests and tokens are the reservation's, not counted again.
   */
  takeInFlight(
    scopes: readonly BudgetScope[],
    nowMs: number,
  ): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined>;
  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void;
  /** Infers limits from a refusal (limit-learning.ts) and paces the scope to them from now on. */
  learnLimits(scope: BudgetScope, refusal: RefusalFacts, nowMs: number): readonly LearnedRule[];
  usage(scope: BudgetScope, nowMs: number): WindowUsage[];
  inFlight(scopeId: string): number;
  /** The limit on requests in flight a concurrency refusal taught for the scope, while it holds. */
  learnedConcurrency(scopeId: string, nowMs: number): LearnedConcurrency | undefined;
  /** Forgets one scope's counters and learned limits (a reload pointed it at another upstream or key). */
  forget(scopeId: string): void;
  reset(): void | Promise<void>;
}
