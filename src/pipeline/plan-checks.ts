// What a plan asks of the live books (router/route-types.ts RouterContext): scores, availability, the learned
// prompt calibration and refusals, and the two limit checks (`budgetCheck`, `coolingPool`), built from the books
// themselves so that the runtime only wires them in.

import { type AvailabilityBook, isLimitCause } from "../limits/availability.ts";
import { type BudgetLedger, laterDenial } from "../limits/budgets.ts";
import { learnedLimitsOf } from "../limits/learned-context.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import { unservedEndpointOf } from "../limits/unserved-endpoints.ts";
import { outputTokensFor } from "../providers/body-rules.ts";
import { gatewayOutputTokensOf, gatewayPromptTokensOf, upstreamCallsOf } from "../providers/moderation-api.ts";
import type { RouteRequest, RouterContext } from "../router/route-types.ts";
import type { LiveScores } from "../scoring/live-scores.ts";
import { audioChargeOf } from "./audio-seconds.ts";
import type { ClientRouteRequest } from "./client-rules.ts";

export { audioChargeOf };

import { type GatewaySnapshot, POOL_SCOPE_PREFIX } from "./snapshot.ts";

/** The runtime's books a plan reads. */
export interface PlanBooks {
  readonly scores: LiveScores;
  readonly availability: AvailabilityBook;
  readonly promptCalibration: PromptCalibration;
  readonly budgets: BudgetLedger;
  readonly refusedFeatures: RefusedFeatures;
}

/** The router context's functions of the books and the snapshot alone. */
type SnapshotChecks = Required<
  Pick<RouterContext, "score" | "probeScore" | "scoreOnBoard" | "paramsB" | "availability" | "coolingPool">
>;

/**
 * Made once per snapshot (and books), not for every plan: six closures per request otherwise (bench/README.md
 * section 48). Weakly held: a snapshot a reload replaced takes them with it.
 */
const checksBySnapshot = new WeakMap<GatewaySnapshot, { readonly books: PlanBooks; readonly checks: SnapshotChecks }>();

function snapshotChecksOf(books: PlanBooks, snapshot: GatewaySnapshot): SnapshotChecks {
  const kept = checksBySnapshot.get(snapshot);
  if (kept !== undefined && kept.books === books) return kept.checks;
  const { scores, availability } = books;
  const checks: SnapshotChecks = {
    score: (deployment) => scores.scoreOf(deployment, snapshot),
    probeScore: (deployment) => scores.scoreOf(deployment, snapshot, true),
    scoreOnBoard: (deployment, board) => scores.scoreOnBoard(deployment, board, snapshot),
    paramsB: (deployment) => snapshot.profiles[deployment.index]?.params?.valueB,
    availability: (deployment) => availability.peek(deployment.key, deployment.provider.settings.name),
    coolingPool: coolingPoolOf(availability),
  };
  checksBySnapshot.set(snapshot, { books, checks });
  return checks;
}

/** The router's view of the books and the snapshot at `nowMs`, for one request. */
export function routerContextOf(
  books: PlanBooks,
  snapshot: GatewaySnapshot,
  request: ClientRouteRequest,
  nowMs: number,
): RouterContext {
  const { promptCalibration, refusedFeatures } = books;
  const checks = snapshotChecksOf(books, snapshot);
  return {
    catalog: snapshot.catalog,
    metaModels: snapshot.config.metaModels,
    routing: snapshot.config.routing,
    nowMs,
    score: checks.score,
    probeScore: checks.probeScore,
    scoreOnBoard: checks.scoreOnBoard,
    paramsB: checks.paramsB,
    availability: checks.availability,
    promptTokensFor: promptCalibration.promptTokensFor,
    contextLimitsFor: (deployment) =>
      learnedLimitsOf(promptCalibration.limitsFor(deployment), refusedFeatures, deployment.key, nowMs),
    budgetCheck: budgetCheckOf(books.budgets, promptCalibration, snapshot, request, nowMs),
    coolingPool: checks.coolingPool,
    refusedFeature: (deployment, features) =>
      refusedFeatures.refusalOf(deployment.key, features, nowMs, request.featureSizes),
    unservedEndpoint: (deployment, path) =>
      unservedEndpointOf(refusedFeatures, deployment.provider.settings.name, path, nowMs),
  };
}

/**
 * Would the request's estimated tokens (its prompt as this deployment counts it, plus `max_tokens` where the
 * provider counts those: a Llama Guard moderation's N calls' `max_tokens` each) fit every budget of the deployment now? `pool`: the account-wide scope that is empty.
 */
export function budgetCheckOf(
  budgets: BudgetLedger,
  promptCalibration: PromptCalibration,
  /** Each deployment's budget scopes and audio-seconds scopes (`ash`/`asd`), by its index (the snapshot's). */
  { budgetScopes, audioScopes }: Pick<GatewaySnapshot, "budgetScopes" | "audioScopes">,
  request: Pick<
    RouteRequest,
    "promptTokens" | "maxOutputTokens" | "outputLimitName" | "isLegacyCompletion" | "moderationInputs" | "audioSeconds"
  >,
  nowMs: number,
): NonNullable<RouterContext["budgetCheck"]> {
  return (deployment) => {
    // A Llama Guard moderation's calls each carry the model's prompt template too (failover.ts reserves them alike).
    const templateTokens = gatewayPromptTokensOf(deployment.model, request.moderationInputs);
    const prompt = promptCalibration.promptTokensFor(deployment, (request.promptTokens ?? 0) + templateTokens);
    const output =
      gatewayOutputTokensOf(deployment.model, request.moderationInputs) ??
      outputTokensFor(deployment, request.maxOutputTokens ?? 0, request.outputLimitName, request.isLegacyCompletion);
    const tokens = prompt + (deployment.provider.settings.countMaxTokens ? output : 0);
    const requests = upstreamCallsOf(deployment.model, request.moderationInputs);
    let verdict = budgets.check(budgetScopes[deployment.index] ?? [], { tokens, requests }, nowMs);
    // Only an upload has seconds to count: every other request (chat's hot path) skips this whole branch.
    const audio = audioChargeOf({ audioScopes }, deployment, request.audioSeconds);
    if (audio !== undefined) {
      const audioVerdict = budgets.check(audio.scopes, { tokens: audio.seconds, requests }, nowMs);
      if (!audioVerdict.isAllowed) verdict = verdict.isAllowed ? audioVerdict : laterDenial(verdict, audioVerdict);
    }
    if (verdict.isAllowed) return undefined;
    const pool = verdict.scopeId.startsWith(POOL_SCOPE_PREFIX) ? verdict.scopeId : undefined;
    return { reason: verdict.reason, untilMs: verdict.retryAtMs, pool, ...(verdict.isSlot && { isSlot: true }) };
  };
}

/** The provider's pool a cooling deployment is skipped with, when its key's account-wide cooldown is a limit. */
export function coolingPoolOf(availability: AvailabilityBook): NonNullable<RouterContext["coolingPool"]> {
  return (deployment) => {
    const name = deployment.provider.settings.name;
    const pooled = availability.providerCooldown(name);
    return pooled !== undefined && isLimitCause(pooled.cause) ? `${POOL_SCOPE_PREFIX}${name}` : undefined;
  };
}
