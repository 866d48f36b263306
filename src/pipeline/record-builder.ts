// Builds a request's one record as the request goes (observability/request-record.ts): the plan, the queue
// wait, every attempt (primary and continuation), the stream's end, the final status.
import type { Clock } from "../clock.ts";
import type { Outcome } from "../errors/outcomes.ts";
import { describeRefusal } from "../limits/refused-features.ts";
import type {
  RecordedAttempt,
  RecordedCandidate,
  RecordedContent,
  RecordedContinuation,
  RecordedProtocol,
  RecordedSkip,
  RecordedTrace,
  RequestRecord,
} from "../observability/request-record.ts";
import { anthropicStatusOf } from "../protocols/messages/render-error.ts";
import { isLimitSkip, type RoutePlan } from "../router/plan-route.ts";
import type { SegmentEnd, TokenUsage } from "../streaming/relay-types.ts";
import type { TraceContext } from "../trace-context.ts";
import type { AttemptReport, AttemptSkip } from "../upstream/forward-types.ts";
import { failedAttemptTokens } from "../upstream/prompt-sent.ts";

/** A requested model name is client input: the record keeps a bounded prefix. */
const MAX_RECORDED_NAME_CHARS = 200;

export interface RecordStart {
  readonly id: string;
  readonly endpoint: string;
  readonly clientProtocol: RecordedProtocol;
  /** A request no model door served (RequestRecord.route); before `client`, which the file request log finds by. */
  readonly route?: string;
  readonly requestedModel: string;
  readonly isStream: boolean;
  readonly startedAtMs: number;
  /** The client's name (its key's `server.api_keys` entry); absent for an unnamed key or no key. */
  readonly client?: string;
  /** The request's trace (RequestContext.trace); its `traceState` is not kept. */
  readonly trace?: TraceContext | undefined;
}

export class RecordBuilder {
  readonly #clock: Clock;
  readonly #start: Omit<RecordStart, "trace">;
  readonly #trace: RecordedTrace | undefined;
  #candidates: RecordedCandidate[] = [];
  /** The last plan's skips: a request that went back to the queue is planned again, and its record says the last. */
  #planSkips: RecordedSkip[] = [];
  /** Candidates passed over at attempt time, in every round. */
  readonly #attemptSkips: RecordedSkip[] = [];
  /** In order; entries of an opened stream are replaced when its segment ends. */
  readonly #attempts: RecordedAttempt[] = [];
  readonly #reportIndex = new Map<AttemptReport, number>();
  readonly #continuations: RecordedContinuation[] = [];
  #queueWaitMs = 0;
  #servedBy: RequestRecord["servedBy"];
  #chunks: number | undefined;
  #usage: TokenUsage | undefined;
  #isUsageEstimated = false;
  #timeToHeadersMs: number | undefined;
  #timeToFirstTokenMs: number | undefined;
  #earlyCommitMs: number | undefined;
  #isAnswerNotKept = false;
  #responseBytes: number | undefined;
  #isPublished = false;
  #content: RecordedContent | undefined;
  #cache: RequestRecord["cache"];

  /** The batch the request is a line of (pipeline/batch-runner.ts); absent for a live request. */
  #batchId: string | undefined;

  constructor(clock: Clock, start: RecordStart) {
    this.#clock = clock;
    const { trace, ...rest } = start;
    this.#start = { ...rest, requestedModel: start.requestedModel.slice(0, MAX_RECORDED_NAME_CHARS) };
    this.#trace =
      trace === undefined
        ? undefined
        : {
            traceId: trace.traceId,
            spanId: trace.spanId,
            ...(trace.parentSpanId === undefined ? {} : { parentSpanId: trace.parentSpanId }),
            isSampled: trace.isSampled,
          };
  }

  /** Marks the record as a line of a batch (`batchId` in the record). */
  inBatch(batchId: string): void {
    this.#batchId = batchId;
  }

  get startedAtMs(): number {
    return this.#start.startedAtMs;
  }

