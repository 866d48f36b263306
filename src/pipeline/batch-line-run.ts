// One try of a batch line: through its door's executor (the pipeline, or the Responses adapter above it), waiting
// off its slot when limits say so (planned as its pipeline plans it), its answer or its error written as its result.
import {
  type GatewayError,
  InternalError,
  InvalidRequestError,
  PayloadTooLargeError,
} from "../errors/gateway-error.ts";
import { renderError, toGatewayError } from "../errors/render-error.ts";
import { isNeverFit } from "../limits/budget-types.ts";
import { lineBody } from "../protocols/batches/batch-line-body.ts";
import { answeredLine, type BatchEndpoint, type BatchLine } from "../protocols/batches/batch-objects.ts";
import { randomIds } from "../protocols/ids.ts";
import { type ActiveBatch, type BatchSteps, isLineOverLimit, type LineOutcome } from "./active-batch.ts";
import {
  answeredBeforeFailure,
  type LineAnswer,
  type LineCall,
  type LineCheck,
  type LineExecutor,
  type LineWait,
  pipelineExecutor,
} from "./batch-lines.ts";
import type { BatchResults } from "./batch-results.ts";
import { chargedBeforeFailure } from "./chunk-charges.ts";
import { CHAT_ENDPOINT, COMPLETIONS_ENDPOINT, EMBEDDINGS_ENDPOINT, type EndpointSpec } from "./endpoints.ts";
import { batchLineRoute } from "./plan-request.ts";

/** A wait after a 429 that named no time; after the nth 5xx of a line, n times this. */
const DEFAULT_RETRY_MS = 1_000;
/** Tries of a line that failed with a 5xx (every candidate failing now) before it goes to the error file. */
const MAX_SERVER_ERROR_TRIES = 3;

export class LineRuns {
  readonly #steps: BatchSteps;
  readonly #results: BatchResults;
  readonly #executors = new Map<BatchEndpoint, LineExecutor>();

  constructor(steps: BatchSteps, results: BatchResults) {
    this.#steps = steps;
    this.#results = results;
    this.#executors.set("/v1/chat/completions", pipelineExecutor(steps.runtime, CHAT_ENDPOINT));
    this.#executors.set("/v1/completions", pipelineExecutor(steps.runtime, COMPLETIONS_ENDPOINT));
    this.#executors.set("/v1/embeddings", pipelineExecutor(steps.runtime, EMBEDDINGS_ENDPOINT));
  }

  /** A door whose adapter lives above the pipeline (the Responses door's translation, server/). */
  setExecutor(endpoint: BatchEndpoint, executor: LineExecutor): void {
    this.#executors.set(endpoint, executor);
  }

