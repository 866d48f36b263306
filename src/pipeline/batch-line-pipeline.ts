// What the pipeline does otherwise for a batch line (batch-runner.ts) than for a live request: it takes the body and
// facts its runner's look made, and a refusal by the gateway's own limits before anything was sent sends the line
// back to wait instead of ending it.
import {
  type GatewayError,
  RateLimitedError,
  UpstreamOverloadedError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import { releaseClientChunks } from "./client-chunk-charges.ts";
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
 * budget or cooling down, after 429s or overload answers, a reservation another replica's spending refused after the plan saw room, the live-first
 * hold of plan-request.ts), or that found every candidate failing with a time to try again (circuits open, keys
 * parked: a 503 with retry-after and no attempt), is not over: it leaves no record and counts no error, its client's
 * charge is given back whole, and the error is returned for its runner to wait its time off its slot and try the line
 * again (batch-runner.ts). The runner checks those limits and circuits before it sends a line, but room can go between
 * that check and the reservation (a live request or another replica takes it), and a circuit can open meanwhile (a
 * line in flight failed); each such try left a 429 or 503 record with the batch's id, nothing sent, the same line
 * still to come. Undefined for anything else: a live request; an upstream's own 429 (an attempt was sent: its record
 * stays, the upstream's refusal is learned from it); a 503 without a time (the runner fails the line after a few
 * tries, and that record tells why); a client gone or the gateway's exit.
 */
export function deferredLine(request: PipelineRequest, error: unknown, attemptCount: number): GatewayError | undefined {
  const { context, runtime, clientCharge } = request;
  if (context.batchId === undefined || attemptCount > 0 || !isWaitedFor(error)) return undefined;
  if (context.signal.aborted) return undefined;
  // Back to wait, no record: its rest no longer holds its client's windows (a later try is checked again).
  if (clientCharge.chunks !== undefined) releaseClientChunks(runtime, clientCharge.chunks);
  const reservation = clientCharge.reservation;
  if (reservation !== undefined) {
    clientCharge.reservation = undefined;
    // A batch charged to its client chunk by chunk: the charges of its chunks (none sent: no attempt) are given back too.
    runtime.recorder.clientRequestUnsent(reservation, clientCharge.chunks?.charges.splice(0));
  }
  return error;
}

/**
 * A refusal the line's runner waits out (batch-line-run.ts LineRuns.run): a 429, every candidate cooling after
 * overload answers (nothing tried: what a 429 said before it was told as an overload, final-error.ts), or every
 * candidate failing for a time.
 */
function isWaitedFor(error: unknown): error is GatewayError {
  if (error instanceof RateLimitedError || error instanceof UpstreamOverloadedError) return true;
  return error instanceof UpstreamUnavailableError && error.status === 503 && error.retryAfterMs !== undefined;
}
