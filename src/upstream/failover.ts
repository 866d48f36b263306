// The failover executor: try the plan's candidates best-first, one attempt at a time (attempt.ts), and return
// the first usable response. What each attempt taught is reported to `services.attemptEnded` (the recorder);
// the loop itself only decides what to try next, from the outcome's traits (errors/outcomes.ts).
//
// Bounds: at most `routing.maxAttempts` upstream attempts; each attempt's wait for headers is the provider's
// `timeout_ms` capped by what is left of `routing.totalTimeoutMs`; a timed-out candidate is never retried in the
// same request (a silent upstream stays silent); the whole request, waits included, ends by the deadline, which
// counts from the request's arrival (`receivedAtMs`): time spent in the queue is part of it.
import { ClientAbortedError } from "../errors/gateway-error.ts";
import { traitsOf } from "../errors/outcomes.ts";
import { billedAudioSeconds } from "../limits/audio-duration.ts";
import type { Reservation } from "../limits/budgets.ts";
import type { FeatureSizes } from "../limits/refused-features.ts";
import { outputLimitNameOf, outputTokensFor } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import { deploymentMessageOrdering, isSameOrdering } from "../providers/message-order.ts";
import { gatewayOutputTokensOf, upstreamCallsOf } from "../providers/moderation-api.ts";
import type { RouteCandidate, RoutePlan } from "../router/plan-route.ts";
import type { RequestFeature } from "../router/request-features.ts";
import { newSpanId } from "../trace-context.ts";
import { acceptedOf } from "./accepted-features.ts";
import { affordableRetryOf, markedChosenLimit, refusedSizeOf, reportOfChosenLimit } from "./affordable-retry.ts";
import { type AttemptResult, attemptOnce, messageChangesOf } from "./attempt.ts";
import { answerOf } from "./attempt-answer.ts";
import type { Verdict } from "./classify-response.ts";
import { finalError, type KeptRefusal, refusalToReturn, rejectedError } from "./final-error.ts";
import type { AttemptReport, FailoverServices, ForwardOutcome, ForwardRequest } from "./forward-types.ts";
import { slotHeldUntilRecorded } from "./held-slot.ts";
import { reportedAsOf } from "./lessons.ts";
import { calibratingPromptOf, callsPromptOf, promptSentOf, promptTokensTo } from "./prompt-sent.ts";
import { sleepUntil } from "./sleep-until.ts";
import { outputLeftOf } from "./upstream-request.ts";

/** What the loop carries from one candidate to the next. */
interface LoopState {
  readonly deadlineMs: number;
  /** After a context-length rejection only candidates with a known larger context are worth trying. */
  contextFloorTokens: number | undefined;
  lastContextError: Verdict | undefined;
  isOutOfAttempts: boolean;
  /**
   * Providers that answered this request with a route refusal (`unserved_endpoint`): their other candidates in the
   * plan (another model, a fallback name) would get the same 404, so they are passed over (later plans skip them).
   */
  unservedProviders: Set<string> | undefined;
  /**
   * The refusal of a candidate that does not serve the model, refuses a parameter another may take or flagged the
   * input: what the client gets, as it came, when no other candidate answers (rejectedError). The first one, unless a
   * later one is more informative (final-error.ts `refusalToReturn`).
   */
  keptRefusal: KeptRefusal | undefined;
}

