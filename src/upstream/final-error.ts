// The error a client gets when no attempt produced an answer: a context-length 400 when only context was the
// problem; a 413 when the request is larger than a whole token budget of every candidate left (it can never be
// sent, so no retry-after); a 429 when every candidate is rate-limited, over budget or cooling after 429s; a 503 when the
// candidates are failing (circuits open, keys parked) and nothing was tried; a 504 when only timeouts, else a
// 502; and an upstream's own 4xx passed on unchanged when it rejected the request itself. Each lists the
// attempts, without secrets.
import { isoTime } from "../clock.ts";
import {
  type AttemptSummary,
  type GatewayError,
  type GatewayErrorOptions,
  RateLimitedError,
  RequestTooLargeError,
  UpstreamOverloadedError,
  UpstreamRequestError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import { shownReason } from "../errors/shown-reason.ts";
import { isNeverFit, SLOT_RETRY_ADVICE_MS } from "../limits/budget-types.ts";
import {
  CLIENT_PAID_NEVER_REASON,
  isLimitSkip,
  type RoutePlan,
  type RouteSkip,
  type SkipCause,
} from "../router/plan-route.ts";
import type { Verdict } from "./classify-response.ts";
import type { AttemptReport, AttemptSkip, ForwardRequest } from "./forward-types.ts";
import { isOverloadOnly } from "./overload.ts";
import { describedMessage } from "./read-upstream-error.ts";

export function finalError(
  plan: RoutePlan,
  attempts: readonly AttemptReport[],
  skips: readonly AttemptSkip[],
  lastContextError: Verdict | undefined,
  soonestAvailableMs: number | undefined,
  nowMs: number,
  /**
   * Whether the client set an output limit (max_tokens or its door's): a 413 for the credits' output advises on it;
   * `outputLimitName`: the name it gave it (max_completion_tokens, the Responses door's max_output_tokens).
   */
  request: {
    readonly hasClientOutputLimit: boolean;
    readonly outputLimitName?: string | undefined;
    readonly queueRefusal?: ForwardRequest["queueRefusal"];
  } = {
    hasClientOutputLimit: true,
  },
): GatewayError {
  const summaries: AttemptSummary[] = attempts.map((attempt) => {
    const summary: AttemptSummary = { provider: attempt.provider, model: attempt.model, reason: attempt.reason };
    if (attempt.status !== undefined) summary.status = attempt.status;
    return summary;
  });
  const listed = summaries.map((summary) => {
    // Reasons from classifyResponse already start with "HTTP 500: ..."; do not say it twice.
    const status =
      summary.status === undefined || summary.reason.startsWith(`HTTP ${summary.status}`)
        ? ""
        : `HTTP ${summary.status} `;
    return `${summary.provider}/${summary.model}: ${status}${shownReason(summary.reason)}`;
  });
  const detail = listed.length > 0 ? ` Attempts: ${sentence(listed.join("; "))}` : "";
  const onlyContext = attempts.length > 0 && attempts.every((attempt) => attempt.outcome === "context_length");
  if (onlyContext && lastContextError?.kind === "context_length") {
    return new UpstreamRequestError(
      `The request does not fit the context window of any candidate.${detail}`,
      { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
      { param: "messages", attempts: summaries },
    );
  }
  const outputLimit = request.hasClientOutputLimit ? (request.outputLimitName ?? "max_tokens") : undefined;
  const tooLarge = tooLargeError(plan, attempts, skips, summaries, outputLimit);
  if (tooLarge !== undefined) return tooLarge;
  // 429 only when limits are all that stand in the way: every attempt was rate-limited and every candidate left
  // out is rate-limited, over budget or cooling after 429s. Failing candidates (5xx, open circuits, parked keys)
  // are not a rate limit: a client told 429 backs off and retries as for one.
  const failures = attempts.filter((attempt) => attempt.outcome !== "rate_limited");
  const limitSkips =
    plan.skipped.filter((skip) => isLimitSkip(skip) === true).length +
    skips.filter((skip) => skip.isLimit === true).length;
  const failingSkips =
    plan.skipped.filter((skip) => isLimitSkip(skip) === false).length +
    skips.filter((skip) => skip.isLimit === false).length;
  const hasRateLimited = attempts.length > failures.length || limitSkips > 0;
  // The plan's view, refined by what attempt-time checks learned (a budget another replica used up).
  let soonestMs = soonestAvailableMs;
  for (const skip of skips) {
    if (skip.untilMs === undefined || !Number.isFinite(skip.untilMs)) continue;
    // A full slot's time is when the gateway looks again: a client is told a second (budget-types.ts).
    const waitMs = Math.max(skip.isSlot === true ? SLOT_RETRY_ADVICE_MS : 0, skip.untilMs - nowMs);
    if (soonestMs === undefined || soonestMs === 0 || waitMs < soonestMs) soonestMs = waitMs;
  }
  const retryAfter = soonestMs === undefined ? {} : { retryAfterMs: soonestMs };
  if (failures.length === 0 && failingSkips === 0 && hasRateLimited) {
    if (isOverloadOnly(attempts, plan, skips)) {
      return new UpstreamOverloadedError(
        `Every candidate for \`${plan.requested}\` is overloaded${soonestMs === undefined ? "" : `; the first is available again in ${Math.ceil(soonestMs / 1000)} s`}.${queueText(request.queueRefusal)}${skippedText(plan, skips, nowMs)}${detail}`,
        { attempts: summaries, ...retryAfter },
      );
    }
    return new RateLimitedError(
      `Every candidate for \`${plan.requested}\` is rate-limited or cooling down${soonestMs === undefined ? "" : `; the first is available again in ${Math.ceil(soonestMs / 1000)} s`}${soonestResetText(plan, skips, nowMs, soonestMs)}.${queueText(request.queueRefusal)}${paidText(plan)}${skippedText(plan, skips, nowMs)}${detail}`,
      { attempts: summaries, ...retryAfter },
    );
  }
  if (failures.length === 0) {
    // No attempt failed: the candidates are failing (circuits open, keys parked), perhaps some rate-limited.
    const isModelGone = plan.skipped.some((skip) => skip.cooldownCause === "model_unavailable");
    const why = isModelGone ? "circuit open, key rejected or model not served" : "circuit open or key rejected";
    return new UpstreamUnavailableError(
      `Every candidate for \`${plan.requested}\` is failing (${why})${soonestMs === undefined ? "" : `; the next try is in ${Math.ceil(soonestMs / 1000)} s`}.${skippedText(plan, skips, nowMs)}${detail}`,
      { status: 503, attempts: summaries, ...retryAfter },
    );
  }
  const isTimeoutOnly = failures.every(
    (attempt) => attempt.outcome === "timeout" || attempt.outcome === "first_token_timeout",
  );
  const message = `No upstream could serve \`${plan.requested}\`.${detail}`;
  return isTimeoutOnly
    ? new UpstreamTimeoutError(message, { attempts: summaries })
    : new UpstreamUnavailableError(message, { attempts: summaries });
}

/** Skip causes that no wait changes: the candidate does not fit the request itself, or is never to be used. */
const PERMANENT_CAUSES: ReadonlySet<SkipCause> = new Set([
  "context",
  "tools",
  "vision",
  "json_schema",
  "kind",
  "paid",
  "endpoint",
]);

function isNeverFitSkip(skip: RouteSkip): boolean {
  return skip.cause === "budget" && isNeverFit(skip.untilMs);
}

/**
 * 413 `request_too_large` when nothing was attempted and every candidate was left out for good, at least one for
 * being larger than a whole token budget (the others do not fit for another reason, or are paid under
 * `routing.paid: never`). A 429 would be wrong: it has no retry-after to give, and clients retry 429s forever.
 * Candidates refused the same way at attempt time (a shared ledger's reserve) count too; a candidate not tried
 * at all (the request ran out of time first) means the request might have fitted, so no 413 then.
 */
function tooLargeError(
  plan: RoutePlan,
  attempts: readonly AttemptReport[],
  skips: readonly AttemptSkip[],
  summaries: AttemptSummary[],
  /** The name of the output limit the client set, if it set one. */
  outputLimit: string | undefined,
): GatewayError | undefined {
  // A provider that refused the request as larger than a whole window of its own ("Request too large ... Limit N,
  // Requested M") says the same as our estimate: the client's retry (a 429 would invite one) can never succeed.
  if (!attempts.every((attempt) => attempt.isRequestTooLarge === true)) return undefined;
  if (!plan.skipped.every((skip) => isNeverFitSkip(skip) || PERMANENT_CAUSES.has(skip.cause))) return undefined;
  const neverFitAtAttempt = skips.filter((skip) => skip.isLimit === true && isNeverFit(skip.untilMs));
  if (neverFitAtAttempt.length !== skips.length) return undefined;
  const refusedKeys = new Set([
    ...neverFitAtAttempt.map((skip) => skip.deploymentKey),
    ...attempts.map((attempt) => attempt.deploymentKey),
  ]);
  const ready = [...plan.candidates, ...(plan.waitFor === undefined ? [] : [plan.waitFor])];
  if (!ready.every((candidate) => refusedKeys.has(candidate.deployment.key))) return undefined;
  const reasons = [
    ...plan.skipped.filter(isNeverFitSkip).map((skip) => `${skip.deployment.key}: ${skip.reason}`),
    ...neverFitAtAttempt.map((skip) => `${skip.deploymentKey}: ${skip.reason}`),
    ...attempts.map((attempt) => `${attempt.deploymentKey}: ${attempt.reason}`),
  ];
  if (reasons.length === 0) return undefined;
  // The candidates a token budget left out (the gateway's estimate or a shared ledger), each named once.
  const budgetKeys = [
    ...new Set([
      ...plan.skipped.filter(isNeverFitSkip).map((skip) => skip.deployment.key),
      ...neverFitAtAttempt.map((skip) => skip.deploymentKey),
    ]),
  ];
  return new RequestTooLargeError(
    `Request too large for \`${plan.requested}\`: its tokens are more than every candidate takes (a whole token budget by the gateway's estimate, or the provider's own refusal of its size or of an output or a prompt its credits do not cover), so it can never be sent there as it is (${reasons.join("; ")}). ${tooLargeAdvice(attempts, budgetKeys, outputLimit)}${paidText(plan)}`,
    { attempts: summaries },
  );
}

/**
 * What a client refused for its size can change. A request that set no output limit and was refused for the output
 * the credits cover (OpenRouter reserves the model's whole output then) is told what they cover: the latest figure of
 * each candidate (a retry's is fresher than the first refusal's), the largest of them, "~" as the balance moves. One
 * whose prompt alone every candidate refused for the credits is told the prompt they cover: a smaller max_tokens does
 * not help it (and it may have sent none). `budgetKeys`: the candidates a token budget left out.
 */
function tooLargeAdvice(
  attempts: readonly AttemptReport[],
  budgetKeys: readonly string[],
  outputLimit: string | undefined,
): string {
  const output = largestLatest(attempts, (attempt) => attempt.affordableOutputTokens);
  if (outputLimit === undefined && output !== undefined) {
    return `The key's credits cover only ~${output} output tokens, and this request set no output limit, so the whole output the model may write was counted against them: set one of at most ~${output} tokens (max_tokens; max_output_tokens on the Responses API), send a shorter prompt, or add credits.`;
  }
  const prompt = largestLatest(attempts, (attempt) => attempt.affordablePromptTokens);
  if (
    prompt !== undefined &&
    budgetKeys.length === 0 &&
    attempts.every((attempt) => attempt.affordablePromptTokens !== undefined)
  ) {
    return `The key's credits cover a prompt of only ~${prompt} tokens, whatever the output limit: send a shorter prompt (of at most ~${prompt} tokens), or add credits.`;
  }
  return generalAdvice(budgetKeys, outputLimit);
}

/**
 * What else the client can change: what it sent (its prompt; its output limit only when it sent one, under the name
 * it sent: a client that set none was told to send "a smaller max_tokens", a Responses client too), and, when a token budget of the gateway left candidates out, that this
 * budget (the operator's `limits`, not the provider's) is the binding limit. No reset time is given: the request is
 * larger than the budget's whole window, so no reset makes it fit.
 */
function generalAdvice(budgetKeys: readonly string[], outputLimit: string | undefined): string {
  const shorter =
    outputLimit === undefined ? "send a shorter prompt" : `send a shorter prompt or a smaller ${outputLimit}`;
  if (budgetKeys.length === 0) return `${shorter.charAt(0).toUpperCase()}${shorter.slice(1)}.`;
  const which = budgetKeys.length === 1 ? "budget" : "budgets";
  return `The gateway's own token ${which} for ${budgetKeys.join(", ")} ${budgetKeys.length === 1 ? "is" : "are"} the binding limit (its \`limits\`, not the provider's): the request is larger than the whole window, so no wait makes it fit; ${shorter}, or ask the gateway's operator to raise that ${which}.`;
}

/** The largest of each candidate's latest figure (a retry's is fresher than its first refusal's), if any has one. */
function largestLatest(
  attempts: readonly AttemptReport[],
  figureOf: (attempt: AttemptReport) => number | undefined,
): number | undefined {
  const latest = new Map<string, number>();
  for (const attempt of attempts) {
    const figure = figureOf(attempt);
    if (figure !== undefined) latest.set(attempt.deploymentKey, figure);
  }
  return latest.size === 0 ? undefined : Math.max(...latest.values());
}

/**
 * The candidate (and its pool, when a whole account-wide pool is empty) that frees up first, with its reset time:
 * ` (groq/m at 2026-01-01T00:00:30.000Z, pool provider:groq)`.
 */
function soonestResetText(
  plan: RoutePlan,
  skips: readonly AttemptSkip[],
  nowMs: number,
  soonestMs: number | undefined,
): string {
  let soonest: { readonly key: string; readonly untilMs: number; readonly pool?: string | undefined } | undefined;
  const consider = (key: string, untilMs: number | undefined, pool?: string): void => {
    if (untilMs === undefined || !Number.isFinite(untilMs) || untilMs < nowMs) return;
    if (soonest === undefined || untilMs < soonest.untilMs) soonest = { key, untilMs, pool };
  };
  for (const skip of plan.skipped)
    if (isLimitSkip(skip) === true) consider(skip.deployment.key, skip.untilMs, skip.pool);
  // What the attempts found (a shared budget another replica used up) named too: it set `soonestMs` as well.
  for (const skip of skips) if (skip.isLimit === true) consider(skip.deploymentKey, skip.untilMs);
  if (soonest === undefined) {
    // Only candidates tried in this request cool: their reset, without a name (several may have been tried).
    return soonestMs === undefined ? "" : ` (at ${isoTime(nowMs + soonestMs)})`;
  }
  const { key, untilMs, pool } = soonest;
  return ` (${key} at ${isoTime(untilMs)}${pool === undefined ? "" : `, pool ${pool}`})`;
}

/** Candidates named in a refusal's "Skipped:" list; the rest are counted ("and N more"), so the message stays short. */
export const MAX_LISTED_SKIPS = 4;

/**
 * Why each candidate was left out, in the route explanation's words (the plan's skip reasons: "over its tpm budget
 * (25/30 tokens, needs 8)", "pool provider:groq empty: ...", a learned cooldown with where its wait came from, an open
 * circuit), with when it frees up: a user of a free tier learns which window refused (their rpm, the provider's day,
 * a concurrency cap) rather than only that one did. Only limits and failing candidates are named: a candidate that
 * does not fit the request says so elsewhere (a 400, 413), and paid ones are counted by `paidText`. Reasons hold no
 * key (upstream text in them was redacted when it was learned: failover.ts `reportOf`) and no client's name
 * (a client's own budget is refused before routing, client-budget.ts).
 */
function skippedText(plan: RoutePlan, skips: readonly AttemptSkip[], nowMs: number): string {
  const until = (untilMs: number | undefined): string =>
    untilMs === undefined || !Number.isFinite(untilMs) || untilMs <= nowMs ? "" : ` until ${isoTime(untilMs)}`;
  const listed = [
    ...plan.skipped
      .filter((skip) => isLimitSkip(skip) !== undefined)
      .map((skip) => `${skip.deployment.key}: ${shownReason(skip.reason)}${until(skip.untilMs)}`),
    // Left out when its turn came (a budget another replica spent, no free slot): said as the attempt found it.
    ...skips
      .filter((skip) => skip.isLimit !== undefined)
      .map((skip) => `${skip.deploymentKey}: ${shownReason(skip.reason)}${until(skip.untilMs)}`),
  ];
  if (listed.length === 0) return "";
  const shown = listed.slice(0, MAX_LISTED_SKIPS);
  const more = listed.length - shown.length;
  return ` Skipped: ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""}.`;
}

/**
 * What the queue did for a request it gave back (`routing.queue_timeout_ms`): without it, a 429 after a long wait
 * (a stream's keep-alives for seconds, then its in-stream error) read as if the gateway had not waited at all.
 */
function queueText(refusal: ForwardRequest["queueRefusal"]): string {
  if (refusal === undefined) return "";
  if (refusal.isFull) return " The gateway's queue for it was full (routing.max_queued), so it did not wait.";
  // A wait under 0.1 s (a short queue_timeout_ms) keeps its digits: "0.0 s" read as no wait at all.
  const waitedMs = refusal.waitedMs;
  const seconds = (waitedMs / 1000).toFixed(waitedMs < 100 ? 3 : waitedMs < 10_000 ? 1 : 0);
  const bound = refusal.isTotalBound === true ? "the rest of routing.total_timeout_ms" : "routing.queue_timeout_ms";
  return ` It waited ${seconds} s in the gateway's queue (${bound}) and none freed up.`;
}

/** Says that paid candidates were left out on purpose, so a client does not wonder why they were not used. */
function paidText(plan: RoutePlan): string {
  const skips = plan.skipped.filter((skip) => skip.cause === "paid");
  if (skips.length === 0) return "";
  // The skip's reason says whose rule it was: the gateway's routing.paid, or the client's own `paid`.
  const rule = skips[0]?.reason === CLIENT_PAID_NEVER_REASON ? "this client's paid: never" : "routing.paid: never";
  return ` ${skips.length} paid candidate${skips.length === 1 ? " was" : "s were"} not tried (${rule}).`;
}

/** A candidate's refusal kept for the client, in case no other candidate answers. */
export interface KeptRefusal {
  readonly verdict: Verdict & { kind: "rejected" };
  /** The attempt that was refused: where the refusal came from (`error.metadata`). */
  readonly report: AttemptReport;
}

/**
 * Which of two refusals the client gets when no candidate answers: a moderation refusal (the input was flagged:
 * OpenRouter's 403 with its reasons) before any other, else the first. The moderation one is the refusal a client can
 * act on (the words to change, or a model without moderation to ask for); another candidate's 404 or refused
 * parameter is about that candidate, and says nothing of why this input was not served (docs/errors.md).
 */
export function refusalToReturn(kept: KeptRefusal | undefined, next: KeptRefusal): KeptRefusal {
  if (kept === undefined) return next;
  return isModeration(next.verdict) && !isModeration(kept.verdict) ? next : kept;
}

/** As classify-response.ts reads one: a 403 whose metadata is a moderation's. */
function isModeration(verdict: Verdict & { kind: "rejected" }): boolean {
  return verdict.status === 403 && verdict.error.flaggedFor !== undefined;
}

export function rejectedError(
  verdict: Verdict & { kind: "rejected" },
  /** The attempt that was refused: where the refusal came from (`error.metadata`). */
  attempt: AttemptReport | undefined,
  /** The gateway's one redaction (FailoverServices.redact). */
  redact: (text: string) => string,
): UpstreamRequestError {
  // Upstreams echo the key they were sent ("Incorrect API key provided: sk-..."), in any field; every one of them
  // goes to the client. Otherwise the message is the upstream's own, unchanged (clients match these messages);
  // where it came from goes in `error.metadata` and the x-gateway-provider / x-gateway-model headers.
  // A provider behind an aggregator (OpenRouter) is named, and the aggregator with it: "Groq (via openrouter): ...".
  const message = redact(describedMessage(verdict.error, attempt?.provider));
  const details: { status: number; type?: string; code?: string } = { status: verdict.status };
  if (verdict.error.type !== undefined) details.type = redact(verdict.error.type);
  if (verdict.error.code !== undefined) details.code = redact(verdict.error.code);
  const options: GatewayErrorOptions = verdict.error.param === undefined ? {} : { param: redact(verdict.error.param) };
  if (attempt !== undefined) {
    options.metadata = { provider: attempt.provider, model: attempt.model, raw: redact(verdict.raw) };
  }
  return new UpstreamRequestError(message, details, options);
}

/**
 * `text` ended with a full stop, unless it ends its sentence already (an upstream's message often does, a Chinese
 * provider's with `。`, `！` or `？`) or with the `…` of a reason cut at MAX_SHOWN_REASON_CHARS.
 */
function sentence(text: string): string {
  // Escaped: the bundle is ASCII only (bin/build.js refuses other characters: V8 would hold the snapshot script as
  // two-byte text).
  return /[.!?\u2026\u3002\uff01\uff1f]$/u.test(text) ? text : `${text}.`;
}
