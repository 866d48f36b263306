// The one place that changes what the gateway knows about its candidates after an attempt: availability
// (cooldowns, circuits, parked keys), health, budgets and stats. The failover loop reports each attempt's end
// here; the relay reports each stream segment's end here; finished request records go out to subscribers.
// Nothing else mutates these books (a test subscribes to records and checks it).
import { traitsOf } from "../errors/outcomes.ts";
import { type AudioCharge, reserveWithSeconds, settleSeconds } from "../limits/audio-reservation.ts";
import { isLimitCause } from "../limits/availability.ts";
import { type BudgetScope, type Denied, isReservation, type Reservation } from "../limits/budgets.ts";
import { clearOutgrownWindow } from "../limits/learned-context.ts";
import type { RecordListener, RequestRecord } from "../observability/request-record.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { SegmentEnd } from "../streaming/relay-types.ts";
import type { Admission, AttemptReport, CalibratingPrompt } from "../upstream/forward-types.ts";
import { failedAttemptTokens } from "../upstream/prompt-sent.ts";
import { learnContextRefusal } from "./context-lessons.ts";
import type { RecorderBooks, SegmentSettlement, SegmentTiming } from "./recorder-books.ts";
import { applyEffects } from "./recorder-effects.ts";
import { answerCharge, clientCharge, segmentCharge } from "./segment-charge.ts";

export class Recorder {
  readonly #books: RecorderBooks;
  readonly #listeners: RecordListener[] = [];
  /** Stream segments whose failure was learned when they stopped (segmentStopped), by their reservation. */
  readonly #judged = new WeakSet<Reservation>();

  constructor(books: RecorderBooks) {
    this.#books = books;
  }

  /** Right before an attempt: claims a half-open probe if that is what makes it available, and reserves budget. */
  // Synchronous whenever the ledger is (the embedded one): a waiter woken from the queue must claim its slot in
  // the same tick, before the next waiter looks, or arrival order breaks.
  admit(
    deployment: Deployment,
    scopes: readonly BudgetScope[],
    tokens: number,
    requests = 1,
    /** An upload's seconds and the deployment's audio-seconds scopes (`ash`/`asd`): reserved beside the request. */
    audio?: AudioCharge,
  ): Admission | Promise<Admission> {
    const { availability, budgets, clock } = this.#books;
    const providerName = deployment.provider.settings.name;
    const availabilityNow = availability.acquire(deployment.key, providerName);
    if (!availabilityNow.isAvailable) {
      const { reason, untilMs, cause } = availabilityNow;
      return { isAdmitted: false, reason, untilMs, isLimit: isLimitCause(cause), cooldownCause: cause };
    }
    const settle = (reservation: Reservation | Denied): Admission => {
      if (isReservation(reservation)) {
        availability.attemptStarted(deployment.key);
        return { isAdmitted: true, reservation };
      }
      availability.releaseProbe(deployment.key);
      const { reason, retryAtMs: untilMs, isSlot } = reservation;
      return { isAdmitted: false, reason, untilMs, isLimit: true, ...(isSlot && { isSlot }) };
    };
    const cost = requests === 1 ? { tokens } : { tokens, requests };
    const reserved =
      audio === undefined
        ? budgets.reserve(scopes, cost, clock.now())
        : reserveWithSeconds(budgets, audio, scopes, cost, clock.now());
    return reserved instanceof Promise ? reserved.then(settle) : settle(reserved);
  }

  /** The attempt's request went out (after a connection's set-up): the budgets count it from now. */
  attemptSent(reservation: Reservation): void {
    const { budgets, clock } = this.#books;
    budgets.markSent(reservation, clock.now());
    if (reservation.audio !== undefined) budgets.markSent(reservation.audio, clock.now());
  }