export async function forward(
  plan: RoutePlan,
  request: ForwardRequest,
  services: FailoverServices,
): Promise<ForwardOutcome> {
  const { clock, routing } = services;
  const state: LoopState = {
    deadlineMs: (request.receivedAtMs ?? clock.now()) + routing.totalTimeoutMs,
    contextFloorTokens: undefined,
    lastContextError: undefined,
    isOutOfAttempts: false,
    // Made at the first such refusal: a Set per request otherwise, for a path almost none takes.
    unservedProviders: undefined,
    keptRefusal: undefined,
  };
  const queue: { candidate: RouteCandidate; waitUntilMs: number }[] = [];
  if (plan.waitFor !== undefined) queue.push({ candidate: plan.waitFor, waitUntilMs: plan.waitFor.untilMs });
  for (const candidate of plan.candidates) queue.push({ candidate, waitUntilMs: 0 });

  for (const { candidate, waitUntilMs } of queue) {
    if (state.isOutOfAttempts) break;
    const deployment =
      services.servingAs === undefined ? candidate.deployment : services.servingAs(candidate.deployment);
    if (deployment === undefined) {
      request.trace.skips.push({ deploymentKey: candidate.deployment.key, reason: "removed by a config reload" });
      continue;
    }
    if (state.unservedProviders?.has(deployment.provider.settings.name) === true) {
      request.trace.skips.push({
        deploymentKey: deployment.key,
        reason: `provider ${deployment.provider.settings.name} has no ${request.endpointPath} route (answered in this request)`,
      });
      continue;
    }
    const floor = state.contextFloorTokens;
    if (floor !== undefined && (deployment.contextTokens === undefined || deployment.contextTokens <= floor)) {
      request.trace.skips.push({
        deploymentKey: deployment.key,
        reason: `context ${deployment.contextTokens ?? "unknown"} is not larger than ${floor}`,
      });
      continue;
    }
    // Only the plan's `waitFor` candidate waits: the others are not sent through an async call and its await (turns of
    // the event loop's microtask queue on the way to the first byte).
    if (waitUntilMs > 0) await sleepUntil(Math.min(waitUntilMs, state.deadlineMs), clock, request.signal);
    if (request.signal.aborted) throw new ClientAbortedError();
    const outcome = await tryCandidate(deployment, request, services, state);
    if (outcome !== undefined) return outcome;
  }
  const { attempts, skips } = request.trace;
  // A provider that does not serve the model, or refuses a parameter, and no other candidate answered: the client
  // gets that refusal as it came (as before such refusals failed over), not a gateway error about the others.
  const refusal = state.keptRefusal;
  if (refusal !== undefined) throw rejectedError(refusal.verdict, refusal.report, services.redact);
  const nowMs = clock.now();
  throw finalError(plan, attempts, skips, state.lastContextError, services.soonestAvailableMs(plan, request), nowMs, {
    hasClientOutputLimit: request.maxOutputTokens > 0,
    outputLimitName: request.outputLimitField,
    queueRefusal: request.queueRefusal,
  });
}

