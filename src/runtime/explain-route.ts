// `GET /v1/gateway/route?model=X` and `llm-gateway route X --explain`: the plan a request for X would get
// right now, with every score term and, for each candidate left out, why.
import type { ModelKind } from "../config/types.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";

export interface ExplainedCandidate {
  readonly rank: number;
  readonly provider: string;
  readonly model: string;
  readonly upstream_id: string;
  readonly score: number;
  readonly terms: Record<string, unknown> | null;
  readonly leaderboard_matches: readonly { board: string; row: string; normalised: number }[];
  readonly context_tokens: number | null;
  readonly params_b: number | null;
}

export interface RouteExplanation {
  readonly model: string;
  readonly kind: ModelKind;
  readonly strategy: string;
  readonly candidates: readonly ExplainedCandidate[];
  readonly wait_for: { provider: string; model: string; until: string } | null;
  readonly skipped: readonly {
    provider: string;
    model: string;
    cause: string;
    reason: string;
    until: string | null;
    score: number;
  }[];
  readonly unknown_names: readonly string[];
}

export function explainRoute(
  runtime: GatewayRuntime,
  model: string,
  options: { kind?: ModelKind; promptTokens?: number; needsTools?: boolean; needsVision?: boolean } = {},
): RouteExplanation {
  const snapshot = runtime.snapshot;
  const kind = options.kind ?? "chat";
  const plan = runtime.plan({
    model,
    fallbackModels: [],
    kind,
    ...(options.promptTokens === undefined
      ? {}
      : { requiredContextTokens: options.promptTokens, budgetTokens: options.promptTokens }),
    ...(options.needsTools === undefined ? {} : { needsTools: options.needsTools }),
    ...(options.needsVision === undefined ? {} : { needsVision: options.needsVision }),
  });
  const describe = (deployment: Deployment, rank: number, score: number): ExplainedCandidate => {
    const breakdown = runtime.explainScore(deployment);
    const profile = snapshot.profiles[deployment.index];
    return {
      rank,
      provider: deployment.provider.settings.name,
      model: deployment.model.publicName,
      upstream_id: deployment.model.id,
      score: round(score),
      terms:
        breakdown === undefined
          ? null
          : {
              base_priority: breakdown.basePriority,
              priority: breakdown.terms.priority,
              leaderboard: roundTerm(breakdown.terms.leaderboard),
              params: roundTerm(breakdown.terms.params),
              context: roundTerm(breakdown.terms.context),
              adjustment: { value: breakdown.terms.adjustment.value, matched: profile?.adjustment.matched ?? [] },
              health_penalty: {
                weighted: round(breakdown.terms.healthPenalty.weighted),
                is_cold: breakdown.terms.healthPenalty.isCold,
                failure_rate: breakdown.terms.healthPenalty.failureRate ?? null,
              },
            },
      leaderboard_matches: (profile?.leaderboard.matches ?? []).map((match) => ({
        board: match.board,
        row: match.row,
        normalised: round(match.normalised),
      })),
      context_tokens: deployment.contextTokens ?? null,
      params_b: profile?.params?.valueB ?? null,
    };
  };
  return {
    model,
    kind,
    strategy: snapshot.config.routing.strategy,
    candidates: plan.candidates.map((candidate, index) => describe(candidate.deployment, index + 1, candidate.score)),
    wait_for:
      plan.waitFor === undefined
        ? null
        : {
            provider: plan.waitFor.deployment.provider.settings.name,
            model: plan.waitFor.deployment.model.publicName,
            until: new Date(plan.waitFor.untilMs).toISOString(),
          },
    skipped: plan.skipped.map((skip) => ({
      provider: skip.deployment.provider.settings.name,
      model: skip.deployment.model.publicName,
      cause: skip.cause,
      reason: skip.reason,
      until: skip.untilMs === undefined || !Number.isFinite(skip.untilMs) ? null : new Date(skip.untilMs).toISOString(),
      score: round(skip.score),
    })),
    unknown_names: plan.unknownNames,
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function roundTerm(term: { normalised: number; weighted: number; isNeutral: boolean }) {
  return { normalised: round(term.normalised), weighted: round(term.weighted), is_neutral: term.isNeutral };
}
