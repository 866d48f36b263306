// Rescuing a stream that broke after it started (issue: "streams that do not break").
//
// The remaining candidates of the original plan (and those it left out only for the moment: cooling down, over a
// budget), then, after a cut, the candidate that broke, are asked, best first, to continue the answer:
// 1. "prefill": the original messages plus the text delivered so far as a trailing assistant message, which
//    providers that support continuation extend (within what is left of the client's output limit). Candidates
//    configured with `prefill: false`, or that rejected a prefill before (learned, per provider+model), skip this
//    step.
// 2. "replay": if the prefill request is rejected (a 400/422), or prefill is off, the same candidate is asked the
//    original request again; its fresh answer is used only if it begins with the delivered text, which is then
//    dropped, so the client gets the rest exactly once. A fresh answer that diverges is abandoned (the relay
//    asks for the next candidate).
// A prefill rejection never becomes the client's error: when nothing can continue, the relay reports the
// original failure (the cut or stall).
import { ClientAbortedError, GatewayError } from "../errors/gateway-error.ts";
import type { StreamOutcome } from "../errors/outcomes.ts";
import { isRecord } from "../is-record.ts";
import { describeRefusal, type FeatureSizes } from "../limits/refused-features.ts";
import { countTextTokens } from "../limits/token-estimate.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RouteCandidate, RoutePlan } from "../router/plan-route.ts";
import type { RequestFeature } from "../router/request-features.ts";
import type {
  ContinuationSegment,
  ContinuationSource,
  OpeningBound,
  SegmentEnd,
  TokenUsage,
} from "../streaming/relay-types.ts";
import type { TraceContext } from "../trace-context.ts";
import type { AttemptReport, ForwardTrace, StreamResult } from "../upstream/forward-types.ts";
import type { GatewayRuntime, GatewaySnapshot } from "./gateway-runtime.ts";
import { estimatedContinuationUsage } from "./segment-usage.ts";

export interface ContinuationContext {
  readonly runtime: GatewayRuntime;
  readonly snapshot: GatewaySnapshot;
  readonly plan: RoutePlan;
  readonly body: Readonly<Record<string, unknown>>;
  readonly endpointPath: string;
  readonly promptTokens: number;
  /** The part of `promptTokens` that is reasoning sent back: not sent to a host that refused it (failover.ts). */
  readonly reasoningPromptTokens?: number | undefined;
  readonly maxOutputTokens: number;
  readonly signal: AbortSignal;
  /** The request's W3C trace: a continuation's attempts are sent a `traceparent` under it too. */
  readonly traceContext?: TraceContext | undefined;
  /** The deployment that served the first segment: asked last, and only after a cut (ContinuationFinder#self). */
  readonly firstDeployment: Deployment;
  /** What the request asks of a candidate, and its arrays' sizes: a candidate that refused them is not asked. */
  readonly features: readonly RequestFeature[];
  readonly featureSizes: FeatureSizes;
  onLog(fields: object, message: string): void;
  /**
   * Every continuation attempt (opened or not) and every candidate passed over (a limit, a cooldown), and how each
   * opened segment ended (with the gateway's estimate of its usage when the provider reported none), for the record.
   */
  onAttempts(trace: ForwardTrace, mode: "prefill" | "replay"): void;
  onSegmentEnd(
    report: AttemptReport,
    end: SegmentEnd,
    settled: { readonly estimatedUsage: TokenUsage | undefined; readonly endedAtMs: number | undefined },
  ): void;
}

/** One search for a continuation: its signal ends with the client or with the stream's time, whichever is first. */
interface Search {
  readonly signal: AbortSignal;
  /** The clock's ms when the stream's `max_stream_duration_ms` runs out: no wait for a candidate may pass it. */
  readonly untilMs: number;
}

type Opened = { kind: "stream"; result: StreamResult } | { kind: "rejected"; reason: string } | { kind: "failed" };

export function createContinuationSource(context: ContinuationContext): ContinuationSource {
  return new ContinuationFinder(context);
}