  planned(plan: RoutePlan, queueWaitMs: number): void {
    this.#queueWaitMs += queueWaitMs;
    const all = plan.waitFor === undefined ? plan.candidates : [plan.waitFor, ...plan.candidates];
    // Built by assignment, in the record's key order: a conditional spread costs an object (and a copy) per field and
    // request (bench/README.md section 48).
    this.#candidates = all.map((candidate) => {
      const recorded: Writable<RecordedCandidate> = {
        deploymentKey: candidate.deployment.key,
        provider: candidate.deployment.provider.settings.name,
        model: candidate.deployment.model.id,
        publicName: candidate.deployment.model.publicName,
        score: candidate.score,
      };
      if (candidate.refusedFeature !== undefined) recorded.refusedFeature = describeRefusal(candidate.refusedFeature);
      return recorded;
    });
    this.#planSkips = [];
    for (const skip of plan.skipped) {
      const recorded: Writable<RecordedSkip> = {
        deploymentKey: skip.deployment.key,
        provider: skip.deployment.provider.settings.name,
        model: skip.deployment.model.id,
        phase: "plan",
        cause: skip.cause,
        reason: skip.reason,
      };
      if (skip.untilMs !== undefined && Number.isFinite(skip.untilMs)) recorded.untilMs = skip.untilMs;
      if (skip.cooldownCause !== undefined) recorded.cooldownCause = skip.cooldownCause;
      const isLimit = isLimitSkip(skip);
      if (isLimit !== undefined) recorded.isLimit = isLimit;
      this.#planSkips.push(recorded);
    }
  }

  /** Time spent sleeping for a better candidate that was cooling (the plan's `waitFor`). */
  waited(ms: number): void {
    this.#queueWaitMs += Math.max(0, ms);
  }

  /**
   * Attempts and the candidates passed over at attempt time. A continuation's skips are recorded too (phase
   * `continuation`): without them the record could not say why a broken stream went elsewhere, or ended.
   */
  attempted(
    reports: readonly AttemptReport[],
    skips: readonly AttemptSkip[],
    role: "primary" | "continuation",
    mode?: "prefill" | "replay",
  ): void {
    for (const report of reports) {
      if (this.#reportIndex.has(report)) continue;
      this.#reportIndex.set(report, this.#attempts.length);
      this.#attempts.push(recorded(report, role, mode));
    }
    for (const skip of skips) {
      const [provider = "", model = ""] = splitKey(skip.deploymentKey);
      const recorded: Writable<RecordedSkip> = {
        deploymentKey: skip.deploymentKey,
        provider,
        model,
        phase: role === "primary" ? "attempt" : "continuation",
        cause: "attempt",
        reason: skip.reason,
      };
      if (skip.untilMs !== undefined && Number.isFinite(skip.untilMs)) recorded.untilMs = skip.untilMs;
      if (skip.isLimit !== undefined) recorded.isLimit = skip.isLimit;
      this.#attemptSkips.push(recorded);
    }
  }

  /**
   * The stream an attempt opened has ended: the attempt's outcome becomes how its segment ended. `endedAtMs`: when
   * the segment stopped streaming, if it is settled later (the first one of a continued answer). `estimatedUsage`:
   * what the segment cost by the gateway's count, kept when the provider reported nothing (a segment that broke,
   * continued or not), so that each deployment's share of the answer is on its own attempt.
   */
  segmentEnded(
    report: AttemptReport,
    end: SegmentEnd,
    {
      endedAtMs = this.#clock.now(),
      estimatedUsage,
    }: { endedAtMs?: number | undefined; estimatedUsage?: TokenUsage | undefined } = {},
  ): void {
    const index = this.#reportIndex.get(report);
    if (index === undefined) return;
    const entry = this.#attempts[index];
    if (entry === undefined) return;
    this.#attempts[index] = {
      ...entry,
      outcome: end.outcome,
      reason: end.outcome === "success" ? entry.reason : end.reason,
      durationMs: endedAtMs - entry.startedAtMs,
      ...(end.usage !== undefined
        ? {
            tokensIn: end.usage.promptTokens,
            tokensOut: end.usage.completionTokens,
            // An upstream gateway's estimate, read deliberately (streaming/upstream-gateway-field.ts).
            ...(end.isUsageEstimated === true ? { isUsageEstimated: true as const } : {}),
          }
        : estimatedUsage !== undefined
          ? {
              tokensIn: estimatedUsage.promptTokens,
              tokensOut: estimatedUsage.completionTokens,
              isUsageEstimated: true as const,
            }
          : {}),
    };
  }

  continued(continuation: RecordedContinuation): void {
    this.#continuations.push(continuation);
  }

  /** `chunks`: an embeddings batch sent in that many chunks (embeddings-chunks.ts); the others name the last's. */
  served(deploymentKey: string, provider: string, model: string, cost: "free" | "paid", chunks?: number): void {
    this.#servedBy = { deploymentKey, provider, model, cost };
    this.#chunks = chunks;
  }

  /** What the answer cache had for it (`cache.enabled`; not set when the cache was not asked). */
  cache(result: "hit" | "miss"): void {
    this.#cache = result;
  }

  headersSent(): void {
    this.#timeToHeadersMs ??= this.#clock.now() - this.#start.startedAtMs;
  }

  /** The door could not keep the answer it sent (a Responses answer for `previous_response_id`). */
  answerNotKept(): void {
    this.#isAnswerNotKept = true;
  }

  /** The stream's head went out at `atMs`, before its answer started (`server.stream_keepalive_ms`). */
  committedEarly(atMs: number): void {
    this.#earlyCommitMs ??= atMs - this.#start.startedAtMs;
  }

  firstTokenSent(): void {
    this.#timeToFirstTokenMs ??= this.#clock.now() - this.#start.startedAtMs;
  }

  /** Relayed audio: how many of its bytes were written to the client. */
  responseBytes(bytes: number): void {
    this.#responseBytes = bytes;
  }

  /** The usage the client was told; `isEstimated`: the gateway's estimate, no upstream reported it. */
  usage(usage: TokenUsage | undefined, isEstimated = false): void {
    if (usage === undefined) return;
    this.#usage = usage;
    this.#isUsageEstimated = isEstimated;
  }

  /** Message content, only with `log.content: true` (the caller checks). */
  content(content: RecordedContent): void {
    this.#content = { ...this.#content, ...content };
  }

  /** Whether a stream had to be continued on another upstream (its chunks carry the splice). */
  get isContinued(): boolean {
    return this.#continuations.length > 0;
  }

  lastAttemptOutcome(): Outcome | undefined {
    return this.#attempts.at(-1)?.outcome;
  }

  /**
   * Completes the record, once; later calls return undefined (a request is recorded exactly once). `status`: the
   * gateway's; the record keeps the one its door answered with (an overload is 529 on the Messages door). A stream
   * whose head went out early (committedEarly, called first) got its failure in-band after a 200: recorded with the
   * error's status as on every door (the chat door's 503 for an overload), never a 529 its client was not sent.
   */
  finish(gatewayStatus: number, outcome: Outcome, errorCode?: string): RequestRecord | undefined {
    if (this.#isPublished) return undefined;
    this.#isPublished = true;
    const start = this.#start;
    const status =
      start.clientProtocol === "anthropic-messages" && this.#earlyCommitMs === undefined
        ? anthropicStatusOf(gatewayStatus, errorCode)
        : gatewayStatus;
    // By assignment, in the record's key order (what the request log stores): see `planned`.
    const record: Writable<Partial<RequestRecord>> = {
      ...start,
      candidates: this.#candidates,
      skips: [...this.#planSkips, ...this.#attemptSkips],
      attempts: this.#attempts,
      continuations: this.#continuations,
      queueWaitMs: this.#queueWaitMs,
    };
    // An object: after `candidates` (file-request-log-line.ts finds a client's records by what precedes it).
    if (this.#trace !== undefined) record.trace = this.#trace;
    // Not between `client` and `candidates`: the file request log finds a client's records by that pair.
    if (this.#cache !== undefined) record.cache = this.#cache;
    if (this.#servedBy !== undefined) record.servedBy = this.#servedBy;
    if (this.#chunks !== undefined) record.chunks = this.#chunks;
    if (this.#batchId !== undefined) record.batchId = this.#batchId;
    record.tokensIn = this.#usage?.promptTokens ?? 0;
    record.tokensOut = this.#usage?.completionTokens ?? 0;
    if (this.#isUsageEstimated) record.isUsageEstimated = true;
    record.status = status;
    if (errorCode !== undefined) record.errorCode = errorCode;
    record.outcome = outcome;
    if (this.#timeToHeadersMs !== undefined) record.timeToHeadersMs = this.#timeToHeadersMs;
    if (this.#timeToFirstTokenMs !== undefined) record.timeToFirstTokenMs = this.#timeToFirstTokenMs;
    if (this.#earlyCommitMs !== undefined) record.earlyCommitMs = this.#earlyCommitMs;
    if (this.#responseBytes !== undefined) record.responseBytes = this.#responseBytes;
    if (this.#isAnswerNotKept) record.isAnswerNotKept = true;
    record.durationMs = this.#clock.now() - start.startedAtMs;
    if (this.#content !== undefined) record.content = this.#content;
    return record as RequestRecord;
  }
}

function recorded(
  report: AttemptReport,
  role: "primary" | "continuation",
  mode?: "prefill" | "replay",
): RecordedAttempt {
  // By assignment, in the record's key order: see RecordBuilder `planned`.
  const attempt: Writable<RecordedAttempt> = {
    provider: report.provider,
    model: report.model,
    deploymentKey: report.deploymentKey,
    role,
  } as Writable<RecordedAttempt>;
  if (mode !== undefined) attempt.mode = mode;
  attempt.status = report.status;
  attempt.outcome = report.outcome;
  attempt.reason = report.reason;
  attempt.startedAtMs = report.startedAtMs;
  if (report.spanId !== undefined) attempt.spanId = report.spanId;
  if (report.headersMs !== undefined) attempt.headersMs = report.headersMs;
  if (report.firstTokenMs !== undefined) attempt.firstTokenMs = report.firstTokenMs;
  attempt.durationMs = report.durationMs;
  if (report.usage !== undefined) {
    attempt.tokensIn = report.usage.promptTokens;
    attempt.tokensOut = report.usage.completionTokens;
    if (report.isUsageEstimated === true) attempt.isUsageEstimated = true;
  }
  // A failed attempt's charge; an opened answer's is its segment's usage.
  if (report.outcome !== "success") {
    const charged = failedAttemptTokens(report);
    if (charged !== 0) attempt.chargedTokens = charged;
  }
  if (report.messageChanges !== undefined && report.messageOrder !== undefined) {
    attempt.messageOrder = report.messageOrder;
    attempt.messageChanges = report.messageChanges;
  }
  return attempt;
}

/** A record's object as it is built: its fields set one by one, then handed out read-only. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** Deployment keys are `provider/model`; the model part may itself contain slashes. */
function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return slash < 0 ? [key, ""] : [key.slice(0, slash), key.slice(slash + 1)];
}
