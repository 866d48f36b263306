// The one request pipeline, independent of the HTTP framework: validate -> plan (and queue) -> forward with
// failover -> a JSON answer, or a stream of chunks that the relay continues on another upstream when it breaks.
// Every protocol front door (server/) is an adapter around `handleRequest`: request in, result out. Each request
// leaves exactly one record (record-builder.ts), published when it ends; the recorder applies every outcome.
import {
  ClientAbortedError,
  type GatewayError,
  InvalidRequestError,
  RateLimitedError,
  UpstreamOverloadedError,
} from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { chatToolsForUpstream } from "../protocols/chat-tools-upstream.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import { stickySessionKey } from "../router/sticky-sessions.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { AttemptSkip, ForwardOutcome, ForwardTrace, JsonResult } from "../upstream/forward-types.ts";
import { answerText } from "./answer-text.ts";
import { audioAnswer } from "./audio-answer.ts";
import { checkedLineOf, deferredLine } from "./batch-line-pipeline.ts";
import {
  answerCacheKey,
  cachedAnswer,
  cachedStream,
  keepAnswer,
  keepingStream,
  lookUpAnswer,
  notCachedError,
} from "./cached-answers.ts";
import { chunkedServing } from "./chunked-serving.ts";
import { chargeClient } from "./client-budget.ts";
import { withClientToolNames } from "./client-tool-names.ts";
import { truncatedToFit } from "./context-truncation.ts";
import { type ChunkedOutcome, embeddingsChunkSize, wholeBatchPlan } from "./embeddings-chunks.ts";
import { forwardIfChunked } from "./embeddings-token-chunks.ts";
import type { EndpointSpec } from "./endpoints.ts";
import { forwardRequestOf } from "./forward-request.ts";
import type { GatewayRuntime, PlannedRoute } from "./gateway-runtime.ts";
import { cutReason } from "./open-requests.ts";
import {
  type JsonAnswer,
  type PipelineRequest,
  type PipelineResult,
  publish,
  publishOrHold,
  type RequestContext,
  type RequestFacts,
} from "./pipeline-types.ts";
import { planRequest, requestFactsOf } from "./plan-request.ts";
import { RecordBuilder } from "./record-builder.ts";
import { publishRefusal, refusalEnding } from "./refusal.ts";
import { shorterAfterRefusals } from "./refused-context.ts";
import { parseBody } from "./request-body.ts";
import { streamAnswer } from "./stream-answer.ts";

export type {
  AudioAnswer,
  JsonAnswer,
  PipelineResult,
  RequestContext,
  StreamAnswer,
  StreamEnding,
} from "./pipeline-types.ts";
// For server/route-records.ts: refusal.ts as a dynamic import of its own broke the bundle's compile cache.
export { publishRefusal } from "./refusal.ts";
export { publishRouteRecord } from "./route-record.ts";

/**
 * Serves one request. Throws a GatewayError when no answer can be given (the adapter renders it in its
 * protocol), or ClientAbortedError when the client left first.
 */
export async function handleRequest(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  rawBody: unknown,
  context: RequestContext,
): Promise<PipelineResult> {
  const adapted = endpoint.adaptsChatTools === true ? chatToolsForUpstream(rawBody) : undefined;
  if (adapted === undefined) return serveRequest(runtime, endpoint, rawBody, context);
  const result = await serveRequest(runtime, endpoint, adapted.body, context);
  return adapted.names === undefined ? result : withClientToolNames(result, adapted.names);
}

async function serveRequest(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  rawBody: unknown,
  context: RequestContext,
): Promise<PipelineResult> {
  const startedAtMs = context.receivedAtMs ?? runtime.clock.now();
  const checked = checkedLineOf(endpoint, rawBody, context);
  const given = checked ?? { body: validated(runtime, endpoint, rawBody, context, startedAtMs), facts: undefined };
  const fitted = truncatedToFit(runtime, endpoint, given, context);
  const { body, facts } = fitted;
  const prepared = prepare(runtime, endpoint, body, fitted.context, startedAtMs, facts);
  if (context.batchId !== undefined) prepared.record.inBatch(context.batchId);
  if (prepared.snapshot.config.log.content) recordRequestContent(prepared);
  if (context.client !== undefined) {
    // Awaited only when the ledger answers later (Redis): a named client without budgets costs no extra turn.
    const charging = chargeClientOrRefuse(prepared);
    if (charging !== undefined) await charging;
  }
  const looked = lookUpAnswer(prepared);
  const cached = looked instanceof Promise ? await looked : looked;
  if (cached !== undefined) {
    const given = cached.form === "sse" ? cachedStream(prepared, cached) : cachedAnswer(prepared, cached);
    if (given !== undefined) return given;
  }
  if (context.cacheDirective?.isOnlyIfCached === true) throw refused(prepared, notCachedError(prepared));
  const trace: ForwardTrace = { attempts: [], skips: [] };
  let request = prepared;
  let plan: PlannedRoute["plan"];
  let outcome: ForwardOutcome | ChunkedOutcome | undefined;
  let rounds = 0;
  let hasSplitAfterRefusals = false;
  const refusalRounds = { count: 0 };
  do {
    let planned: PlannedRoute;
    try {
      planned = await planRequest(request);
    } catch (error) {
      request.record.attempted(trace.attempts, trace.skips, "primary");
      throw deferredLine(request, error, trace.attempts.length) ?? refused(request, error);
    }
    plan = planned.plan;
    // Served on the config of now (it may have waited across a reload): its answer is kept under that config's key.
    if (planned.snapshot !== request.snapshot) {
      const snapshot = planned.snapshot;
      request = { ...request, snapshot, cacheKey: answerCacheKey(snapshot, endpoint, request.body, context) };
    }
    const skipsBefore = trace.skips.length;
    const attemptsBefore = trace.attempts.length;
    rounds += 1;
    let chunked: Promise<ChunkedOutcome> | undefined;
    try {
      chunked = forwardIfChunked(request, plan, trace, startedAtMs);
      outcome =
        chunked === undefined
          ? await runtime.forward(
              wholeBatchPlan(request, plan, trace),
              forwardRequestOf(request, planned, trace, startedAtMs),
              request.snapshot,
            )
          : await chunked;
    } catch (error) {
      // Every candidate refused the batch for its size and said how many it takes (just learned): sent in chunks.
      if (chunked === undefined && !hasSplitAfterRefusals && embeddingsChunkSize(request, plan) !== undefined) {
        hasSplitAfterRefusals = true;
        continue;
      }
      // `truncation: "auto"` refused as too long after all: shorter, planned and failed over again (refused-context.ts).
      const shorter = shorterAfterRefusals(
        request,
        trace.attempts.slice(attemptsBefore),
        trace.attempts.length,
        refusalRounds,
        error,
      );
      if (shorter !== undefined) request = shorter;
      else if (!mayQueueAgain(request, plan, trace.skips.slice(skipsBefore), trace.attempts.length, rounds, error)) {
        request.record.attempted(trace.attempts, trace.skips, "primary");
        throw deferredLine(request, error, trace.attempts.length) ?? failed(request, error);
      }
    }
  } while (outcome === undefined);
  request.record.attempted(trace.attempts, trace.skips, "primary");
  const { result } = outcome;
  const deployment = result.deployment;
  if (request.sessionKey !== undefined) {
    runtime.sticky.remember(request.sessionKey, deployment.key, request.snapshot.config.routing.stickyTtlMs);
  }
  const { cost, chunks, chunkHeaders } = chunkedServing(outcome);
  request.record.served(deployment.key, deployment.provider.settings.name, deployment.model.id, cost, chunks);
  const headers: Record<string, string> = {
    "x-gateway-provider": deployment.provider.settings.name,
    "x-gateway-model": deployment.model.id,
    "x-gateway-attempts": String(outcome.attempts.length),
    // Says whether this answer cost money (a paid model answered: routing.paid is `last_resort` or `allowed`).
    "x-gateway-cost": cost,
  };
  if (chunks !== undefined) Object.assign(headers, chunkHeaders); // not spread: a copy per answer, for chunks only
  // A batch sent in chunks: their usage summed (each chunk's was charged by its attempt).
  const usage = "usage" in outcome ? outcome.usage : outcome.attempts.at(-1)?.usage;
  if (result.kind === "json") return jsonAnswer(request, result, headers, usage);
  if (result.kind === "audio") return audioAnswer(request, result, headers);
  const answer = streamAnswer(request, plan, result, headers);
  return keepingStream(request, answer, result);
}

/**
 * A plan's candidate can be taken between planning and its reservation: by another replica (a shared budget in
 * Redis is only known once its reserve answers), or by a request planned in the same turn. With queueing on, such
 * a request goes back to the queue instead of getting a 429, as long as no upstream attempt was made (an attempt
 * that was refused already cost the upstream a request) and time is left; the plan then sees the denial (cached
 * until its retry time) and waits its turn.
 */
function mayQueueAgain(
  request: PipelineRequest,
  plan: RoutePlan,
  newSkips: readonly AttemptSkip[],
  attemptCount: number,
  rounds: number,
  error: unknown,
): boolean {
  const { runtime, snapshot, context } = request;
  const { queueTimeoutMs, totalTimeoutMs } = snapshot.config.routing;
  return (
    (error instanceof RateLimitedError || error instanceof UpstreamOverloadedError) &&
    queueTimeoutMs > 0 &&
    // A batch line never queues (plan-request.ts): its runner waits the 429's time off its slot.
    context.batchId === undefined &&
    // Only when this round's plan had a candidate that its reservation then refused: a plan without candidates
    // (the queue full, its time out, shutting down) is answered, or the loop would spin without waiting.
    plan.candidates.length > 0 &&
    newSkips.some((skip) => skip.isLimit === true) &&
    attemptCount === 0 &&
    rounds < MAX_QUEUE_ROUNDS &&
    !runtime.isShuttingDown &&
    !context.signal.aborted &&
    runtime.clock.now() < request.record.startedAtMs + totalTimeoutMs
  );
}

/** Rounds of plan, reserve refused, queue again: a bound on a loop whose every round is a shared reserve. */
const MAX_QUEUE_ROUNDS = 20;

/** The body, validated; a body that fails validation is refused with its record published (refusal.ts). */
function validated(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  rawBody: unknown,
  context: RequestContext,
  startedAtMs: number,
): PipelineRequest["body"] {
  try {
    const problem = context.cacheDirective?.problem;
    if (problem !== undefined) throw new InvalidRequestError(problem.message, { param: problem.header });
    return parseBody(endpoint.schema, rawBody) as PipelineRequest["body"];
  } catch (error) {
    throw publishRefusal(
      runtime,
      {
        requestId: context.requestId,
        endpoint: endpoint.name,
        clientProtocol: context.clientProtocol,
        startedAtMs,
        body: rawBody,
        supportsStream: endpoint.supportsStream,
        client: context.client,
        trace: context.trace,
      },
      error,
    );
  }
}

function prepare(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  body: PipelineRequest["body"],
  context: RequestContext,
  startedAtMs: number,
  facts: RequestFacts | undefined,
): PipelineRequest {
  const snapshot = runtime.snapshot;
  const isStream = endpoint.supportsStream && (endpoint.isStreamAsked?.(body) ?? body.stream === true);
  const stickyTtlMs = snapshot.config.routing.stickyTtlMs;
  const session =
    stickyTtlMs <= 0
      ? undefined
      : context.sessionId !== undefined && context.sessionId !== ""
        ? { kind: "session" as const, id: context.sessionId }
        : typeof body.user === "string" && body.user !== ""
          ? { kind: "user" as const, id: body.user }
          : undefined;
  const sessionKey = session === undefined ? undefined : stickySessionKey(endpoint.name, context.client, session);
  return {
    runtime,
    snapshot,
    endpoint,
    body,
    context,
    ...(facts ?? requestFactsOf(endpoint, body, isStream)),
    isStream,
    sessionKey,
    record: new RecordBuilder(runtime.clock, {
      id: context.requestId,
      endpoint: endpoint.name,
      clientProtocol: context.clientProtocol,
      requestedModel: body.model,
      isStream,
      startedAtMs,
      ...(context.client === undefined ? {} : { client: context.client }),
      trace: context.trace,
    }),
    clientCharge: { reservation: undefined },
    cacheKey: answerCacheKey(snapshot, endpoint, body, context),
  };
}

/** The client's own budgets (client-budget.ts); over one, refused with its record published. Async when the ledger is. */
function chargeClientOrRefuse(request: PipelineRequest): Promise<void> | undefined {
  let charging: void | Promise<void>;
  try {
    charging = chargeClient(
      request.runtime,
      request.snapshot,
      request.context.client,
      request.prompt.promptTokens,
      request.clientCharge,
      request.endpoint.upstreamPath === "/embeddings" ? request.body.input : undefined,
    );
  } catch (error) {
    throw deferredLine(request, error, 0) ?? refused(request, error);
  }
  return charging instanceof Promise
    ? charging.catch((error: unknown) => {
        throw deferredLine(request, error, 0) ?? refused(request, error);
      })
    : undefined;
}

/** `log.content: true`: what the client sent (messages, prompt, input, a rerank's query and documents). */
function recordRequestContent(request: PipelineRequest): void {
  const { body } = request;
  const rerank = body.query === undefined ? undefined : { query: body.query, documents: body.documents };
  request.record.content({ request: body.messages ?? body.prompt ?? body.input ?? rerank });
}

function jsonAnswer(
  request: PipelineRequest,
  result: JsonResult,
  headers: Record<string, string>,
  usage: TokenUsage | undefined,
): JsonAnswer {
  // Without a usage report: its attempt's estimate (upstream/answer-usage.ts), as /stats and the budgets count it.
  request.record.usage(usage, result.isUsageEstimated === true);
  request.record.headersSent();
  const responseText = request.snapshot.config.log.content ? loggedAnswerText(request, result) : undefined;
  if (responseText !== undefined) request.record.content({ responseText });
  const releaseRecord = publishOrHold(request, result.status);
  keepAnswer(request, result, headers);
  return {
    kind: "json",
    api: result.api,
    status: result.status,
    bodyText: result.bodyText,
    contentType: result.contentType,
    bytes: result.bytes,
    headers,
    releaseRecord,
  };
}

/**
 * `log.content: true`: the answer's text for the record. Audio (`bytes`) and images (base64 in `data`, megabytes
 * each) are never kept in a record: `log.content` keeps what was asked for (the request's `input` or `prompt`), and
 * an image answer is not parsed a second time for it.
 */
function loggedAnswerText(request: PipelineRequest, result: JsonResult): string | undefined {
  if (result.bytes !== undefined || request.endpoint.kind === "image") return undefined;
  return result.contentType === undefined ? answerText(result.bodyText) : result.bodyText;
}

/**
 * Records a request refused before any attempt (unknown model, no candidate fits, the queue ran out, the client
 * left while queued) and returns the error to throw. Like every refusal it changes nothing else (docs/observability.md).
 */
function refused(request: PipelineRequest, error: unknown): GatewayError {
  const cut = cutOf(request, error);
  if (cut !== undefined) return cut;
  const ending = refusalEnding(error);
  publish(request, ending.error.status, ending.outcome, ending.code);
  return ending.error;
}

/** Records a request that got no answer and returns the error to throw. */
function failed(request: PipelineRequest, error: unknown): GatewayError {
  const cut = cutOf(request, error);
  if (cut !== undefined) return cut;
  if (error instanceof ClientAbortedError) {
    publish(request, error.status, "client_aborted");
    return error;
  }
  if (request.sessionKey !== undefined) request.runtime.sticky.forget(request.sessionKey);
  const gatewayError = toGatewayError(error);
  publish(request, gatewayError.status, request.record.lastAttemptOutcome() ?? "rejected", gatewayError.code);
  return gatewayError;
}

/**
 * A request the gateway ended at its exit (open-requests.ts) reads as a client that left everywhere below; its record
 * says what happened instead (nobody blamed, the status and code of the error the client is answered with).
 */
function cutOf(request: PipelineRequest, error: unknown): GatewayError | undefined {
  const cut = error instanceof ClientAbortedError ? cutReason(request.context.signal) : undefined;
  if (cut !== undefined) publish(request, cut.status, "client_aborted", cut.code);
  return cut;
}