/** Attempts one candidate, retrying blips up to its `retries`. Returns the answer, or undefined to go on. */
async function tryCandidate(
  deployment: Deployment,
  request: ForwardRequest,
  services: FailoverServices,
  state: LoopState,
): Promise<ForwardOutcome | undefined> {
  const { clock, routing } = services;
  const settings = deployment.provider.settings;
  const { attempts, skips } = request.trace;
  let hasRetriedInOrder = false;
  for (let tryIndex = 0; ; tryIndex++) {
    const remainingMs = state.deadlineMs - clock.now();
    if (attempts.length >= routing.maxAttempts || remainingMs <= 0) {
      state.isOutOfAttempts = true;
      return undefined;
    }
    // Waiting for one of the provider's in-flight slots is the gateway's own queue: it never counts against
    // the provider. Its `timeout_ms` starts when the request is sent, and the wait may only last as long as the
    // provider still gets that whole time afterwards (else a request sent at the end of the request's time would
    // time out on the provider's account).
    const maxSlotWaitMs = Math.max(0, remainingMs - settings.timeoutMs);
    const acquired = services.acquireSlot(deployment, maxSlotWaitMs, request.signal);
    const releaseSlot = acquired instanceof Promise ? await acquired : acquired;
    if (request.signal.aborted) {
      releaseSlot?.();
      throw new ClientAbortedError();
    }
    if (releaseSlot === undefined) {
      // The gateway's own concurrency cap is a limit like a budget: the client may come back (429), nothing failed.
      skips.push({
        deploymentKey: deployment.key,
        reason: `no free slot within the request's time (max_in_flight ${settings.maxInFlight})`,
        isLimit: true,
      });
      return undefined;
    }
    const attemptMs = state.deadlineMs - clock.now();
    if (attemptMs <= 0) {
      releaseSlot();
      state.isOutOfAttempts = true;
      return undefined;
    }
    // The body this deployment is sent (its role order, `prefix`, and without the reasoning sent back when its host
    // refused the field), decided once, here, for the reservation and the send alike: the admission below may await
    // (a shared ledger asks Redis), and a refusal learned or expiring meanwhile (a concurrent request's 400) would
    // otherwise reserve the estimate of one body and send another. A lesson learned in that window costs at most the
    // one refusal it predicts, which the retry in order below takes care of.
    const orderSent = deploymentMessageOrdering(deployment, services);
    const isReasoningRemoved = orderSent.reasoning === "remove";
    const sentTokens = promptTokensTo(deployment, request, request.promptTokens, isReasoningRemoved);
    const prompt = services.promptTokensFor?.(deployment, sentTokens) ?? sentTokens;
    // The output the rules leave in this deployment's body (a `body:` default or override of max_tokens), or what the
    // gateway's own calls ask for (a Llama Guard moderation's N verdicts).
    const maxOutputTokens = outputLeftOf(
      gatewayOutputTokensOf(deployment.model, request.moderationInputs) ??
        outputTokensFor(
          deployment,
          request.maxOutputTokens,
          outputLimitNameOf(request.body),
          request.isLegacyCompletion,
        ),
      request.spentOutputTokens,
    );
    const tokens = prompt + (settings.countMaxTokens ? maxOutputTokens : 0);
    let admission: Awaited<ReturnType<FailoverServices["admit"]>>;
    try {
      // Every upstream call of the attempt is reserved up front: a Llama Guard moderation of 20 inputs is 20 requests
      // of the deployment's rpm, refused (skipped, queued) when they do not all fit, never 20 calls against `rpm: 5`.
      const calls = upstreamCallsOf(deployment.model, request.moderationInputs);
      const admitted = services.admit(deployment, tokens, calls, request);
      admission = admitted instanceof Promise ? await admitted : admitted;
    } catch (error) {
      releaseSlot();
      throw error;
    }
    if (!admission.isAdmitted) {
      releaseSlot();
      skips.push(
        admission.untilMs === undefined
          ? { deploymentKey: deployment.key, reason: admission.reason, isLimit: admission.isLimit }
          : {
              deploymentKey: deployment.key,
              reason: admission.reason,
              untilMs: admission.untilMs,
              isLimit: admission.isLimit,
              ...(admission.isSlot && { isSlot: true }),
              ...(admission.cooldownCause !== undefined && { cooldownCause: admission.cooldownCause }),
            },
      );
      return undefined;
    }
    request.onReserved?.();
    const startedAtMs = clock.now();
    const { reservation } = admission;
    // Given back once this attempt is recorded, not when its body closes: a request waiting for the slot then sees
    // the cooldown an overload answer starts (held-slot.ts).
    const slot = slotHeldUntilRecorded(releaseSlot);
    let isSent = false;
    // A span id per attempt (its own `traceparent`): a retry on the same candidate is a new attempt, a new span.
    const spanId = request.traceContext === undefined ? undefined : newSpanId();
    const result = await attemptOnce(
      deployment,
      request,
      services,
      attemptMs,
      slot,
      () => {
        isSent = true;
        services.attemptSent(reservation);
      },
      orderSent,
      prompt,
      spanId,
    ).catch((error: unknown) => {
      slot.thrown();
      throw error;
    });
    // Asked right before the recorder applies the report (same tick): a lesson learned meanwhile is not missed.
    const mayClearRefusals = result.ok && services.hasRefusedFeatures?.(deployment) !== false;
    // What the role order changed in the messages sent: the record shows it (docs/observability.md).
    const changes = messageChangesOf(request, deployment, orderSent);
    // By assignment in its fields' order: a conditional spread costs an object per field (bench/README.md section 48).
    const built = reportOf(
      deployment,
      result,
      startedAtMs,
      clock.now() - startedAtMs,
      admission.reservation,
      mayClearRefusals && request.features !== undefined ? acceptedOf(request, request.features) : undefined,
      services.redact,
    );
    if (spanId !== undefined) built.spanId = spanId;
    if (changes.length !== 0) {
      built.messageOrder = orderSent.order;
      built.messageChanges = changes;
    }
    built.reservedPromptTokens = promptSentOf(deployment, request, services, sentTokens, prompt);
    if (isSent) built.isSent = true;
    const callsPrompt = result.ok ? undefined : callsPromptOf(deployment, result.unreportedPromptTokens, services);
    if (callsPrompt?.callsPromptTokens !== undefined) built.callsPromptTokens = callsPrompt.callsPromptTokens;
    const report: AttemptReport = reportOfChosenLimit(request, built);
    attempts.push(report);
    try {
      services.attemptEnded(
        deployment,
        report,
        admission.reservation,
        result.ok && (result.stream !== undefined || result.audio !== undefined),
        calibratingPromptOf(deployment, request, result, { isReasoningRemoved, maxOutputTokens }),
      );
    } finally {
      slot.recorded();
    }
    if (result.ok) {
      const answer = markedChosenLimit(request, answerOf(deployment, result, admission.reservation, report));
      return {
        result:
          answer.kind === "audio" || sentTokens === request.promptTokens
            ? answer
            : { ...answer, promptTokensSent: sentTokens },
        attempts,
        skips,
      };
    }
    const traits = traitsOf(report.outcome);
    if (report.outcome === "client_aborted") throw new ClientAbortedError();
    if (result.verdict?.kind === "rejected") {
      if (result.verdict.refusal === "request") throw rejectedError(result.verdict, report, services.redact);
      // A role-order refusal the recorder has just learned from (lessons.ts), or a refusal of the `prefix` field: the
      // same candidate once more, with its messages rewritten into that order (or without the field), before any
      // other (it was ranked first for this request).
      // Only with an attempt left for it: else the refusal is kept below, and the client gets it (a 400) when no
      // other candidate answers, not a gateway error about an attempt never made.
      const orderNow = deploymentMessageOrdering(deployment, services);
      const hasAttemptLeft = attempts.length < routing.maxAttempts && clock.now() < state.deadlineMs;
      if (
        !hasRetriedInOrder &&
        hasAttemptLeft &&
        !isSameOrdering(orderNow, orderSent) &&
        report.outcome === "unsupported"
      ) {
        hasRetriedInOrder = true;
        continue;
      }
      // Only a refusal of the planned path: a native call's went elsewhere (lessons.ts learns nothing from it either).
      if (
        report.outcome === "unserved_endpoint" &&
        report.effects.some((effect) => effect.kind === "unserved_endpoint")
      ) {
        state.unservedProviders ??= new Set();
        state.unservedProviders.add(settings.name);
      }
      state.keptRefusal = refusalToReturn(state.keptRefusal, { verdict: result.verdict, report });
      return undefined;
    }
    if (result.verdict?.kind === "context_length") {
      state.lastContextError = result.verdict;
      // The window the refusal states when smaller than the listed one (a `context: 5000` that takes 500): a candidate
      // listed at 4,000 may well hold what this one refused.
      const refusedTokens = Math.min(
        deployment.contextTokens ?? Infinity,
        report.statedContext?.limitTokens ?? Infinity,
      );
      state.contextFloorTokens = Math.max(
        state.contextFloorTokens ?? 0,
        Number.isFinite(refusedTokens) ? refusedTokens : 0,
      );
      return undefined;
    }
    // OpenRouter's 402 for an output its credits do not cover, no limit asked: this candidate once more with one.
    const affordable = affordableRetryOf(result.verdict, request, deployment);
    if (affordable !== undefined) return tryCandidate(deployment, affordable, services, state);
    if (!traits.isRetryableOnSameCandidate || tryIndex >= settings.retries) return undefined;
  }
}