  /**
   * A line's run threw where no answer was made of it (a bug, its input bytes unreadable): once only logged, the line
   * was in neither file and the batch ended `completed` with counts short of its total. It goes to the error file as
   * a 500 (the message names no cause: an unexpected error may carry a path or a key), counted failed. Not at the
   * exit (the line runs again after a restart); a line whose result was written already keeps it (putResult refuses a
   * second result).
   */
  async failed(active: ActiveBatch, line: BatchLine, error: unknown): Promise<void> {
    this.#steps.log.warn({ err: error, batchId: active.id, customIds: [line.customId] }, "batch: a line's run failed");
    if (this.#steps.isStopping()) return;
    active.serverErrors.delete(line.index);
    const requestId = randomIds("batch_req_");
    const internal = new InternalError("The gateway failed while running this request.");
    try {
      await this.#results.written(active, {
        index: line.index,
        isError: true,
        line: answeredLine(requestId, line.customId, internal.status, requestId, renderError(internal)),
      });
    } catch (writeError) {
      this.#steps.log.warn(
        { err: writeError, batchId: active.id },
        "batch: a failed line's error could not be written",
      );
    }
  }

  /**
   * One try of a line, from its plan to its result written; or, when no candidate may serve it now because of limits
   * (or a 429 from every one), or after a 5xx from every one that leaves it tries, how long it waits: it gives its slot
   * back meanwhile (LineOrder.parkLine), and is taken again after that.
   */
  async run(
    active: ActiveBatch,
    line: BatchLine,
    parsed: Record<string, unknown> | undefined,
    reserved: () => void,
  ): Promise<LineOutcome> {
    const executor = this.#executors.get(active.endpoint);
    const signal = active.controller.signal;
    // The door's own body limit holds for a line too: a live request this large is refused before it is read. A line
    // longer than the limit is refused unparsed (a 60 MB line was parsed and serialised again here: ~3 s of a blocked
    // event loop); one within it keeps the rule of its body as serialised.
    const bodyLimitBytes = this.#steps.runtime.snapshot.config.server.bodyLimitBytes;
    const isOverLimit = isLineOverLimit(line, bodyLimitBytes);
    let body: Record<string, unknown> | undefined;
    try {
      body = isOverLimit ? undefined : (parsed ?? lineBody(active.input, line));
    } catch (error) {
      // A `__proto__` or `constructor.prototype` key: refused as the JSON door refuses the body (batch-line-body.ts).
      if (!(error instanceof InvalidRequestError)) throw error;
      await this.#refused(active, line, error);
      return;
    }
    if (body === undefined || Buffer.byteLength(JSON.stringify(body)) > bodyLimitBytes) {
      const tooLarge = new PayloadTooLargeError(
        `The request body is larger than the limit of ${bodyLimitBytes} bytes (server.body_limit_bytes).`,
      );
      await this.#refused(active, line, tooLarge);
      return;
    }
    if (signal.aborted || this.#steps.runtime.isShuttingDown) return;
    // Not started: the line stays unanswered (an expired batch names it in its error file).
    if (active.isCancelling || active.isExpiring) return;
    const requestId = randomIds("batch_req_");
    let answer: LineAnswer | LineWait;
    try {
      if (executor === undefined) throw new InternalError(`No executor for ${active.endpoint}.`);
      answer = await this.#sent(executor, {
        body,
        client: active.owner === "" ? undefined : active.owner,
        requestId,
        batchId: active.id,
        signal,
        log: this.#steps.log,
        waitBeforeSending: (endpoint, pipelineBody) => this.#waitBeforeSending(active, endpoint, pipelineBody),
        onReserved: reserved,
      });
    } catch (error) {
      // Ended by the exit (or refused because the gateway is stopping): not written, it runs again after a restart.
      if (signal.aborted || this.#steps.runtime.isShuttingDown) return;
      const gatewayError = toGatewayError(error);
      // An embeddings line whose earlier chunks were answered and charged before a later one failed: written now, with
      // what they cost on the batch's usage. Tried again, it paid for those chunks once more each time (a 429 past its
      // deadline as long as the batch ran: every try ended the same way), and the batch's usage counted none of it.
      const charged = chargedBeforeFailure.of(error);
      // The upstream answered, and the door failed on the answer (its translation threw): written now, with what the
      // answer cost on the batch's usage. Tried again, the line was answered and charged again and failed alike.
      const answered = answeredBeforeFailure.of(error);
      const usage =
        charged !== undefined
          ? { usage: { prompt_tokens: charged.promptTokens, completion_tokens: charged.completionTokens } }
          : answered?.answer;
      if (usage !== undefined) {
        const failed = answeredLine(
          requestId,
          line.customId,
          gatewayError.status,
          requestId,
          renderError(gatewayError),
        );
        await this.#results.written(active, { index: line.index, isError: true, line: failed }, usage);
        return;
      }
      // Over a limit (429), or every candidate failing with a time it may be tried again (503 with retry-after: an
      // open circuit's probe, a parked key): waited for, as a line that could be served later.
      if (gatewayError.status === 429 || (gatewayError.status === 503 && gatewayError.retryAfterMs !== undefined)) {
        return { waitMs: gatewayError.retryAfterMs ?? DEFAULT_RETRY_MS };
      }
      const serverErrors = (active.serverErrors.get(line.index) ?? 0) + 1;
      if (gatewayError.status >= 500 && serverErrors < MAX_SERVER_ERROR_TRIES) {
        active.serverErrors.set(line.index, serverErrors);
        // Alone and off its slot: the pause waited in the slot before, and a batch stalled behind a failing line.
        return { waitMs: gatewayError.retryAfterMs ?? DEFAULT_RETRY_MS * serverErrors, isLineOnly: true };
      }
      await this.#results.written(active, {
        index: line.index,
        isError: true,
        line: answeredLine(requestId, line.customId, gatewayError.status, requestId, renderError(gatewayError)),
      });
      return;
    }
    if ("waitMs" in answer) return { waitMs: answer.waitMs };
    await this.#results.written(
      active,
      {
        index: line.index,
        isError: answer.status >= 400,
        line: answeredLine(requestId, line.customId, answer.status, requestId, answer.body),
      },
      answer.body,
    );
  }

  /** A line refused before it is sent, as its door refuses the body (413, 400): its error written, no record. */
  async #refused(active: ActiveBatch, line: BatchLine, error: GatewayError): Promise<void> {
    const requestId = randomIds("batch_req_");
    await this.#results.written(active, {
      index: line.index,
      isError: true,
      line: answeredLine(requestId, line.customId, error.status, requestId, renderError(error)),
    });
  }

  /**
   * The line's request, among the gateway's open requests while the pipeline serves it: an exit that cannot wait for
   * it (a second SIGTERM/SIGINT, the shutdown timeout) ends it through its pipeline as it ends a live request, so it
   * leaves its record before the exit's writes (it was cut without one). Not written as a result: the exit is on,
   * and the line runs again after a restart.
   */
  async #sent(executor: LineExecutor, call: LineCall): Promise<LineAnswer | LineWait> {
    const request = this.#steps.runtime.openRequests.open();
    try {
      return await executor({ ...call, signal: AbortSignal.any([call.signal, request.signal]) });
    } finally {
      this.#steps.runtime.openRequests.close(request);
    }
  }

  /**
   * ms to wait before sending the line: 0 when a candidate is ready now (or the plan cannot say: the pipeline then
   * answers, a line larger than a whole token budget with its 413); else until the soonest candidate frees up. Planned
   * as the line's pipeline will plan it (plan-request.ts batchLineRoute): its prompt's estimate and `max_tokens`
   * count, so a line over what is left of a `tpm` or `tpd` waits here, unsent and without a record. The body checked
   * and its facts go with it to the pipeline, which does not make them again.
   */
  #waitBeforeSending(active: ActiveBatch, endpoint: EndpointSpec, body: unknown): LineCheck {
    let looked: ReturnType<typeof batchLineRoute>;
    try {
      looked = batchLineRoute(this.#steps.runtime, endpoint, body, active.owner === "" ? undefined : active.owner);
    } catch {
      return { waitMs: 0, checked: undefined };
    }
    if (looked === undefined) return { waitMs: 0, checked: undefined };
    const { route, checked } = looked;
    try {
      const clientWaitMs = this.#clientWaitMs(active.owner, route.promptTokens ?? 0);
      if (clientWaitMs > 0) return { waitMs: clientWaitMs, checked };
      const plan = this.#steps.runtime.plan(route);
      if (plan.candidates.length > 0) return { waitMs: 0, checked };
      return { waitMs: this.#steps.runtime.soonestAvailableMs(plan) ?? 0, checked };
    } catch {
      return { waitMs: 0, checked };
    }
  }

  /**
   * ms until the line's client's own budgets (`server.api_keys` limits) admit it as its pipeline charges them
   * (client-budget.ts: one request, its prompt's estimate); 0 with room, without budgets, or never (larger than a
   * whole budget: the pipeline answers the 413).
   */
  #clientWaitMs(owner: string, promptTokens: number): number {
    const scope = owner === "" ? undefined : this.#steps.runtime.snapshot.clientScopes.get(owner);
    if (scope === undefined) return 0;
    const nowMs = this.#steps.runtime.clock.now();
    const verdict = this.#steps.runtime.budgets.check([scope], { tokens: promptTokens }, nowMs);
    if (verdict.isAllowed || isNeverFit(verdict.retryAtMs)) return 0;
    return Math.max(0, verdict.retryAtMs - nowMs);
  }
}