/** Walks the remaining candidates of the original plan, best first, each tried at most once per request. */
class ContinuationFinder implements ContinuationSource {
  readonly #context: ContinuationContext;
  readonly #tried: Set<string>;
  readonly #queue: RouteCandidate[];
  #isSelfAsked = false;
  /**
   * How the first segment (the one `firstDeployment` served) ended: the first failure `next` is told of. Whether that
   * deployment may be asked last depends on its own stream's end, not on the latest failure, which after a broken
   * continuation is another deployment's (its stall said nothing about the first one's health).
   */
  #firstOutcome: StreamOutcome | undefined;

  constructor(context: ContinuationContext) {
    this.#context = context;
    this.#tried = new Set([context.firstDeployment.key]);
    this.#queue = continuationCandidates(context.plan);
  }

  async next(
    failure: { outcome: StreamOutcome; reason: string; deliveredText: string },
    bound: OpeningBound,
  ): Promise<ContinuationSegment | undefined> {
    const context = this.#context;
    const search: Search = { signal: bound.signal, untilMs: context.runtime.clock.now() + bound.remainingMs };
    this.#firstOutcome ??= failure.outcome;
    for (;;) {
      if (search.signal.aborted) return undefined;
      const candidate = this.#queue.shift() ?? this.#self(this.#firstOutcome);
      if (candidate === undefined) return undefined;
      const { deployment } = candidate;
      if (this.#tried.has(deployment.key)) continue;
      this.#tried.add(deployment.key);
      if (this.#isRefusing(deployment)) continue;
      const acceptsPrefill = deployment.model.prefill !== false && !context.runtime.rejectsPrefill(deployment);
      if (acceptsPrefill && failure.deliveredText !== "") {
        const prefilled = withPrefill(context.body, failure.deliveredText);
        const spent = countTextTokens(failure.deliveredText);
        const opened = await this.#open(candidate, prefilled, "prefill", search, spent);
        if (opened.kind === "stream") return this.#segment(opened.result, "prefill", failure.deliveredText);
        if (opened.kind !== "rejected") continue;
        context.runtime.markPrefillRejected(deployment);
        context.onLog({ candidate: deployment.key, reason: opened.reason }, "prefill rejected; retrying without it");
      }
      const fresh = await this.#open(candidate, context.body, "replay", search);
      if (fresh.kind === "stream") return this.#segment(fresh.result, "replay", failure.deliveredText);
    }
  }

  /**
   * The last resort, once: the candidate that served the broken stream, when its connection broke (a cut, not a
   * stall, an error event or too many malformed events, which say that it is unwell). A connection that
   * breaks is often the network or a restarting upstream, and a gateway with one provider had nobody else to ask.
   * `outcome` is its own stream's end: before 2026-12-06 it was the latest failure's, so a continuation that stalled
   * kept a first deployment whose connection merely broke from being asked, and one that was cut let a first
   * deployment that had stalled be asked again.
   */
  #self(outcome: StreamOutcome): RouteCandidate | undefined {
    if (this.#isSelfAsked || outcome !== "stream_cut") return undefined;
    this.#isSelfAsked = true;
    this.#tried.delete(this.#context.firstDeployment.key);
    return { deployment: this.#context.firstDeployment, score: 0, group: 0 };
  }

  /**
   * Whether the candidate refused a feature of the request (a `stop` of this many entries) not long ago: it would refuse
   * the continuation too, and its 400 would be taken for a rejected prefill. Asked when its turn comes (it may have
   * been learned since the plan), with the request's sizes: a plan's candidates skipped for a moment (a cooldown) were
   * never checked, and a lesson about 8 entries was read for a `stop` of 2. Recorded as a continuation skip.
   */
  #isRefusing(deployment: Deployment): boolean {
    const { runtime, features, featureSizes } = this.#context;
    if (features.length === 0) return false;
    const refusal = runtime.refusedFeatures.refusalOf(deployment.key, features, runtime.clock.now(), featureSizes);
    if (refusal === undefined) return false;
    const skip = { deploymentKey: deployment.key, reason: `refused ${describeRefusal(refusal)}` };
    this.#context.onAttempts({ attempts: [], skips: [skip] }, "prefill");
    return true;
  }

  async #open(
    candidate: RouteCandidate,
    body: Readonly<Record<string, unknown>>,
    mode: "prefill" | "replay",
    search: Search,
    spentOutputTokens?: number,
  ): Promise<Opened> {
    const context = this.#context;
    const trace: ForwardTrace = { attempts: [], skips: [] };
    try {
      try {
        const now = await this.#forward(
          { ...NO_PLAN, candidates: [candidate] },
          body,
          trace,
          search.signal,
          spentOutputTokens,
        );
        if (now !== undefined) return { kind: "stream", result: now };
      } catch (error) {
        // A refusal of the request itself (a rejected prefill) is judged below; anything else may be a limit.
        if (error instanceof ClientAbortedError || isRequestRejection(error)) throw error;
      }
      // At a limit that frees within routing.max_wait_for_better_ms (a learned rps, a concurrency slot, a short
      // cooldown): a committed stream waits for it rather than ending in an error, as a plan waits for a better
      // candidate. Under load every candidate is often at its limit when a stream breaks.
      const skip = trace.skips.find((entry) => entry.deploymentKey === candidate.deployment.key && entry.isLimit);
      const untilMs = skip?.untilMs;
      const waitMs = untilMs === undefined ? Number.POSITIVE_INFINITY : untilMs - context.runtime.clock.now();
      // A wait past the stream's time would end in its duration error: the next candidate may have room now.
      if (
        untilMs === undefined ||
        waitMs > context.snapshot.config.routing.maxWaitForBetterMs ||
        untilMs >= search.untilMs
      ) {
        return { kind: "failed" };
      }
      const waitFor = { ...NO_PLAN, waitFor: { ...candidate, untilMs } };
      const later = await this.#forward(waitFor, body, trace, search.signal, spentOutputTokens);
      return later === undefined ? { kind: "failed" } : { kind: "stream", result: later };
    } catch (error) {
      if (error instanceof ClientAbortedError) return { kind: "failed" };
      if (isRequestRejection(error)) return { kind: "rejected", reason: error.message };
      return { kind: "failed" };
    } finally {
      context.onAttempts(this.#cutShort(trace, search), mode);
    }
  }

  /**
   * The trace as the record tells it: an attempt aborted because the stream's time ran out (the client is still
   * there) ended as `client_aborted`, which blames nobody, as it should, but its reason says why it really ended.
   */
  #cutShort(trace: ForwardTrace, search: Search): ForwardTrace {
    if (!search.signal.aborted || this.#context.signal.aborted) return trace;
    const reason = `abandoned: max_stream_duration_ms (${this.#context.snapshot.config.routing.maxStreamDurationMs} ms) ran out while the continuation was being opened`;
    return {
      skips: trace.skips,
      attempts: trace.attempts.map((report) => (report.outcome === "client_aborted" ? { ...report, reason } : report)),
    };
  }

  /** One pass of the failover path over `plan` (one candidate, or one to wait for); the stream, or undefined. */
  async #forward(
    plan: Omit<RoutePlan, "requested">,
    body: Readonly<Record<string, unknown>>,
    trace: ForwardTrace,
    signal: AbortSignal,
    spentOutputTokens: number | undefined,
  ): Promise<StreamResult | undefined> {
    const context = this.#context;
    const outcome = await context.runtime.forward(
      { ...plan, requested: context.plan.requested },
      {
        endpointPath: context.endpointPath,
        body,
        isStream: true,
        signal,
        trace,
        traceContext: context.traceContext,
        promptTokens: context.promptTokens,
        reasoningPromptTokens: context.reasoningPromptTokens,
        maxOutputTokens: context.maxOutputTokens,
        spentOutputTokens,
      },
      context.snapshot,
    );
    return outcome.result.kind === "stream" ? outcome.result : undefined;
  }