function reportOf(
  deployment: Deployment,
  result: AttemptResult,
  startedAtMs: number,
  durationMs: number,
  reservation: Reservation,
  /** The request's features and their sizes, when a success should clear what the deployment refused of them. */
  accepted: { readonly features: readonly RequestFeature[]; readonly sizes: FeatureSizes } | undefined,
  redact: (text: string) => string,
): Writable<AttemptReport> {
  const settings = deployment.provider.settings;
  if (result.ok) {
    const report: Writable<Partial<AttemptReport>> = {
      provider: settings.name,
      model: deployment.model.id,
      deploymentKey: deployment.key,
      startedAtMs,
      durationMs,
      status: result.json?.status ?? 200,
      outcome: "success",
      reason: "ok",
      headersMs: result.headersMs,
    };
    if (result.firstTokenMs !== undefined) report.firstTokenMs = result.firstTokenMs;
    // The answer's rate-limit headers count up to this request: the ones sent after it are still to come off.
    // It took every feature the request carried: a refusal of one learned before is over.
    report.effects =
      accepted === undefined || accepted.features.length === 0
        ? reportedAsOf(result.effects, reservation)
        : [...reportedAsOf(result.effects, reservation), { kind: "accepted_features", ...accepted }];
    if (result.usage !== undefined) {
      report.usage = result.usage;
      if (result.json?.isUsageEstimated === true) report.isUsageEstimated = true;
    }
    if (result.audioSeconds !== undefined) {
      report.audioSeconds = billedAudioSeconds(result.audioSeconds, settings.minBilledAudioSeconds);
    }
    return report as Writable<AttemptReport>;
  }
  const base = {
    provider: settings.name,
    model: deployment.model.id,
    deploymentKey: deployment.key,
    startedAtMs,
    durationMs,
  };
  return {
    ...base,
    status: result.status,
    outcome: result.lesson.outcome,
    reason: redact(result.lesson.reason),
    ...(result.headersMs === undefined ? {} : { headersMs: result.headersMs }),
    ...(result.usage === undefined ? {} : { usage: result.usage }),
    ...(result.unsentCalls === undefined ? {} : { unsentCalls: result.unsentCalls }),
    ...refusedSizeOf(result.verdict),
    // Applied to the books (cooldowns, parked keys, refused features) with their reasons, which /health, /stats, route
    // explanations and the state file show: redacted here, where they leave the upstream's answer. Rate-limit windows
    // a failure carries (those of a Llama Guard attempt's calls that answered before one failed) are anchored to the
    // reservation, as a success's are.
    effects: reportedAsOf(result.lesson.effects, reservation).map((effect) =>
      "reason" in effect ? { ...effect, reason: redact(effect.reason) } : effect,
    ),
  };
}

/** A report as it is built: its fields set one by one, then handed on read-only. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };
