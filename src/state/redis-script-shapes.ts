// The pure half of the Redis ledger: the per-scope arguments of the reserve script (cached per scope and per day),
// and the script's denials turned into BudgetBook's verdict.
import type { DayReset } from "../config/day-reset.ts";
import { CONCURRENCY_RETRY_MS } from "../limits/budget-types.ts";
import {
  type BudgetCost,
  type BudgetRule,
  type BudgetScope,
  type Denied,
  denialReason,
  laterDenial,
} from "../limits/budgets.ts";
import { dayWindow, monthWindow } from "../limits/day-window.ts";
import { fixedWindowAt } from "../limits/window-counters.ts";
import { SLIDING_WINDOWS_MS, scopeKeys } from "./redis-keys.ts";

const SLIDING_WINDOW_MS: Readonly<Record<string, number>> = { second: 1_000, minute: 60_000, hour: 3_600_000 };

/** The per-scope arguments of the reserve script that depend only on the scope's rules. */
export interface ScopeShape {
  readonly concurrency: string;
  readonly hasDay: boolean;
  readonly hasMonth: boolean;
  readonly hasTokenRule: boolean;
  readonly hasConcurrency: boolean;
  /** Indexes into SLIDING_WINDOWS_MS of the sliding windows the rules use (the script charges them in this order). */
  readonly slidingWindows: readonly number[];
  /** The fixed windows and token buckets a reconcile moves (token rules only; fixed: once per length and offset). */
  readonly tokenCounters: readonly TokenCounter[];
  /** Every fixed window's counter (requests or tokens, once per length and offset): what a lease's give-back moves. */
  readonly fixedCounters: readonly TokenCounter[];
  /**
   * Every fixed window's counter and every request bucket: what a give-back of calls never sent moves (a bucket is
   * never leased, so a lease's give-back has none to move).
   */
  readonly requestCounters: readonly TokenCounter[];
  /** No concurrency limit, no bucket and no learned rule: the reserve script may grant a budget lease. */
  readonly isLeasable: boolean;
  /** rule_count, then unit/window/limit/algorithm/offset per rule. */
  readonly ruleArguments: readonly string[];
}

/** A field of a scope's counters hash: a fixed window (with its length and offset) or a bucket. */
export type TokenCounter =
  | { readonly kind: "fixed"; readonly field: string; readonly windowMs: number; readonly offsetMs: number }
  | { readonly kind: "bucket"; readonly field: string };

export interface WallClockWindows {
  readonly dayStartMs: number;
  readonly dayEndMs: number;
  readonly monthStartMs: number;
  readonly monthEndMs: number;
}

/**
 * A denial remembered for its scope: it applies to costs of at least `minTokens` tokens and `minRequests` upstream
 * calls (0: every cost). A request rule that refused a Llama Guard moderation's 3 calls may still fit a single call.
 */
export interface CachedDenial {
  readonly verdict: Denied;
  readonly minTokens: number;
  readonly minRequests: number;
}

export class ScriptShapes {
  readonly #shapes = new WeakMap<BudgetScope, ScopeShape>();
  readonly #wallClockCache = new Map<string, WallClockWindows>();

  shapeOf(scope: BudgetScope): ScopeShape {
    let shape = this.#shapes.get(scope);
    if (shape !== undefined) return shape;
    const slidingWindows = new Set<number>();
    const tokenCounters = new Map<string, TokenCounter>();
    const fixedCounters = new Map<string, TokenCounter>();
    const requestBuckets: TokenCounter[] = [];
    let isLeasable = scope.concurrency === undefined;
    const rules: string[] = [];
    for (const rule of scope.rules) {
      const slidingMs = SLIDING_WINDOW_MS[rule.window];
      const algorithm = slidingMs === undefined ? "sliding" : (rule.algorithm ?? "sliding");
      const offsetMs = algorithm === "fixed" ? (rule.offsetMs ?? 0) : 0;
      if (slidingMs !== undefined && algorithm === "sliding") {
        slidingWindows.add((SLIDING_WINDOWS_MS as readonly number[]).indexOf(slidingMs));
      }
      if (algorithm === "bucket" || rule.learnedFrom !== undefined) isLeasable = false;
      if (slidingMs !== undefined && algorithm === "fixed") {
        const field = fixedField(slidingMs, offsetMs);
        fixedCounters.set(field, { kind: "fixed", field, windowMs: slidingMs, offsetMs });
      }
      if (slidingMs !== undefined && rule.unit === "tokens" && algorithm !== "sliding") {
        const counter: TokenCounter =
          algorithm === "fixed"
            ? { kind: "fixed", field: fixedField(slidingMs, offsetMs), windowMs: slidingMs, offsetMs }
            : { kind: "bucket", field: bucketField(rule.unit, slidingMs, rule.limit) };
        tokenCounters.set(counter.field, counter);
      }
      if (slidingMs !== undefined && rule.unit === "requests" && algorithm === "bucket") {
        requestBuckets.push({ kind: "bucket", field: bucketField(rule.unit, slidingMs, rule.limit) });
      }
      rules.push(
        rule.unit === "requests" ? "r" : "t",
        String(windowCode(rule)),
        String(rule.limit),
        ALGORITHM_CODE[algorithm],
        String(offsetMs),
      );
    }
    shape = {
      concurrency: scope.concurrency === undefined ? "-1" : String(scope.concurrency),
      hasDay: scope.rules.some((rule) => rule.window === "day"),
      hasMonth: scope.rules.some((rule) => rule.window === "month"),
      hasTokenRule: scope.rules.some((rule) => rule.unit === "tokens"),
      hasConcurrency: scope.concurrency !== undefined,
      slidingWindows: [...slidingWindows].sort((left, right) => left - right),
      tokenCounters: [...tokenCounters.values()],
      fixedCounters: [...fixedCounters.values()],
      requestCounters: [...fixedCounters.values(), ...requestBuckets],
      isLeasable,
      ruleArguments: [String(scope.rules.length), ...rules],
    };
    this.#shapes.set(scope, shape);
    return shape;
  }