  /** `deliveredText`: what the client had when this segment was asked for (in its prompt, or to be repeated). */
  #segment(result: StreamResult, mode: "prefill" | "replay", deliveredText: string): ContinuationSegment {
    const context = this.#context;
    const { runtime } = context;
    const { deployment } = result;
    const startedAtMs = runtime.clock.now();
    let endedAtMs: number | undefined;
    // What this segment's request cost, for the record when it ends without a usage report: a prefill's prompt holds
    // the delivered text (a replay's generated start, and a restarted prefill's, are the end's `droppedText`). As its
    // deployment counts it, as its reservation and the client's estimated usage are (calibrated): before, the plain
    // estimate charged a deployment whose tokenizer counts far less (most: the estimator stays above them) more.
    const sentTokens =
      (result.promptTokensSent ?? context.promptTokens) + (mode === "prefill" ? countTextTokens(deliveredText) : 0);
    const promptTokens = runtime.promptCalibration.promptTokensFor(deployment, sentTokens);
    return {
      stream: result.stream,
      provider: deployment.provider.settings.name,
      model: deployment.model.id,
      mode,
      repeatsText: mode === "replay" ? deliveredText : "",
      isUsageInjected: result.isUsageInjected,
      ended(end) {
        endedAtMs ??= runtime.clock.now();
        runtime.recorder.segmentStopped(deployment, result.reservation, end, { startedAtMs, endedAtMs });
      },
      finish(end) {
        // The record's attempt and the budgets and stats count the same estimate when it broke without a report.
        const estimatedUsage = estimatedContinuationUsage(end, promptTokens);
        runtime.recorder.segmentEnded(deployment, result.reservation, end, {
          isFirst: false,
          startedAtMs,
          estimatedUsage,
          endedAtMs,
        });
        context.onSegmentEnd(result.attempt, end, { estimatedUsage, endedAtMs });
      },
    };
  }
}

