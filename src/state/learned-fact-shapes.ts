// The learned facts as they travel on the cooldown channel and are stored (redis-learned-facts.ts shares them): their
// types, and the checks that turn what another process published or stored into one, skipping what is not.
import { isRecord, parseJsonRecord } from "../is-record.ts";
import type { BudgetRule, LearnedConcurrency } from "../limits/budget-types.ts";
import { learnedConcurrencyOf } from "../limits/budgets.ts";
import type { RateLimitUnit, RateLimitWindow } from "../limits/header-dialects.ts";
import type { ContextLesson, PromptEvidence } from "../limits/prompt-calibration.ts";
import type { WindowAlgorithm } from "../limits/window-counters.ts";

/** What travels on the channel (and, apart from the evidence, is stored). */
export type LearnedFact =
  | { readonly kind: "context"; readonly lesson: ContextLesson }
  | { readonly kind: "concurrency"; readonly scopeId: string; readonly learned: LearnedConcurrency }
  | { readonly kind: "rate"; readonly scopeId: string; readonly rule: BudgetRule; readonly learnedAtMs: number };

/**
 * What travels on the channel: a fact, a deployment's calibration forgotten (`forgetDeployment`), or a scope's stated
 * limits forgotten (`forget`).
 */
export type SharedFact = LearnedFact | ForgottenCalibration | ForgottenLimits;

/**
 * A deployment's calibration forgotten (`forgetDeployment`). `forgetId` names the forget, as its marker in Redis does
 * (redis-deployment-forgets.ts). (A process of an earlier version publishes none.)
 */
export interface ForgottenCalibration {
  readonly kind: "forgotten-calibration";
  readonly deploymentKey: string;
  readonly forgetId?: string;
}

/**
 * A scope's stated limits forgotten (`forget`). `forgetId` names the forget, as its marker in Redis does
 * (redis-keys.ts `forgottenLimitsKey`): a replica that heard it does not apply it again when it loads the marker.
 * (A process of an earlier version publishes none.)
 */
export interface ForgottenLimits {
  readonly kind: "forgotten-limits";
  readonly scopeId: string;
  readonly forgetId?: string;
}

export type RateFact = LearnedFact & { readonly kind: "rate" };

export const UNITS: readonly RateLimitUnit[] = ["requests", "tokens"];
export const WINDOWS: readonly RateLimitWindow[] = ["second", "minute", "hour", "day", "month"];
const ALGORITHMS: readonly WindowAlgorithm[] = ["sliding", "fixed", "bucket"];

/**
 * A stated rate limit as it travels and is stored: the rule's limit, evidence and window algorithm, nothing else.
 * Undefined when it is not one; one claiming to be inferred (BudgetRule.isOwnEvidence) came from no process of ours.
 */
export function statedRuleOf(value: unknown): BudgetRule | undefined {
  if (!isRecord(value) || value.isOwnEvidence === true) return undefined;
  const { unit, window, limit, learnedFrom, algorithm, offsetMs } = value;
  if (!UNITS.includes(unit as RateLimitUnit) || !WINDOWS.includes(window as RateLimitWindow)) return undefined;
  if (typeof limit !== "number" || !Number.isFinite(limit) || limit <= 0) return undefined;
  if (typeof learnedFrom !== "string" || learnedFrom === "") return undefined;
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm as WindowAlgorithm)) return undefined;
  if (offsetMs !== undefined && (typeof offsetMs !== "number" || !Number.isFinite(offsetMs) || offsetMs < 0)) {
    return undefined;
  }
  return {
    unit: unit as RateLimitUnit,
    window: window as RateLimitWindow,
    limit,
    learnedFrom,
    ...(algorithm === undefined ? {} : { algorithm: algorithm as WindowAlgorithm }),
    ...(typeof offsetMs === "number" ? { offsetMs } : {}),
  };
}

export function parseFact(value: unknown): SharedFact | undefined {
  if (!isRecord(value)) return undefined;
  if (value.kind === "rate") {
    const rule = statedRuleOf(value.rule);
    const { scopeId, learnedAtMs } = value;
    if (typeof scopeId !== "string" || scopeId === "" || rule === undefined) return undefined;
    if (typeof learnedAtMs !== "number" || !Number.isFinite(learnedAtMs)) return undefined;
    return { kind: "rate", scopeId, rule, learnedAtMs };
  }
  if (value.kind === "concurrency") {
    const learned = learnedConcurrencyOf(value.learned);
    // Only a stated limit is shared; one claiming to be inferred came from no process of ours.
    if (typeof value.scopeId !== "string" || learned === undefined || learned.isOwnEvidence === true) return undefined;
    return { kind: "concurrency", scopeId: value.scopeId, learned };
  }
  if (value.kind === "forgotten-limits") return forgottenLimitsOf(value);
  if (value.kind === "forgotten-calibration") {
    const { deploymentKey, forgetId } = value;
    if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
    return typeof forgetId === "string" && forgetId !== ""
      ? { kind: value.kind, deploymentKey, forgetId }
      : { kind: value.kind, deploymentKey };
  }
  if (value.kind !== "context" || !isRecord(value.lesson)) return undefined;
  const { deploymentKey, evidence, isSharedWindow } = value.lesson;
  if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
  return {
    kind: "context",
    lesson: { deploymentKey, evidence: evidenceOf(evidence), isSharedWindow: isSharedWindow === true },
  };
}

/** A stored key's value: a stated concurrency, or a shared window (kept as `{kind: "shared-window", ...}`). */
export function parseStored(text: string | null | undefined): LearnedFact | undefined {
  if (text === null || text === undefined) return undefined;
  const value = parseJsonRecord(text);
  if (value === undefined) return undefined;
  if (value.kind !== "shared-window") {
    // Only a message says a calibration was forgotten; a stored one is no fact.
    const fact = parseFact(value);
    return fact === undefined || fact.kind === "forgotten-calibration" || fact.kind === "forgotten-limits"
      ? undefined
      : fact;
  }
  const { deploymentKey } = value;
  if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
  return { kind: "context", lesson: { deploymentKey, evidence: undefined, isSharedWindow: true } };
}

function evidenceOf(value: unknown): PromptEvidence | undefined {
  if (!isRecord(value)) return undefined;
  const { estimated, reported } = value;
  if (typeof estimated !== "number" || typeof reported !== "number") return undefined;
  return estimated > 0 && reported > 0 && Number.isFinite(estimated) && Number.isFinite(reported)
    ? { estimated, reported }
    : undefined;
}

/** A forget as published, or its marker as stored; undefined when it is not one. */
export function forgottenLimitsOf(value: unknown): ForgottenLimits | undefined {
  if (!isRecord(value)) return undefined;
  const { scopeId, forgetId } = value;
  if (typeof scopeId !== "string" || scopeId === "") return undefined;
  return typeof forgetId === "string" && forgetId !== ""
    ? { kind: "forgotten-limits", scopeId, forgetId }
    : { kind: "forgotten-limits", scopeId };
}
