// PURE: (request, catalog, state) -> an ordered candidate plan, with the reason for every candidate left out.
// The plan is data, so the same object serves the executor, /v1/gateway/route explanations, logs and metrics.

import {
  InvalidRequestError,
  ModelNotFoundError,
  NoCapableModelError,
  PermissionDeniedError,
} from "../errors/gateway-error.ts";
import { isLimitCause } from "../limits/availability.ts";
import { isNeverFit } from "../limits/budget-types.ts";
import type { Deployment } from "../providers/catalog.ts";
import { acceptsImages } from "../providers/moderation-api.ts";
import { allowedDeployments } from "./client-models.ts";
import { type ContextFit, contextFit, fitTokensOf } from "./context-fit.ts";
import { metaModelNamed, noModelOfKind, PRIORITY_AUTO, resolveName, splitRequestedNames } from "./resolve-names.ts";
import type { RouteCandidate, RoutePlan, RouteRequest, RouterContext, RouteSkip } from "./route-types.ts";
import { unservedSkip } from "./unserved-skip.ts";

export { PRIORITY_AUTO } from "./resolve-names.ts";

export type { RouteCandidate, RoutePlan, RouteRequest, RouterContext, RouteSkip, SkipCause } from "./route-types.ts";

/** `spread` shuffles candidates scoring at least this fraction of the group's best. */
const SPREAD_BAND_RATIO = 0.9;

