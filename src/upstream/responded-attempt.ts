// The start a relayed attempt shares (a stream's, relayed speech's): send, wait for the headers within `timeout_ms`,
// give the provider's slot back once the body closes, and fail a redirect or an error status; a 2xx response is
// handed, its body unread, to the reader of that kind of answer (attempt.ts `streamAnswer`, audio-attempt.ts).
import type { Dispatcher } from "undici";
import type { HeaderMap } from "../limits/header-map.ts";
import {
  type AttemptContext,
  type AttemptResult,
  errorStatusFailure,
  isRedirect,
  isSuccess,
  networkFailure,
  redirectFailure,
  sendFailure,
  startHeadersTimer,
} from "./attempt-context.ts";
import { type BoundedBody, readBodyBounded } from "./read-body.ts";
import { sendUpstream, type UpstreamCall } from "./upstream-request.ts";

/**
 * Reads a 2xx answer. A module-level function with its per-request value in `extra` (a stream's `isUsageInjected`),
 * never a closure: the chat stream's hot path allocates nothing for being shared (see `respondedAttempt`).
 */
export type AnswerReader<Extra> = (
  context: AttemptContext,
  response: Dispatcher.ResponseData,
  call: UpstreamCall,
  sentAtMs: number,
  headersMs: number,
  extra: Extra,
) => Promise<AttemptResult>;

/**
 * One async function, as each kind's own preamble was: the reader is called in its tail, so an attempt costs the
 * promises it cost before (this one in place of the kind's own, then the reader's), and no closure or result object
 * is made to pass the response on.
 */
export async function respondedAttempt<Extra>(
  context: AttemptContext,
  call: UpstreamCall,
  headersTimeoutMs: number,
  readAnswer: AnswerReader<Extra>,
  extra: Extra,
): Promise<AttemptResult> {
  const { clock, controller } = context;
  const sentAtMs = clock.now();
  let response: Dispatcher.ResponseData;
  const headersTimer = startHeadersTimer(context, headersTimeoutMs);
  try {
    response = await sendUpstream(context.dispatcher, call, context.onSent);
  } catch (error) {
    context.releaseSlot();
    return sendFailure(error, context, headersTimer, headersTimeoutMs);
  } finally {
    headersTimer.stop();
  }
  // The body closes when it was read to its end or aborted: the connection is free again.
  response.body.once("close", context.releaseSlot);
  if (response.body.destroyed) context.releaseSlot();
  const headersMs = clock.now() - sentAtMs;
  const { statusCode } = response;
  if (isRedirect(statusCode)) {
    controller.abort();
    return redirectFailure(statusCode, headersMs);
  }
  if (!isSuccess(statusCode)) {
    let read: BoundedBody;
    try {
      // Enough to classify the error; the rest of a huge error body is never read (the connection is closed).
      read = await readBodyBounded(response.body, context.limits.maxErrorBodyBytes);
      if (read.isTruncated) controller.abort();
    } catch (error) {
      return networkFailure(error, context);
    }
    return errorStatusFailure(context, statusCode, response.headers as HeaderMap, read.text, headersMs);
  }
  return readAnswer(context, response, call, sentAtMs, headersMs, extra);
}
