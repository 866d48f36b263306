// What the pipeline does otherwise for a batch line (batch-runner.ts) than for a live request: it takes the body and
// facts its runner's look made, and a refusal by the gateway's own limits before anything was sent sends the line
// back to wait instead of ending it.
import { type GatewayError, RateLimitedError } from "../errors/gateway-error.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { CheckedLine, PipelineRequest, RequestContext } from "./pipeline-types.ts";

/**
 * The batch line's body and facts its runner's look made (plan-request.ts batchLineRoute), when they are of this very
 * body and endpoint; a batch line has no `Cache-Control` to check. A line that does not stream, so its facts (made
 * for a request that does not) hold.
 */
export function checkedLineOf(
  endpoint: EndpointSpec,
  rawBody: unknown,
  context: RequestContext,
): CheckedLine | undefined {
  const checked = context.checkedLine;
  if (checked === undefined || checked.endpoint !== endpoint || checked.rawBody !== rawBody) return undefined;
  if (context.cacheDirective !== undefined || checked.body.stream === true) return undefined;
  return checked;
}

/**
 * A batch line the gateway's own limits refused before anything was sent (its client's budget, every candidate over a
 * budget or cooling down, a reservation another replica's spending refused after the plan saw room, the live-first
 * hold of plan-request.ts) is not over: it leaves no record and counts no error, its client's charge is given back
 * whole, and the 429 is returned for its runner to wait its time off its slot and try the line again
 * (batch-runner.ts). The runner checks those limits before it sends a line, but room can go between that check and the
 * reservation (a live request or another replica takes it), and each such try left a 429 record. Undefined for
 * anything else: a live request; an upstream's own 429 (an attempt was sent: its record stays, the upstream's refusal
 * is learned from it); a client gone or the gateway's exit.
 */
export function deferredLine(request: PipelineRequest, error: unknown, attemptCount: number): GatewayError | undefined {
  const { context, runtime, clientCharge } = request;
  if (context.batchId === undefined || !(error instanceof RateLimitedError) || attemptCount > 0) return undefined;
  if (context.signal.aborted) return undefined;
  const reservation = clientCharge.reservation;
  if (reservation !== undefined) {
    clientCharge.reservation = undefined;
    runtime.recorder.clientRequestUnsent(reservation);
  }
  return error;
}