export function planRoute(request: RouteRequest, context: RouterContext): RoutePlan {
  const names = splitRequestedNames(request);
  if (names.length === 0) {
    throw new InvalidRequestError("`model` must name a model.", { param: "model", code: "invalid_model" });
  }
  const unknownNames: string[] = [];
  const seen = new Set<number>();
  const allowed = request.allowedModels === undefined ? undefined : allowedDeployments(request.allowedModels, context);
  let isDeniedToClient = false;
  const groups: Deployment[][] = [];
  const groupBoards: (string | undefined)[] = [];
  let matchedOtherKind: Deployment | undefined;
  for (const name of names) {
    const resolved = resolveName(name, context, 0);
    if (resolved === undefined) {
      unknownNames.push(name);
      continue;
    }
    const group: Deployment[] = [];
    for (const deployment of resolved) {
      if (deployment.kind !== request.kind) {
        matchedOtherKind ??= deployment;
        continue;
      }
      if (seen.has(deployment.index)) continue;
      if (allowed !== undefined && !allowed.has(deployment.index)) {
        isDeniedToClient = true;
        continue;
      }
      seen.add(deployment.index);
      group.push(deployment);
    }
    groups.push(group);
    const meta = metaModelNamed(context, name);
    groupBoards.push(meta?.kind === "filter" ? meta.filter.leaderboard : undefined);
  }
  if (groups.length === 0) {
    const shown = unknownNames.join(", ");
    throw new ModelNotFoundError(
      `The model \`${shown}\` does not exist on this gateway. GET /v1/models lists the available names.`,
      { param: "model" },
    );
  }
  if (groups.every((group) => group.length === 0)) {
    if (isDeniedToClient) {
      throw new PermissionDeniedError(
        `This client may not use \`${request.model}\`: its key allows ${(request.allowedModels ?? []).map((name) => `\`${name}\``).join(", ")} (server.api_keys \`models\`).`,
        { param: "model" },
      );
    }
    // `priority-auto` (a moderation request without `model`) is every model, not "a chat model": none is of this kind.
    if (request.model === PRIORITY_AUTO && request.fallbackModels.length === 0) throw noModelOfKind(request.kind);
    if (matchedOtherKind !== undefined) {
      throw new InvalidRequestError(
        `The model \`${request.model}\` is ${withArticle(matchedOtherKind.kind)} model and cannot serve this ${request.kind} endpoint.`,
        { param: "model", code: "model_not_supported" },
      );
    }
    throw new ModelNotFoundError(`The model \`${request.model}\` has no deployment on any enabled provider.`, {
      param: "model",
    });
  }

  const candidates: RouteCandidate[] = [];
  // Out for a limit (a 429's cooldown, a budget): worth waiting for when it frees up soon.
  const cooling: (RouteCandidate & { untilMs: number })[] = [];
  // Out because it fails (circuit open, probe in flight, key rejected): never waited for. Waiting for its probe
  // made requests sit up to max_wait_for_better_ms for an attempt that mostly fails again (docs/routing.md
  // "Timeline": while the circuit is open every request goes to the fallback at once).
  let failingCount = 0;
  const skipped: RouteSkip[] = [];
  const fitFailures: RouteSkip[] = [];
  const paidSkips: RouteSkip[] = [];
  const paidPolicy = request.paid ?? context.routing.paid;
  // Ranked last rather than skipped: a refusal learned once may be out of date (a provider adds tools to a model) or
  // tied to the wrong feature, and when every candidate refused it once, skipping would leave nothing to try.
  const refused: RouteCandidate[] = [];
  const features = request.features ?? [];
  groups.forEach((group, groupIndex) => {
    const ready: RouteCandidate[] = [];
    const lastResort: RouteCandidate[] = [];
    const board = groupBoards[groupIndex];
    for (const deployment of group) {
      let score =
        board === undefined
          ? context.score(deployment)
          : (context.scoreOnBoard?.(deployment, board) ?? context.score(deployment));
      // `routing.paid: never` is a guarantee: a paid candidate is never tried, waited for or queued for.
      if (deployment.cost === "paid" && paidPolicy === "never") {
        const reason = request.paid === undefined ? PAID_NEVER_REASON : CLIENT_PAID_NEVER_REASON;
        const skip: RouteSkip = { deployment, cause: "paid", reason, score, board };
        skipped.push(skip);
        paidSkips.push(skip);
        continue;
      }
      const misfit = unservedSkip(request, deployment, score, context) ?? checkFit(request, deployment, score, context);
      if (misfit !== undefined) {
        const skip = { ...misfit, board };
        skipped.push(skip);
        fitFailures.push(skip);
        continue;
      }
      const availability = context.availability(deployment);
      const overBudget = context.budgetCheck?.(deployment);
      // A request larger than a whole token budget never fits there, cooling or not: said as such, so that it is
      // not queued (or told to retry) for a cooldown whose end changes nothing.
      if (overBudget !== undefined && (availability.isAvailable || isNeverFit(overBudget.untilMs))) {
        skipped.push({
          deployment,
          cause: "budget",
          reason: budgetReason(overBudget),
          score,
          untilMs: overBudget.untilMs,
          board,
          pool: overBudget.pool,
          ...(overBudget.isSlot && { isSlot: true }),
        });
        if (!isNeverFit(overBudget.untilMs))
          cooling.push({ deployment, score, group: groupIndex, board, untilMs: overBudget.untilMs });
        continue;
      }
      if (!availability.isAvailable) {
        const pool = context.coolingPool?.(deployment);
        const cooldownReason = pool === undefined ? availability.reason : `pool ${pool} empty: ${availability.reason}`;
        // Cooling and over a budget that frees later: usable only once both are over, so the budget's time is the
        // candidate's (a wait or retry-after at the cooldown's end would find the budget still spent).
        const isBudgetLater = overBudget !== undefined && overBudget.untilMs > availability.untilMs;
        const untilMs = isBudgetLater ? overBudget.untilMs : availability.untilMs;
        skipped.push({
          deployment,
          cause: "cooldown",
          reason: isBudgetLater ? `${cooldownReason}; then ${budgetReason(overBudget)}` : cooldownReason,
          score,
          untilMs,
          cooldownCause: availability.cause,
          board,
          pool,
        });
        if (isLimitCause(availability.cause)) {
          cooling.push({ deployment, score, group: groupIndex, board, untilMs });
        } else failingCount += 1;
        continue;
      }
      const probeScore = availability.isProbe ? context.probeScore?.(deployment) : undefined;
      if (probeScore !== undefined) score += probeScore - context.score(deployment);
      const refusal = features.length === 0 ? undefined : context.refusedFeature?.(deployment, features);
      if (refusal !== undefined) {
        refused.push({
          deployment,
          score,
          group: groupIndex,
          board,
          refusedFeature: refusal,
          ...(probeScore === undefined ? {} : { isProbe: true }),
        });
        continue;
      }
      // A last resort is never a probe (a suspect's probe is the attempt already in flight).
      const isLastResort = availability.isLastResort === true;
      (isLastResort ? lastResort : ready).push({
        deployment,
        score,
        group: groupIndex,
        board,
        ...(isLastResort ? { isLastResort: true } : probeScore === undefined ? {} : { isProbe: true }),
      });
    }
    ready.sort(byScoreDescending);
    lastResort.sort(byScoreDescending);
    if (context.routing.strategy === "spread") spreadWithinBand(ready, context.random ?? Math.random);
    // Sticky routing moves the session's deployment to the front of its own group only: the requested order of
    // a comma list or fallback array is the client's preference and outranks the session's habit.
    const stickyIndex = ready.findIndex((candidate) => candidate.deployment.key === request.stickyDeploymentKey);
    if (stickyIndex > 0) ready.unshift(...ready.splice(stickyIndex, 1));
    // A suspect candidate whose probe is in flight comes after every other ready one of its group: one request
    // at a time finds out whether it healed, the others go elsewhere unless nothing else is left.
    candidates.push(...ready, ...lastResort);
  });
  // After every group's ready candidates: a refusal learned is near certain to come again, so the client's own order
  // of names (or a session's habit) does not send the request to it first.
  refused.sort((a, b) => a.group - b.group || byScoreDescending(a, b));
  const willing = candidates.slice();
  candidates.push(...refused);

  if (candidates.length === 0 && cooling.length === 0 && failingCount === 0 && fitFailures.length > 0) {
    const isAllContext = fitFailures.every((failure) => failure.cause === "context");
    throw new NoCapableModelError(noFitMessage(request, fitFailures, context), {
      param: isAllContext ? (request.promptParam ?? "messages") : "model",
    });
  }
  if (candidates.length === 0 && cooling.length === 0 && failingCount === 0 && paidSkips.length > 0) {
    throw new NoCapableModelError(
      request.paid === undefined
        ? `Every model for \`${request.model}\` is paid and \`routing.paid\` is \`never\`: mark a free one with \`cost: free\` or allow paid models.`
        : `Every model for \`${request.model}\` is paid and this client may not use paid models (its \`paid: never\` in \`server.api_keys\`).`,
      { param: "model" },
    );
  }

  // `last_resort`: paid candidates only once every free one (of every requested name) has had its turn, and a
  // free one cooling for a moment is waited for rather than paid for.
  const isLastResort = paidPolicy === "last_resort";
  const hasFree = isLastResort && (candidates.some(isFree) || cooling.some(isFree));
  const ordered = hasFree
    ? [...candidates.filter(isFree), ...candidates.filter((candidate) => !isFree(candidate))]
    : candidates;
  return {
    requested: request.model,
    candidates: ordered,
    // A cooling candidate is worth waiting for when only candidates that refused a feature of the request are ready.
    waitFor: hasFree
      ? chooseWait(willing.filter(isFree), cooling.filter(isFree), context)
      : chooseWait(willing, cooling, context),
    skipped,
    unknownNames,
  };
}

