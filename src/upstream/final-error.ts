// The error a client gets when no attempt produced an answer: a context-length 400 when only context was the
// problem, a 429 when every candidate is rate-limited or cooling, a 504 when only timeouts, else a 502; and an
// upstream's own 4xx passed on when it rejected the request itself. Each lists the attempts, without secrets.
import {
  type AttemptSummary,
  type GatewayError,
  RateLimitedError,
  UpstreamRequestError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import { redactSecrets } from "../errors/redact.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { Verdict } from "./classify-response.ts";
import type { AttemptReport, AttemptSkip } from "./forward-types.ts";

export function finalError(
  plan: RoutePlan,
  attempts: readonly AttemptReport[],
  skips: readonly AttemptSkip[],
  lastContextError: Verdict | undefined,
  soonestAvailableMs: number | undefined,
  nowMs: number,
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
    return `${summary.provider}/${summary.model}: ${status}${summary.reason}`;
  });
  const detail = listed.length > 0 ? ` Attempts: ${listed.join("; ")}.` : "";
  const onlyContext = attempts.length > 0 && attempts.every((attempt) => attempt.outcome === "context_length");
  if (onlyContext && lastContextError?.kind === "context_length") {
    return new UpstreamRequestError(
      `The request does not fit the context window of any candidate.${detail}`,
      { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
      { param: "messages", attempts: summaries },
    );
  }
  const isRateLimitOnly = attempts.every(
    (attempt) => attempt.outcome === "rate_limited" || attempt.outcome === "invalid_key",
  );
  const hasRateLimited =
    attempts.some((attempt) => attempt.outcome === "rate_limited") ||
    plan.skipped.some((skip) => skip.cause === "cooldown" || skip.cause === "budget") ||
    skips.length > 0;
  if (isRateLimitOnly && hasRateLimited) {
    // The plan's view, refined by what attempt-time checks learned (a budget another replica used up).
    let soonestMs = soonestAvailableMs;
    for (const skip of skips) {
      if (skip.untilMs === undefined || !Number.isFinite(skip.untilMs)) continue;
      const waitMs = Math.max(0, skip.untilMs - nowMs);
      if (soonestMs === undefined || soonestMs === 0 || waitMs < soonestMs) soonestMs = waitMs;
    }
    const options =
      soonestMs === undefined ? { attempts: summaries } : { attempts: summaries, retryAfterMs: soonestMs };
    return new RateLimitedError(
      `Every candidate for \`${plan.requested}\` is rate-limited or cooling down${soonestMs === undefined ? "" : `; the first is available again in ${Math.ceil(soonestMs / 1000)} s`}.${detail}`,
      options,
    );
  }
  const failures = attempts.filter((attempt) => attempt.outcome !== "rate_limited");
  const isTimeoutOnly =
    failures.length > 0 &&
    failures.every((attempt) => attempt.outcome === "timeout" || attempt.outcome === "first_token_timeout");
  const message = `No upstream could serve \`${plan.requested}\`.${detail}`;
  return isTimeoutOnly
    ? new UpstreamTimeoutError(message, { attempts: summaries })
    : new UpstreamUnavailableError(message, { attempts: summaries });
}

export function rejectedError(
  verdict: Verdict & { kind: "rejected" },
  attempts: readonly AttemptReport[],
  secrets: readonly string[],
): UpstreamRequestError {
  const last = attempts[attempts.length - 1];
  // Upstreams echo the key they were sent ("Incorrect API key provided: sk-..."); this message goes to the client.
  const message = redactSecrets(verdict.error.message, secrets);
  const details: { status: number; type?: string; code?: string } = { status: verdict.status };
  if (verdict.error.type !== undefined) details.type = verdict.error.type;
  if (verdict.error.code !== undefined) details.code = verdict.error.code;
  return new UpstreamRequestError(
    last === undefined ? message : `${message} (from ${last.provider}/${last.model})`,
    details,
    verdict.error.param === undefined ? {} : { param: verdict.error.param },
  );
}
