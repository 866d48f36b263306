// Why a deployment is cooling down: one list for limits/ (the cooldowns, and what a shared cooldown message may name)
// and observability/ (a gauge per cause, 0 when none is active), which may not import limits/.
export const COOLDOWN_CAUSES = [
  "rate_limited",
  "daily_quota",
  "credits_exhausted",
  "capacity",
  "budget_exhausted",
  "invalid_key",
  "model_unavailable",
  "circuit_open",
] as const;

export type CooldownCause = (typeof COOLDOWN_CAUSES)[number];