function budgetReason(overBudget: { readonly reason: string; readonly pool?: string | undefined }): string {
  return overBudget.pool === undefined ? overBudget.reason : `pool ${overBudget.pool} empty: ${overBudget.reason}`;
}

const PAID_NEVER_REASON = "paid model: routing.paid is never";
/** The skip reason of a paid candidate left out by the client's own `paid: never` (the final error names it). */
export const CLIENT_PAID_NEVER_REASON = "paid model: the client's paid is never";

/**
 * Whether a plan skip is a limit (over budget, or cooling after a 429, a quota: a client may be told 429), a
 * failing candidate (`false`: circuit open, probe in flight, key rejected), or neither (`undefined`: it does not
 * fit the request, or is paid). One answer for the final error and the request record.
 */
export function isLimitSkip(skip: RouteSkip): boolean | undefined {
  if (skip.cause === "budget") return true;
  if (skip.cause !== "cooldown") return undefined;
  return skip.cooldownCause === undefined || isLimitCause(skip.cooldownCause);
}

function isFree(candidate: RouteCandidate): boolean {
  return candidate.deployment.cost === "free";
}

/**
 * Waiting rule: the best cooling candidate (first group first, then score) is worth waiting for when its
 * wait is at most `maxWaitForBetterMs` and either nothing is ready or the best ready candidate scores below
 * `waitScoreRatio` × its score. A short wait for a much better model beats an instant answer from a much
 * worse one; a long wait or a small gain does not.
 */
function chooseWait(
  ready: readonly RouteCandidate[],
  cooling: readonly (RouteCandidate & { untilMs: number })[],
  context: RouterContext,
): (RouteCandidate & { untilMs: number }) | undefined {
  const { maxWaitForBetterMs, waitScoreRatio } = context.routing;
  if (cooling.length === 0 || maxWaitForBetterMs <= 0) return undefined;
  let best: (RouteCandidate & { untilMs: number }) | undefined;
  for (const candidate of cooling) {
    if (candidate.untilMs - context.nowMs > maxWaitForBetterMs) continue;
    if (
      best === undefined ||
      candidate.group < best.group ||
      (candidate.group === best.group && candidate.score > best.score)
    ) {
      best = candidate;
    }
  }
  if (best === undefined) return undefined;
  const firstReady = ready[0];
  if (firstReady === undefined) return best;
  if (firstReady.group < best.group) return undefined;
  if (firstReady.group > best.group) return best;
  return best.score > 0 && firstReady.score < waitScoreRatio * best.score ? best : undefined;
}

