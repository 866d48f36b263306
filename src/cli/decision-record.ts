// STOPGAP until the request pipeline publishes RequestRecords itself: builds a record from the routing decision
// the current forwarding handler emits, so that metrics, the request log and the dashboard see real traffic.
// It lacks what the decision does not carry (client protocol beyond the endpoint, stream flag, tokens, time to
// first token). Delete this file when `gateway.onRecord` exists.
import type { Outcome } from "../errors/outcomes.ts";
import type { ClientProtocol, RequestRecord } from "../observability/request-record.ts";
import type { GatewayRuntime, RouteDecision } from "../pipeline/gateway-runtime.ts";

const PROTOCOL_BY_ENDPOINT: Readonly<Record<string, ClientProtocol>> = {
  chat: "openai-chat",
  completions: "openai-completions",
  embeddings: "openai-embeddings",
};

export function recordFromDecision(decision: RouteDecision, runtime: GatewayRuntime): RequestRecord {
  const deployments = new Map(runtime.snapshot.catalog.deployments.map((deployment) => [deployment.key, deployment]));
  const describe = (key: string) => {
    const deployment = deployments.get(key);
    return {
      deploymentKey: key,
      provider: deployment?.provider.settings.name ?? key.split("/")[0] ?? key,
      model: deployment?.model.id ?? key.slice(key.indexOf("/") + 1),
      publicName: deployment?.model.publicName ?? key.slice(key.indexOf("/") + 1),
    };
  };
  const served = decision.servedBy === undefined ? undefined : describe(decision.servedBy);
  const attempts = decision.attempts.map((attempt) => ({
    provider: attempt.provider,
    model: attempt.model,
    deploymentKey: attempt.deploymentKey,
    role: "primary" as const,
    status: attempt.status,
    outcome: attempt.outcome as Outcome,
    reason: attempt.reason,
    startedAtMs: attempt.startedAtMs,
    durationMs: attempt.durationMs,
  }));
  const lastOutcome = attempts.at(-1)?.outcome;
  const outcome: Outcome =
    decision.status < 400 ? "success" : decision.status === 499 ? "client_aborted" : (lastOutcome ?? "rejected");
  return {
    id: decision.requestId,
    startedAtMs: runtime.clock.now() - decision.durationMs,
    endpoint: decision.endpoint,
    clientProtocol: PROTOCOL_BY_ENDPOINT[decision.endpoint] ?? "openai-chat",
    requestedModel: decision.requested,
    isStream: false,
    candidates: decision.candidates.map((candidate) => ({ ...describe(candidate.key), score: candidate.score })),
    skips: [
      ...decision.skipped.map((skip) => {
        const { publicName: _publicName, ...where } = describe(skip.key);
        return { ...where, phase: "plan" as const, cause: skip.cause, reason: skip.reason };
      }),
      ...decision.attemptSkips.map((skip) => {
        const { publicName: _publicName, ...where } = describe(skip.deploymentKey);
        return {
          ...where,
          phase: "attempt" as const,
          cause: "attempt",
          reason: skip.reason,
          ...(skip.untilMs === undefined ? {} : { untilMs: skip.untilMs }),
        };
      }),
    ],
    attempts,
    continuations: [],
    queueWaitMs: 0,
    ...(served === undefined
      ? {}
      : { servedBy: { deploymentKey: served.deploymentKey, provider: served.provider, model: served.model } }),
    tokensIn: 0,
    tokensOut: 0,
    status: decision.status,
    outcome,
    timeToHeadersMs: decision.durationMs,
    durationMs: decision.durationMs,
  };
}
