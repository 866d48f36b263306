// How an inferred limit a later 429 lowered climbs back toward the highest one inferred before (BudgetRule.recovery).
import type { BudgetRule, BudgetWindow, LimitRecovery } from "./budget-types.ts";
import type { LearnedRule } from "./limit-learning.ts";

/**
 * A 429 that teaches a lower inferred limit than the one in force may be a transient refusal, or another client of
 * the key taking part of it for a while, as well as a lower limit: the limit then climbs back toward the highest one
 * inferred before, by RECOVERY_STEP of that ceiling (at least 1) every this long without a 429 lowering it again.
 * Each lowering during the climb doubles the interval (up to RECOVERY_MAX_INTERVALS times this), so a key whose
 * share really shrank is probed ever more rarely; each step after one that held halves it again (climbedRule); a
 * confirmation at the current limit does not slow the climb.
 * Day limits do not climb (a daily quota's count is its own evidence): they lapse.
 */
export const RECOVERY_INTERVAL_MS: Readonly<Partial<Record<BudgetWindow, number>>> = {
  second: 5_000,
  minute: 120_000,
};
const RECOVERY_STEP = 0.1;
const RECOVERY_MAX_INTERVALS = 16;

/**
 * The climb an inferred limit starts, goes on with, or ends, when a 429 teaches `learned` where `known` was in
 * force: a lower limit climbs back toward the highest one inferred before; a limit at or above that one is no
 * longer climbing.
 */
export function recoveryAfter(
  known: BudgetRule | undefined,
  learned: LearnedRule,
  nowMs: number,
): LimitRecovery | undefined {
  const baseMs = RECOVERY_INTERVAL_MS[learned.window];
  if (known === undefined || known.isOwnEvidence !== true || baseMs === undefined) return undefined;
  const ceiling = Math.max(known.recovery?.ceiling ?? known.limit, known.limit);
  if (learned.limit >= ceiling) return undefined;
  if (learned.limit > known.limit) return known.recovery;
  // Lowered: while already climbing, the next climb waits twice as long.
  const intervalMs =
    known.recovery === undefined ? baseMs : Math.min(known.recovery.intervalMs * 2, baseMs * RECOVERY_MAX_INTERVALS);
  return { ceiling, nextStepAtMs: nowMs + intervalMs, intervalMs, loweredAtMs: nowMs };
}

/**
 * A lower reading that does not lower a climbing limit: one within the climb's interval of the last lowering. Paced
 * at a limit L, a 429 reads at most L - 1, so refusals that do not follow our rate (3 % of answers at random, in
 * bench/soak.ts) would otherwise take the limit down one by one, faster than it climbs; a key whose share shrank
 * is lowered to it by the first 429, and a climb step above it is lowered again by the next.
 */
export function isHeldLow(known: BudgetRule, learned: LearnedRule, nowMs: number): boolean {
  const recovery = known.recovery;
  return (
    recovery !== undefined &&
    learned.isOwnEvidence === true &&
    learned.limit < known.limit &&
    nowMs - recovery.loweredAtMs < recovery.intervalMs
  );
}

/** `rule` after the climbing steps due by `nowMs` (itself when none is). */
export function climbedRule(rule: BudgetRule, nowMs: number): BudgetRule {
  const recovery = rule.recovery;
  if (recovery === undefined || recovery.nextStepAtMs > nowMs) return rule;
  const stepSize = Math.max(1, Math.ceil(recovery.ceiling * RECOVERY_STEP));
  const baseMs = RECOVERY_INTERVAL_MS[rule.window] ?? recovery.intervalMs;
  let { nextStepAtMs, intervalMs } = recovery;
  let limit = rule.limit;
  // At most 1 / RECOVERY_STEP steps: each adds at least a tenth of the ceiling.
  while (nextStepAtMs <= nowMs && limit < recovery.ceiling) {
    limit = Math.min(recovery.ceiling, limit + stepSize);
    // A step after the first one since the last lowering: the step before it held for a whole interval, so the
    // other client of the key has likely gone; the climb speeds up again (halving what lowerings doubled).
    if (nextStepAtMs - recovery.loweredAtMs > intervalMs) intervalMs = Math.max(baseMs, intervalMs / 2);
    nextStepAtMs += intervalMs;
  }
  const { recovery: _climbed, ...rest } = rule;
  if (limit >= recovery.ceiling) return { ...rest, limit: recovery.ceiling };
  return { ...rest, limit, recovery: { ...recovery, nextStepAtMs, intervalMs } };
}