  wallClockWindowsAt(reset: DayReset, nowMs: number): WallClockWindows {
    const cacheKey = `${reset.timeZone}|${reset.minuteOfDay}`;
    const cached = this.#wallClockCache.get(cacheKey);
    if (
      cached !== undefined &&
      nowMs >= cached.dayStartMs &&
      nowMs < cached.dayEndMs &&
      nowMs >= cached.monthStartMs &&
      nowMs < cached.monthEndMs
    ) {
      return cached;
    }
    const day = dayWindow(reset, nowMs);
    const month = monthWindow(reset, nowMs);
    const windows = {
      dayStartMs: day.startMs,
      dayEndMs: day.endMs,
      monthStartMs: month.startMs,
      monthEndMs: month.endMs,
    };
    this.#wallClockCache.set(cacheKey, windows);
    return windows;
  }
}

/** A sliding-window run a charge went into in Redis: the runs hash key and the run id. */
export interface ChargedRun {
  /** The window's runs sorted set (scored by when a run leaves) and runs hash. */
  readonly runs: string;
  readonly hash: string;
  readonly id: string;
  readonly windowMs: number;
}

/**
 * Pairs the run ids the reserve script returned with the runs hashes they live in: every run (what a lease's
 * give-back moves), those of scopes with a token rule (what a reconcile moves), and where the reply goes on.
 */
export function chargedRuns(
  shapes: ScriptShapes,
  prefix: string,
  scopes: readonly BudgetScope[],
  nowMs: number,
  reply: unknown,
): { runs: ChargedRun[]; tokenRuns: ChargedRun[]; next: number } {
  const ids = Array.isArray(reply) ? (reply as unknown[]) : [];
  const runs: ChargedRun[] = [];
  const tokenRuns: ChargedRun[] = [];
  let next = 1;
  for (const scope of scopes) {
    const shape = shapes.shapeOf(scope);
    if (shape.slidingWindows.length === 0) continue;
    const scoped = scopeKeys(prefix, scope.id, shapes.wallClockWindowsAt(scope.dayReset, nowMs));
    for (const index of shape.slidingWindows) {
      const id = ids[next++];
      const keys = scoped.sliding[index];
      const windowMs = SLIDING_WINDOWS_MS[index];
      if (typeof id !== "string" || id === "" || keys === undefined || windowMs === undefined) continue;
      const run = { runs: keys[0], hash: keys[1], id, windowMs };
      runs.push(run);
      if (shape.hasTokenRule) tokenRuns.push(run);
    }
  }
  return { runs, tokenRuns, next };
}

/**
 * A reconcile's keys and arguments (WRITE_BATCH_LUA) giving back `requests` of a charge made at `atMs` on `scopes`
 * (calls a reservation never sent: RedisLedger.releaseUnsentCalls): every sliding run it went into, the day and month
 * counters of the scopes with a day or month rule, every fixed window's counter (the script leaves one that has
 * ended alone) and every request bucket's debt (as BudgetBook.releaseUnsentCalls: the debt now, less the calls, at
 * least 0). Undefined: nothing.
 */
export function requestGiveBackArguments(
  shapes: ScriptShapes,
  prefix: string,
  scopes: readonly BudgetScope[],
  atMs: number,
  runs: readonly ChargedRun[],
  requests: number,
): { keys: string[]; args: (string | number)[] } | undefined {
  const wallClock: string[] = [];
  const counterKeys: string[] = [];
  const counterArguments: string[] = [];
  for (const scope of scopes) {
    const shape = shapes.shapeOf(scope);
    const scoped = scopeKeys(prefix, scope.id, shapes.wallClockWindowsAt(scope.dayReset, atMs));
    if (shape.hasDay || shape.hasMonth) wallClock.push(scoped.day, scoped.month);
    counterKeys.push(...shape.requestCounters.map(() => scoped.counters));
    counterArguments.push(...tokenCounterArguments(shape.requestCounters, atMs));
  }
  const keys = [...runs.map((run) => run.hash), ...wallClock, ...counterKeys];
  if (keys.length === 0 || requests <= 0) return undefined;
  const runIds = runs.map((run) => run.id);
  return { keys, args: [0, -requests, runIds.length, ...runIds, wallClock.length, ...counterArguments] };
}

