// When a request's failure is an overload (final-error.ts UpstreamOverloadedError) rather than a rate limit: one
// reading for the candidates tried and for those left out, so the same answer teaches and is told the same.
import { isLimitSkip, type RoutePlan } from "../router/plan-route.ts";
import type { AttemptReport, AttemptSkip } from "./forward-types.ts";

/**
 * The attempt was answered "overloaded": its answer cools the candidate down for capacity (lessons.ts), as a 529, a
 * 503 with retry-after, and a 429 that says the provider, not the key, has no room do (OpenRouter's "temporarily
 * rate-limited upstream" and the other 429s it relays, Cerebras's full queue, Mistral's tier capacity:
 * classify-429.ts). The very cooldown that, while it lasts, leaves the candidate out of later requests as overloaded
 * (a plan skip whose `cooldownCause` is `capacity`): read from the status instead, a 429 of OpenRouter's was a rate
 * limit when tried and an overload while it cooled.
 */
export function isOverloadAttempt(attempt: AttemptReport): boolean {
  return (
    attempt.outcome === "rate_limited" &&
    attempt.effects.some(
      (effect) => (effect.kind === "cool_down" || effect.kind === "park") && effect.cause === "capacity",
    )
  );
}

/**
 * Every attempt answered "overloaded" and every candidate left out for a limit cools down for that too
 * ("capacity"), with at least one of either. A client told 429 backs off as from its own rate limit; Anthropic's
 * clients and OpenAI's tell an overload apart (UpstreamOverloadedError). With no attempt at all (every candidate still
 * cooling after the overload answers of earlier requests) it is the same overload, and its answer the same: a 429
 * then told the next request the opposite of what the one before was told.
 */
export function isOverloadOnly(
  attempts: readonly AttemptReport[],
  plan: RoutePlan,
  skips: readonly AttemptSkip[],
): boolean {
  const hasOverloadSkip = plan.skipped.some((skip) => isLimitSkip(skip) === true && skip.cooldownCause === "capacity");
  // Left out when its turn came, cooling for another request's overload answer since the plan: the same overload.
  const isOverloadSkip = (skip: AttemptSkip): boolean => skip.isLimit === true && skip.cooldownCause === "capacity";
  return (
    (attempts.length > 0 || hasOverloadSkip || skips.some(isOverloadSkip)) &&
    attempts.every(isOverloadAttempt) &&
    skips.every((skip) => skip.isLimit !== true || isOverloadSkip(skip)) &&
    plan.skipped.every((skip) => isLimitSkip(skip) !== true || skip.cooldownCause === "capacity")
  );
}
