// The one forwarding handler: parse -> plan -> forward (failover) -> answer as JSON or relay the stream.
// Every proxied endpoint is this handler with a different EndpointSpec.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { ModelKind } from "../config/types.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { countTextTokens, type PromptFacts } from "../limits/token-estimate.ts";
import { createContinuationSource } from "../pipeline/continuation-source.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import { type RelayResult, relayStream } from "../streaming/relay-stream.ts";
import { ClientAbortedError, type ForwardOutcome, type ForwardTrace } from "../upstream/forward.ts";
import { parseBody } from "./request-body.ts";

export interface EndpointSpec {
  readonly name: string;
  /** Path below the provider's base URL. */
  readonly upstreamPath: string;
  readonly kind: ModelKind;
  readonly schema: z.ZodType;
  readonly supportsStream: boolean;
  /** Prompt size and content facts for budgets and fit checks. */
  estimate(body: Record<string, unknown>): PromptFacts;
}

/** Malformed events skipped in one stream before it counts as broken. */
const MAX_MALFORMED_EVENTS = 3;

export function forwardingHandler(spec: EndpointSpec, runtime: GatewayRuntime) {
  return async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const startedAtMs = runtime.clock.now();
    const body = parseBody(spec.schema, request.body) as Record<string, unknown> & {
      model: string;
      models?: string[];
      stream?: boolean;
    };
    const snapshot = runtime.snapshot;
    const isStream = spec.supportsStream && body.stream === true;
    const prompt = spec.estimate(body);
    const stickyTtlMs = snapshot.config.routing.stickyTtlMs;
    const sessionHeader = request.headers["x-session-id"];
    const sessionKey =
      stickyTtlMs <= 0
        ? undefined
        : typeof sessionHeader === "string" && sessionHeader !== ""
          ? `${spec.name}:session:${sessionHeader}`
          : typeof body.user === "string" && body.user !== ""
            ? `${spec.name}:user:${body.user}`
            : undefined;
    const maxOutputTokens = requestedOutputTokens(body);
    const clientGone = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) clientGone.abort();
    };
    reply.raw.on("close", onClose);
    const plan = await runtime.planOrQueue(
      {
        model: body.model,
        fallbackModels: body.models ?? [],
        kind: spec.kind,
        needsTools: Array.isArray(body.tools) && body.tools.length > 0,
        needsVision: prompt.hasImages,
        needsJsonSchema: isJsonSchemaRequest(body.response_format),
        requiredContextTokens: prompt.promptTokens + maxOutputTokens,
        budgetTokens: prompt.promptTokens + maxOutputTokens,
        maxOutputTokens,
        stickyDeploymentKey: sessionKey === undefined ? undefined : runtime.sticky.get(sessionKey),
      },
      clientGone.signal,
      snapshot,
    );

    const trace: ForwardTrace = { attempts: [], skips: [] };
    let outcome: ForwardOutcome;
    try {
      outcome = await runtime.forward(
        plan,
        {
          endpointPath: spec.upstreamPath,
          body,
          isStream,
          signal: clientGone.signal,
          trace,
          promptTokens: prompt.promptTokens,
          maxOutputTokens,
        },
        snapshot,
      );
    } catch (error) {
      reply.raw.off("close", onClose);
      if (error instanceof ClientAbortedError) {
        emit(runtime, request, spec, plan, trace, 499, undefined, startedAtMs);
        reply.hijack();
        reply.raw.destroy();
        return;
      }
      if (sessionKey !== undefined) runtime.sticky.forget(sessionKey);
      const gatewayError = toGatewayError(error);
      emit(runtime, request, spec, plan, trace, gatewayError.status, undefined, startedAtMs);
      throw gatewayError;
    }
    const { result, attempts } = outcome;
    const deployment = result.deployment;
    if (sessionKey !== undefined) runtime.sticky.remember(sessionKey, deployment.key, stickyTtlMs);
    const gatewayHeaders = {
      "x-gateway-provider": deployment.provider.settings.name,
      "x-gateway-model": deployment.model.id,
      "x-gateway-attempts": String(attempts.length),
    };

    if (result.kind === "json") {
      reply.raw.off("close", onClose);
      emit(runtime, request, spec, plan, trace, result.status, deployment.key, startedAtMs);
      reply.code(result.status).headers(gatewayHeaders).type("application/json").send(result.bodyText);
      return;
    }

    reply.hijack();
    // `onClose` stays on for the relay: a continuation is opened with `clientGone.signal`, and a client that
    // leaves while one is being opened must abort it (or that upstream call and its slot outlive the client).
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "x-request-id": request.id,
      ...gatewayHeaders,
    });
    let relayed: RelayResult;
    try {
      const isContinuable = spec.name === "chat" && (body.n === undefined || body.n === null || body.n === 1);
      relayed = await relayStream(result.stream, reply.raw, {
        maxDurationMs: snapshot.config.routing.maxStreamDurationMs,
        maxMalformedEvents: MAX_MALFORMED_EVENTS,
        shouldStripUsage: result.isUsageInjected,
        promptTokens: prompt.promptTokens,
        countTokens: countTextTokens,
        ...(isContinuable
          ? {
              continuation: createContinuationSource({
                runtime,
                snapshot,
                plan,
                body,
                endpointPath: spec.upstreamPath,
                promptTokens: prompt.promptTokens,
                maxOutputTokens,
                signal: clientGone.signal,
                firstDeployment: deployment,
                onLog: (fields, message) => request.log.warn(fields, message),
              }),
            }
          : {}),
        onMalformedEvent: (data) =>
          request.log.warn(
            { provider: deployment.provider.settings.name, model: deployment.model.id, sample: data.slice(0, 120) },
            "skipped a malformed stream event",
          ),
        onContinuation: (record) =>
          request.log.warn(
            { ...record, failed: deployment.key },
            "stream continued on another upstream after a mid-stream failure",
          ),
      });
    } finally {
      reply.raw.off("close", onClose);
      // The concurrency slot is held for the stream's whole life and freed on every path.
      runtime.budgets.release(result.reservation);
    }
    const firstContinuation = relayed.continuations[0];
    if (firstContinuation !== undefined) {
      // The first upstream was cut: charge what it actually produced (estimated), not the combined answer.
      const firstPart = relayed.deliveredText.slice(0, firstContinuation.afterChars);
      runtime.budgets.reconcile(
        result.reservation,
        prompt.promptTokens + countTextTokens(firstPart),
        runtime.clock.now(),
      );
    } else if (relayed.usage !== undefined) {
      runtime.budgets.reconcile(
        result.reservation,
        relayed.usage.promptTokens + relayed.usage.completionTokens,
        runtime.clock.now(),
      );
    }
    const durationMs = runtime.clock.now() - result.stream.startedAtMs;
    if (relayed.isFirstSegmentSuccess) {
      runtime.stats.recordSuccess(
        deployment.key,
        durationMs,
        relayed.usage?.promptTokens ?? 0,
        relayed.usage?.completionTokens ?? 0,
      );
      runtime.availability.recordSuccess(deployment.key);
    } else if (relayed.end !== "client_aborted" || firstContinuation !== undefined) {
      // A failed first segment is not a completion, even when a continuation rescued the answer.
      runtime.stats.recordFailure(deployment.key);
      runtime.availability.recordFailure(deployment.key);
      runtime.recordHealth(deployment, false, durationMs);
      request.log.warn(
        {
          provider: deployment.provider.settings.name,
          model: deployment.model.id,
          end: relayed.end,
          reason: relayed.reason,
        },
        "stream ended with an error",
      );
    } else {
      runtime.availability.releaseProbe(deployment.key);
    }
    emit(
      runtime,
      request,
      spec,
      plan,
      trace,
      relayed.isSuccess ? 200 : relayed.isClientGone ? 499 : 502,
      deployment.key,
      startedAtMs,
    );
  };
}

function requestedOutputTokens(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

function isJsonSchemaRequest(responseFormat: unknown): boolean {
  return (
    responseFormat !== null &&
    typeof responseFormat === "object" &&
    (responseFormat as { type?: unknown }).type === "json_schema"
  );
}

function emit(
  runtime: GatewayRuntime,
  request: FastifyRequest,
  spec: EndpointSpec,
  plan: RoutePlan,
  trace: ForwardTrace,
  status: number,
  servedBy: string | undefined,
  startedAtMs: number,
): void {
  const decision = {
    requestId: request.id,
    endpoint: spec.name,
    requested: plan.requested,
    candidates: plan.candidates.map((candidate) => ({ key: candidate.deployment.key, score: candidate.score })),
    skipped: plan.skipped.map((skip) => ({ key: skip.deployment.key, cause: skip.cause, reason: skip.reason })),
    attempts: trace.attempts,
    attemptSkips: trace.skips,
    status,
    servedBy,
    durationMs: runtime.clock.now() - startedAtMs,
  };
  runtime.emitDecision(decision);
}