/** A retime's keys and arguments (WRITE_BATCH_LUA): the runs `runs` name count from `sentAtMs`. */
export function retimeArguments(
  runs: readonly ChargedRun[],
  sentAtMs: number,
  nowMs: number,
): { keys: string[]; args: (string | number)[] } {
  const keys: string[] = [];
  const args: (string | number)[] = [sentAtMs, nowMs];
  for (const run of runs) {
    keys.push(run.runs, run.hash);
    args.push(run.id, run.windowMs);
  }
  return { keys, args };
}

/**
 * The reserve script's denial as BudgetBook's verdict (same reasons and retry times): the binding refusal, the latest
 * of the refusing scopes' own (`laterDenial`), and each of those to remember for its scope.
 */
export function denialFromReply(
  reply: unknown,
  scopes: readonly BudgetScope[],
  cost: BudgetCost,
  nowMs: number,
): { readonly verdict: Denied; readonly byScope: readonly CachedDenial[] } | undefined {
  const values = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (values.length < 2) return undefined;
  let verdict: Denied | undefined;
  const byScope: CachedDenial[] = [];
  for (const refusal of values.slice(1)) {
    const denial = Array.isArray(refusal) ? refusalOf(refusal as unknown[], scopes, cost, nowMs) : undefined;
    if (denial === undefined) return undefined;
    byScope.push(denial);
    verdict = laterDenial(verdict, denial.verdict);
  }
  return verdict === undefined ? undefined : { verdict, byScope };
}

/** One scope's refusal in the reserve script's reply: {scope_index, kind, ...} (RESERVE_LUA). */
function refusalOf(
  values: readonly unknown[],
  scopes: readonly BudgetScope[],
  cost: BudgetCost,
  nowMs: number,
): CachedDenial | undefined {
  const scope = scopes[Number(values[0])];
  if (scope === undefined) return undefined;
  switch (String(values[1])) {
    case "concurrency":
      return {
        verdict: {
          isAllowed: false,
          scopeId: scope.id,
          reason: `at its concurrency limit (${scope.concurrency} in flight)`,
          retryAtMs: nowMs + CONCURRENCY_RETRY_MS,
          isSlot: true,
        },
        minTokens: 0,
        minRequests: 0,
      };
    case "rule": {
      const rule = scope.rules[Number(values[2])];
      if (rule === undefined) return undefined;
      const retryAtMs = Number(values[5]);
      return {
        verdict: {
          isAllowed: false,
          scopeId: scope.id,
          reason: denialReason(rule, Number(values[3]), Number(values[4])),
          retryAtMs: retryAtMs < 0 ? Number.POSITIVE_INFINITY : retryAtMs,
        },
        // A token refusal holds for costs at least as large; a request or slot refusal for any cost.
        minTokens: rule.unit === "tokens" ? cost.tokens : 0,
        minRequests: rule.unit === "requests" ? (cost.requests ?? 1) : 0,
      };
    }
    case "learned": {
      const [, window = ""] = String(values[2]).split(":");
      const isTokens = String(values[2]).startsWith("tokens");
      return {
        verdict: {
          isAllowed: false,
          scopeId: scope.id,
          reason: `the provider reports ${Math.max(0, Number(values[3]))} ${isTokens ? "tokens" : "requests"} left this ${window}`,
          retryAtMs: Number(values[4]),
        },
        minTokens: isTokens ? cost.tokens : 0,
        minRequests: isTokens ? 0 : (cost.requests ?? 1),
      };
    }
    default:
      return undefined;
  }
}

const ALGORITHM_CODE = { sliding: "s", fixed: "f", bucket: "b" } as const;

/** The counters-hash field of a fixed window: one per window length and alignment (as BudgetBook's fixedKey). */
export function fixedField(windowMs: number, offsetMs: number): string {
  return `f:${windowMs}@${offsetMs}`;
}

/** The counters-hash field of a bucket: one per unit, window and limit (as BudgetBook's bucketKey). */
export function bucketField(unit: BudgetRule["unit"], windowMs: number, limit: number): string {
  return `b:${unit === "requests" ? "r" : "t"}:${windowMs}:${limit}`;
}

/** A reconcile's arguments for a scope's counters: field, then the fixed window's start ("" for a bucket). */
export function tokenCounterArguments(counters: readonly TokenCounter[], atMs: number): string[] {
  const values: string[] = [];
  for (const counter of counters) {
    values.push(
      counter.field,
      counter.kind === "fixed" ? String(fixedWindowAt(counter.windowMs, counter.offsetMs, atMs).startMs) : "",
    );
  }
  return values;
}

function windowCode(rule: BudgetRule): number {
  if (rule.window === "day") return 0;
  if (rule.window === "month") return -1;
  return SLIDING_WINDOW_MS[rule.window] ?? 0;
}