/** How a request fits a deployment's context (context-fit.ts), its prompt calibrated; undefined if unknown. */
function contextFitOf(
  request: RouteRequest,
  deployment: Deployment,
  context: Pick<RouterContext, "promptTokensFor" | "contextLimitsFor">,
): ContextFit | undefined {
  const fitted = fitTokensOf(request, deployment);
  if (fitted === undefined) return undefined;
  const prompt = context.promptTokensFor?.(deployment, fitted.promptTokens) ?? fitted.promptTokens;
  const limits = context.contextLimitsFor?.(deployment) ?? deployment;
  return contextFit(limits, prompt, fitted.outputTokens, request.outputLimitParam);
}

function checkFit(
  request: RouteRequest,
  deployment: Deployment,
  score: number,
  context: RouterContext,
): RouteSkip | undefined {
  const capabilities = deployment.capabilities;
  const fit = contextFitOf(request, deployment, context);
  if (fit !== undefined && !fit.fits) return { deployment, cause: "context", score, reason: fit.description };
  if (request.needsTools === true && capabilities.tools === false) {
    return { deployment, cause: "tools", score, reason: "does not support tools" };
  }
  if (request.needsVision === true && !acceptsImages(deployment)) {
    return { deployment, cause: "vision", score, reason: "does not accept images" };
  }
  if (request.needsJsonSchema === true && capabilities.jsonSchema === false) {
    return { deployment, cause: "json_schema", score, reason: "does not support response_format json_schema" };
  }
  return undefined;
}

/** Candidates named one by one when they were left out for different reasons. */
const MAX_LISTED_MISFITS = 5;

function noFitMessage(request: RouteRequest, failures: readonly RouteSkip[], context: RouterContext): string {
  const first = failures[0];
  if (failures.some((failure) => failure.cause !== first?.cause)) {
    // Mixed causes (one too small, another without tools): a single "no model does X" would be wrong for some.
    const listed = failures
      .slice(0, MAX_LISTED_MISFITS)
      .map((failure) => `${failure.deployment.key} ${failure.reason}`)
      .join("; ");
    const more = failures.length > MAX_LISTED_MISFITS ? ` (and ${failures.length - MAX_LISTED_MISFITS} more)` : "";
    return `No configured model for \`${request.model}\` can serve this request: ${listed}${more}.`;
  }
  if (first?.cause === "context") {
    const largest = failures.reduce((best, failure) =>
      (failure.deployment.contextTokens ?? 0) > (best.deployment.contextTokens ?? 0) ? failure : best,
    );
    const fit = contextFitOf(request, largest.deployment, context);
    return `No configured model for \`${request.model}\` has a context window large enough for this request (the largest is ${largest.deployment.contextTokens ?? 0}: ${largest.deployment.key} ${fit?.description ?? "has an unknown context"}).`;
  }
  if (first?.cause === "endpoint") {
    const providers = [...new Set(failures.map((failure) => failure.deployment.provider.settings.name))];
    return `No provider of \`${request.model}\` serves ${request.endpointPath ?? "this endpoint"} (${providers.join(", ")}: ${first.reason}).`;
  }
  const what =
    first?.cause === "tools"
      ? "supports tools"
      : first?.cause === "vision"
        ? "accepts images"
        : "supports json_schema response formats";
  return `No configured model for \`${request.model}\` ${what}.`;
}

function byScoreDescending(a: RouteCandidate, b: RouteCandidate): number {
  return b.score - a.score || a.deployment.index - b.deployment.index;
}

/** Weighted random order (by score) among the candidates within the band of the best; the rest keep their order. */
function spreadWithinBand(ready: RouteCandidate[], random: () => number): void {
  const top = ready[0];
  if (top === undefined || top.score <= 0) return;
  let bandEnd = 1;
  while (bandEnd < ready.length && (ready[bandEnd]?.score ?? 0) >= top.score * SPREAD_BAND_RATIO) bandEnd++;
  const band = ready.slice(0, bandEnd);
  const ordered: RouteCandidate[] = [];
  while (band.length > 0) {
    const total = band.reduce((sum, candidate) => sum + Math.max(candidate.score, 1e-9), 0);
    let pick = random() * total;
    let index = 0;
    for (; index < band.length - 1; index++) {
      pick -= Math.max(band[index]?.score ?? 0, 1e-9);
      if (pick < 0) break;
    }
    ordered.push(...band.splice(index, 1));
  }
  ready.splice(0, bandEnd, ...ordered);
}

/** "a chat", "an image", "an embedding", "an audio", "an ocr": the kinds read in a sentence. */
function withArticle(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}