/**
 * Who may continue, best first: the plan's ready candidates, then the one it would have waited for, then those it
 * left out only for the moment (cooling down, or over a budget) by score. A stream breaks seconds or minutes after
 * its plan was made: a candidate skipped then may have room now (each is checked again when asked, as any attempt
 * is), and with two providers a stream whose plan skipped the other one had nobody to continue it. Candidates left
 * out for what the request needs (context, tools, vision, schema, kind, paid) stay out.
 */
function continuationCandidates(plan: RoutePlan): RouteCandidate[] {
  const later = plan.skipped
    .filter((skip) => skip.cause === "cooldown" || skip.cause === "budget")
    .sort((a, b) => b.score - a.score)
    .map((skip): RouteCandidate => ({ deployment: skip.deployment, score: skip.score, group: 0, board: skip.board }));
  return [...plan.candidates, ...(plan.waitFor === undefined ? [] : [plan.waitFor]), ...later];
}

/**
 * An upstream's 400 or 422 to a continuation: it refuses the request as sent (a prefill). A context-length 400 says
 * the prompt grew too big for this model, not that it refuses a prefill.
 */
function isRequestRejection(error: unknown): error is GatewayError {
  return (
    error instanceof GatewayError &&
    (error.status === 400 || error.status === 422) &&
    error.code !== "context_length_exceeded"
  );
}

/** A plan of nobody, for one continuation request at a time. */
const NO_PLAN: Omit<RoutePlan, "requested"> = { candidates: [], waitFor: undefined, skipped: [], unknownNames: [] };

/**
 * The original messages plus the delivered text as a trailing assistant message. Its output limit is what is left
 * of the one the candidate is sent (ForwardRequest.spentOutputTokens, applied after the candidate's `body:` rules):
 * the provider generates only the rest, so with the whole limit again the answer could grow to nearly twice what
 * the client allowed (and paid for). The delivered part is counted with the gateway's tokenizer (a cut stream
 * reports no usage).
 */
function withPrefill(body: Readonly<Record<string, unknown>>, deliveredText: string): Record<string, unknown> {
  const messages: unknown[] = Array.isArray(body.messages) ? body.messages : [];
  return { ...body, messages: withAssistantText(messages, deliveredText) };
}

/**
 * The messages with `text` as the answer so far. A request that already ends with the client's own assistant
 * prefill ("Sure:") was answered as an extension of that message, so the delivered text extends it too: a second
 * assistant message after it is refused by some providers (and a refusal here would be taken for a refused
 * prefill, remembered for the deployment), and others read it as a finished turn followed by a new one.
 */
function withAssistantText(messages: readonly unknown[], text: string): unknown[] {
  const last = messages.at(-1);
  if (isRecord(last) && last.role === "assistant" && (last.tool_calls === undefined || last.tool_calls === null)) {
    const content = last.content;
    if (typeof content === "string") return [...messages.slice(0, -1), { ...last, content: content + text }];
    if (Array.isArray(content)) {
      return [...messages.slice(0, -1), { ...last, content: [...content, { type: "text", text }] }];
    }
  }
  return [...messages, { role: "assistant", content: text }];
}