  /** One attempt ended. A stream that opened keeps its reservation until its segment is settled. */
  attemptEnded(
    deployment: Deployment,
    scopes: readonly BudgetScope[],
    report: AttemptReport,
    reservation: Reservation,
    /** A stream opened (settled later by segmentEnded); the prompt's estimate, when it may calibrate. */
    { isStreamOpen, prompt }: { readonly isStreamOpen: boolean; readonly prompt: CalibratingPrompt | undefined },
  ): void {
    const { availability, budgets, stats, scores, clock, promptCalibration } = this.#books;
    const key = deployment.key;
    if (!this.#books.isKnownAs(deployment)) {
      this.#settleReplaced(deployment, report, reservation, isStreamOpen);
      return;
    }
    // The attempt's evidence is in (an opened stream's too: its later end is evidence of its own), so it no longer
    // holds a suspect's one slot; a stream that runs for minutes must not keep its candidate a last resort.
    availability.attemptFinished(key);
    const sentAt = { sentAtMs: report.startedAtMs };
    applyEffects(this.#books, deployment, scopes, report.effects, reservation, sentAt);
    if (report.outcome === "success") {
      scores.recordHealth(key, true, report.durationMs, report.startedAtMs);
      // A stream that opened with content is evidence enough that the upstream works again: it closes a
      // half-open circuit and ends a suspect's one-at-a-time now, not when the stream ends (a cut later is a
      // failure of its own). Whether its provider let it through (a 429 may come in the stream) is known at its end,
      // which resets the 429s' backoff or continues it (segmentEnded).
      availability.recordSuccess(key, isStreamOpen ? { ...sentAt, keepsBackoff: "stream_opening" } : sentAt);
      if (isStreamOpen) return;
      const usage = report.usage;
      const total = answerCharge(report, reservation);
      if (total > 0) budgets.reconcile(reservation, total, clock.now());
      settleSeconds(budgets, reservation, report.audioSeconds, clock.now());
      // An upstream gateway's estimate is its estimator's count, not a tokenizer's: nothing to learn from.
      const reportedPrompt = report.isUsageEstimated === true ? undefined : usage?.promptTokens;
      if (prompt !== undefined && reportedPrompt !== undefined)
        promptCalibration.learn(key, prompt.estimate, reportedPrompt);
      // Several inputs' prompt together is no one prompt's size: it says nothing of the window each was fitted to.
      const onePrompt = prompt?.isManyInputs === true ? undefined : reportedPrompt;
      clearOutgrownWindow(this.#books.refusedFeatures, key, onePrompt, sentAt.sentAtMs);
      budgets.release(reservation);
      stats.recordSuccess(key, report.durationMs, usage?.promptTokens ?? 0, usage?.completionTokens ?? 0);
      return;
    }
    const traits = traitsOf(report.outcome);
    // The prompt (or prompt and output, when the deployment's window turns out shared) did not fit: a window it
    // states, or a calibration (router/context-fit.ts for the kinds of window).
    if (report.outcome === "context_length") learnContextRefusal(this.#books, deployment, report, prompt);
    if (traits.countsForHealth) scores.recordHealth(key, false, report.durationMs);
    this.#settleFailed(key, report, reservation);
    // A verdict that says nothing about the circuit hands a half-open probe back (when this attempt holds it).
    if (!report.effects.some((effect) => effect.kind === "circuit_failure")) availability.releaseProbe(key, sentAt);
  }

  /**
   * A stream segment stopped streaming and is settled later, once it is known whether another upstream continues it
   * (what it is charged depends on that): its upstream call is over, so its concurrency slot is free now. Held until
   * the settlement, it kept a `concurrency: 1` deployment from continuing its own cut stream, and from serving anyone
   * while another candidate continued it. When it broke, what that says of its upstream (availability, health, its
   * failure count) is learned now too: it does not depend on a continuation. Learned at the settlement, a first segment
   * cut while another upstream continued the answer for minutes left its deployment looking sound all that time (its
   * circuit closed, not suspect), and new requests kept going to the upstream that had just broken.
   */
  segmentStopped(deployment: Deployment, reservation: Reservation, end: SegmentEnd, timing: SegmentTiming): void {
    this.#books.budgets.release(reservation);
    settleSeconds(this.#books.budgets, reservation, undefined, this.#books.clock.now());
    if (end.outcome === "success" || this.#judged.has(reservation)) return;
    this.#judged.add(reservation);
    this.#failureVerdict(deployment, end, timing, traitsOf(end.outcome).blames === "none");
  }

  /** A stream segment ended (the first one, or a continuation): budgets, stats, availability and health. */
  segmentEnded(deployment: Deployment, reservation: Reservation, end: SegmentEnd, settlement: SegmentSettlement): void {
    const { availability, budgets, stats, scores, clock } = this.#books;
    const key = deployment.key;
    // The concurrency slot is held for the stream's whole life and freed on every path.
    budgets.release(reservation);
    // A streamed transcript says no duration: the upload's estimate stays.
    settleSeconds(budgets, reservation, undefined, clock.now());
    const chargeTokens = segmentCharge(end, reservation.tokens, settlement.estimatedUsage, settlement.isFirst);
    if (chargeTokens !== undefined) budgets.reconcile(reservation, chargeTokens, clock.now());
    if (end.outcome === "success") {
      // A stream sent before a reload pointed its name elsewhere: counted, but it teaches the new upstream nothing.
      const isKnown = this.#books.isKnownAs(deployment);
      const durationMs = (settlement.endedAtMs ?? clock.now()) - settlement.startedAtMs;
      // A continuation that finished the answer without a report: its estimate (segment-usage.ts), as for a cut one.
      const usage = end.usage ?? settlement.estimatedUsage;
      stats.recordSuccess(key, durationMs, usage?.promptTokens ?? 0, usage?.completionTokens ?? 0);
      if (!isKnown) return;
      const reported = end.isUsageEstimated === true ? undefined : end.usage;
      if (settlement.isFirst && settlement.promptEstimate !== undefined && reported !== undefined) {
        this.#books.promptCalibration.learn(key, settlement.promptEstimate, reported.promptTokens);
      }
      clearOutgrownWindow(this.#books.refusedFeatures, key, reported?.promptTokens, settlement.startedAtMs);
      // The stream's opening was its success in the failure window already; a stream that began before the
      // circuit opened does not close it.
      // A 429 in its stream after the answer was whole (SegmentEnd.rateLimitedAfterAnswer): its cooldown, as a
      // stream_rate_limited segment's below, backed off as the 429s before it (the success does not end their
      // streak); the answer stays a success.
      const keepsBackoff = end.rateLimitedAfterAnswer === undefined ? {} : { keepsBackoff: "rate_limited" as const };
      availability.recordSuccess(key, { sentAtMs: settlement.startedAtMs, isCounted: true, ...keepsBackoff });
      if (!settlement.isFirst) scores.recordHealth(key, true, durationMs, settlement.startedAtMs);
      if (end.rateLimitedAfterAnswer !== undefined) {
        availability.recordRateLimited(key, undefined, "rate_limited", end.rateLimitedAfterAnswer, {
          sentAtMs: settlement.startedAtMs,
        });
      }
      return;
    }
    // A broken segment's provider billed it whoever is blamed (a client that left too): /stats counts what
    // llm_gateway_tokens_total counts, from the same record attempt.
    const usage = end.usage ?? settlement.estimatedUsage;
    if (usage !== undefined) stats.recordTokens(key, usage.promptTokens, usage.completionTokens);
    // Learned when it stopped (segmentStopped): one segment, one verdict.
    if (this.#judged.has(reservation)) return;
    this.#judged.add(reservation);
    // The first segment that was continued failed even when the client then left during the continuation.
    const isBlameless = traitsOf(end.outcome).blames === "none" && !(settlement.isFirst && end.isContinued === true);
    this.#failureVerdict(deployment, end, settlement, isBlameless);
  }

  /** What a broken segment says of its upstream: a failure for its circuit, health and stats, unless it blames none. */
  #failureVerdict(deployment: Deployment, end: SegmentEnd, timing: SegmentTiming, isBlameless: boolean): void {
    const { availability, stats, scores, clock } = this.#books;
    const key = deployment.key;
    // A stream sent before a reload pointed its name elsewhere: counted, but it teaches the new upstream nothing.
    const isKnown = this.#books.isKnownAs(deployment);
    if (isBlameless) {
      // Not the upstream's fault: the client left, or a sound fresh answer merely differed from the one being
      // continued. A half-open circuit's probe is handed back. No 429 came in it: it ends the 429s' streak, as a
      // stream's success does (else each 429 after streams clients cancelled doubled the one before).
      if (!isKnown) return;
      availability.releaseProbe(key, { sentAtMs: timing.startedAtMs });
      availability.recordSuccess(key, { sentAtMs: timing.startedAtMs, isCounted: true });
      return;
    }
    stats.recordFailure(key);
    if (!isKnown) return;
    if (end.outcome === "stream_rate_limited") {
      // The provider said 429 in the stream (OpenRouter relays a host's limit so): the deployment cools down as after a
      // 429 status without a hint (its own backoff); a rate limit is no failure for the circuit or health.
      availability.recordRateLimited(key, undefined, "rate_limited", end.reason, { sentAtMs: timing.startedAtMs });
      return;
    }
    // A stream's probe verdict was its opening: a cut now is not the verdict of a probe claimed since. Its opening
    // counted a success in the failure window; the cut turns that into a failure (one request, one verdict).
    availability.recordFailure(key, { sentAtMs: timing.startedAtMs, replacesSuccess: true });
    const durationMs = (timing.endedAtMs ?? clock.now()) - timing.startedAtMs;
    if (traitsOf(end.outcome).countsForHealth) scores.recordHealth(key, false, durationMs);
  }

  /**
   * The end of an attempt sent to an upstream a reload has since replaced (`isKnownAs`): its reservation is settled
   * (the ledger changes the counts it charged, not the new upstream's) and the stats count it under its name; nothing
   * is learned. An opened stream keeps its reservation until its segment ends.
   */
  #settleReplaced(
    deployment: Deployment,
    report: AttemptReport,
    reservation: Reservation,
    isStreamOpen: boolean,
  ): void {
    const { budgets, stats, clock } = this.#books;
    if (report.outcome !== "success") {
      this.#settleFailed(deployment.key, report, reservation);
      return;
    }
    if (isStreamOpen) return;
    settleSeconds(budgets, reservation, report.audioSeconds, clock.now());
    const { promptTokens = 0, completionTokens = 0 } = report.usage ?? {};
    const total = answerCharge(report, reservation);
    if (total > 0) budgets.reconcile(reservation, total, clock.now());
    budgets.release(reservation);
    stats.recordSuccess(deployment.key, report.durationMs, promptTokens, completionTokens);
  }

  /**
   * A failed attempt: its request reached the provider and counts. Its tokens: what its calls that answered spent (a
   * Llama Guard moderation's earlier inputs); else its prompt when its provider took it in (sent and not refused by an
   * answer: it timed out, broke or was abandoned after the send), else none (failedAttemptTokens: the record's
   * chargedTokens). /stats counts them as its budgets and llm_gateway_tokens_total do (observability/token-metrics.ts):
   * reported output `out`, the rest `in` (until 2026-12-07 only a reported usage, not a prompt charged after a timeout).
   */
  #settleFailed(key: string, report: AttemptReport, reservation: Reservation): void {
    const { budgets, clock } = this.#books;
    if (report.outcome !== "client_aborted") this.#books.stats.recordFailure(key);
    const charged = failedAttemptTokens(report);
    const output = report.usage?.completionTokens ?? 0;
    if (charged > 0) this.#books.stats.recordTokens(key, charged - output, output);
    budgets.reconcile(reservation, charged, clock.now());
    // The calls it never sent (after an earlier input's failure, or the client left) reached no provider.
    if (report.unsentCalls !== undefined) budgets.releaseUnsentCalls(reservation, report.unsentCalls, clock.now());
    budgets.release(reservation);
    settleSeconds(budgets, reservation, 0, clock.now());
  }

  /**
   * A request charged to its client's budgets (client-budget.ts) ended with this record: charged what it used
   * (clientCharge, segment-charge.ts); its slot is free.
   */
  clientRequestEnded(reservation: Reservation, record: RequestRecord, chunks: readonly Reservation[] = []): void {
    const { budgets, clock } = this.#books;
    // An embeddings batch charged chunk by chunk (client-chunk-charges.ts): each chunk's charge keeps what it holds (its
    // answer's usage) within what the request used, and the request's own charge the rest (a failed attempt's prompt).
    let rest = clientCharge(
      record,
      chunks.reduce((sum, chunk) => sum + chunk.tokens, reservation.tokens),
    );
    for (const chunk of chunks) {
      const kept = Math.min(chunk.tokens, rest);
      if (kept !== chunk.tokens) budgets.reconcile(chunk, kept, clock.now());
      budgets.release(chunk);
      rest -= kept;
    }
    if (rest !== reservation.tokens) budgets.reconcile(reservation, rest, clock.now());
    budgets.release(reservation);
  }

  /**
   * A named client's chunk of an embeddings batch was answered (client-chunk-charges.ts): its charge of tokens counts
   * from the chunk's send, and is what the chunk used, so that the client's window frees when the chunk's tokens leave.
   */
  clientChunkAnswered(charge: Reservation, tokens: number, sentAtMs: number): void {
    const { budgets, clock } = this.#books;
    budgets.markSent(charge, sentAtMs);
    if (tokens !== charge.tokens) budgets.reconcile(charge, tokens, clock.now());
  }

  /**
   * A batch line charged to its client's budgets went back to wait, unsent and without a record (handle-request.ts
   * `deferredLine`): the charge is given back whole (its tokens and its request), as if it had never been made, since
   * the line is charged again when it is tried again. An embeddings batch's `chunks` (client-chunk-charges.ts), none
   * sent, are given back with it.
   */
  clientRequestUnsent(reservation: Reservation, chunks: readonly Reservation[] = []): void {
    const { budgets, clock } = this.#books;
    const nowMs = clock.now();
    for (const chunk of chunks) this.clientChunkUnsent(chunk);
    if (reservation.tokens !== 0) budgets.reconcile(reservation, 0, nowMs);
    budgets.releaseUnsentCalls(reservation, reservation.requests ?? 1, nowMs);
    budgets.release(reservation);
  }

  /** A named client's chunk charge of an embeddings batch (client-chunk-charges.ts), its chunk not sent: given back whole. */
  clientChunkUnsent(charge: Reservation): void {
    const { budgets, clock } = this.#books;
    if (charge.tokens !== 0) budgets.reconcile(charge, 0, clock.now());
    budgets.release(charge);
  }

  /** A conversation write charged as its client's request (client-budget.ts `asClientRequest`) ended: its slot is free. */
  clientWriteEnded(reservation: Reservation): void {
    this.#books.budgets.release(reservation);
  }

  onRecord(listener: RecordListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const index = this.#listeners.indexOf(listener);
      if (index >= 0) this.#listeners.splice(index, 1);
    };
  }

  /** A request finished: hand its record to every subscriber. A failing subscriber never fails the request. */
  publish(record: RequestRecord): void {
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // Subscribers (logs, metrics, the request log) must not break requests; they report their own errors.
      }
    }
  }
}
