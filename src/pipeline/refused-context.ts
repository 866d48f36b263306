// `truncation: "auto"` after a provider refused the input as too long anyway. The first truncation
// (context-truncation.ts) goes by the gateway's estimate and the context it knows; a provider whose tokenizer counts
// more, or whose window is smaller than listed, refuses what is left, and the refusal usually says by how much
// (limits/stated-context.ts). Each such round leaves out more of the oldest items, as few as make the input fit what
// one refusing candidate stated (its window, and the prompt it counted to scale the estimate by), or its learned or
// listed context when it stated none, and plans and fails over again (docs/protocols.md "Truncation").
import { ClientAbortedError } from "../errors/gateway-error.ts";
import type { ChatMessage } from "../protocols/chat-completions.ts";
import { outputLimitNameOf, outputTokensFor } from "../providers/body-rules.ts";
import type { AttemptReport } from "../upstream/forward-types.ts";
import { fewestDropped, truncatedBody, unitStarts, withoutOldest } from "./context-truncation.ts";
import type { PipelineRequest } from "./pipeline-types.ts";
import { requestFactsOf } from "./plan-request.ts";

/**
 * Rounds of truncating further after refusals, per request. Each round leaves out at least one more item and is bounded
 * by `routing.max_attempts` and the request's time like any failover; this bounds a provider that keeps refusing.
 */
export const MAX_REFUSAL_ROUNDS = 3;

/** One refusing candidate's window, as the input must fit it. */
interface RefusedWindow {
  readonly deploymentKey: string;
  readonly limitTokens: number;
  /** The prompt tokens the provider counted for `sentEstimate` (stated, or at least what its refusal implies). */
  readonly countedTokens: number;
  /** Whether the provider's count is known (stated) or a floor; a floor is kept above by the learned calibration. */
  readonly isCountStated: boolean;
  /** The output the candidate is asked for beside the input (the client's, or what its body rules send). */
  readonly outputTokens: number;
}

/**
 * The request with more of its oldest items left out after this round's context-length refusals (counted in
 * `rounds`), or undefined when it does not ask for truncation, no attempt was refused for context, its rounds are
 * spent, `routing.max_attempts` (`attemptCount`: the request's attempts so far) or its time is used up, the client
 * left, or nothing left out (the last item is always kept) makes it fit any refusing candidate: the error stands.
 */
export function shorterAfterRefusals(
  request: PipelineRequest,
  attempts: readonly AttemptReport[],
  attemptCount: number,
  rounds: { count: number },
  error: unknown,
): PipelineRequest | undefined {
  const { context, body, endpoint, runtime } = request;
  if (context.truncatesToFit !== true || rounds.count >= MAX_REFUSAL_ROUNDS) return undefined;
  if (error instanceof ClientAbortedError || context.signal.aborted) return undefined;
  // No attempt left for a shorter input: another round would only replace the context refusal with a 502.
  const { maxAttempts, totalTimeoutMs } = request.snapshot.config.routing;
  if (attemptCount >= maxAttempts || runtime.clock.now() >= request.record.startedAtMs + totalTimeoutMs)
    return undefined;
  if (!Array.isArray(body.messages)) return undefined;
  const windows = attempts.flatMap((attempt) => refusedWindowOf(request, attempt) ?? []);
  if (windows.length === 0) return undefined;
  const messages = body.messages as ChatMessage[];
  const starts = unitStarts(messages);
  const estimateOf = (dropped: number) =>
    endpoint.estimate(withoutOldest(body, messages, starts, dropped)).promptTokens;
  const fits = (dropped: number): boolean => {
    const estimate = estimateOf(dropped);
    return windows.some((window) => fitsWindow(request, window, estimate));
  };
  const dropped = fewestDropped(starts, fits);
  if (dropped === undefined) return undefined;
  const shorter = withoutOldest(body, messages, starts, dropped);
  // What the plan learned from the refusals (its calibration) may leave out more still: the plan then decides.
  const planned = truncatedBody(runtime, endpoint, shorter, context.client);
  rounds.count += 1;
  // The native body (`responses_api: native`) holds the whole input, which a native candidate refusing it would be
  // sent again; its items do not map one to one onto the chat messages left out (items merge into one message, an
  // image output adds one), so it is not shortened: without it a native candidate is sent this shorter chat body, as
  // such a provider speaks Chat Completions too (docs/protocols.md "Truncation").
  const shorterContext = { ...context, native: undefined };
  return { ...request, body: planned, context: shorterContext, ...requestFactsOf(endpoint, planned, request.isStream) };
}

/** The window a context-length refusal leaves the input to fit, or undefined when it is no such refusal or unknown. */
function refusedWindowOf(request: PipelineRequest, attempt: AttemptReport): RefusedWindow | undefined {
  if (attempt.outcome !== "context_length") return undefined;
  const stated = attempt.statedContext;
  const deployment = request.snapshot.catalog.deployments.find((each) => each.key === attempt.deploymentKey);
  const limitTokens = stated?.limitTokens ?? deployment?.contextTokens;
  if (limitTokens === undefined) return undefined;
  // As the plan counts it (router/context-fit.ts): a body default's max_tokens is sent, and takes its share.
  const outputTokens =
    deployment === undefined
      ? request.maxOutputTokens
      : outputTokensFor(deployment, request.maxOutputTokens, outputLimitNameOf(request.body));
  const window = { deploymentKey: attempt.deploymentKey, limitTokens, outputTokens };
  if (stated?.promptTokens !== undefined) return { ...window, countedTokens: stated.promptTokens, isCountStated: true };
  // Not stated: the provider counted more than its window left the prompt (it refused), at least one token more.
  const floor = Math.max(1, limitTokens - outputTokens + 1);
  return { ...window, countedTokens: floor, isCountStated: false };
}

/**
 * Whether an input of `estimate` tokens (the gateway's estimate) fits the refusing candidate's window: the provider's
 * count of it taken as its count of the refused input scaled by the estimates (tokenizers count text in proportion),
 * with the output asked for beside it (the window shared, as most refusals word it). With the count only a floor, the
 * calibrated estimate counts too (it learned from the refusal: recorder.ts, PromptCalibration.learnTooLong).
 */
function fitsWindow(request: PipelineRequest, window: RefusedWindow, estimate: number): boolean {
  const sentEstimate = request.prompt.promptTokens;
  if (!(sentEstimate > 0)) return false;
  const scaled = Math.ceil((window.countedTokens * estimate) / sentEstimate);
  const calibrated = window.isCountStated
    ? 0
    : request.runtime.promptCalibration.promptTokensFor({ key: window.deploymentKey }, estimate);
  return Math.max(scaled, calibrated) + window.outputTokens <= window.limitTokens;
}
