// The same candidate once more with the output its credits cover, after OpenRouter's 402 "This request requires more
// credits, or fewer max_tokens. You requested up to 16384 tokens, but can only afford 1234." when the client set no
// output limit. OpenRouter reserves the model's whole output limit against the credits when a request has no
// `max_tokens`, so a key with a small balance refuses every such request a capped one would serve; its own advice is
// "fewer max_tokens".
//
// Retried rather than failed over: the client asked for no limit, so any limit is one the gateway chooses, and the
// candidate was ranked first for this request (another may be a worse model, or a paid one). Only with a sensible
// minimum (an answer cut at a few dozen tokens serves no one: then the next candidate is better) and a margin (the
// balance is shared with the key's other requests in flight). A client's own `max_tokens` is its choice: never lowered.
import { statedContextOf } from "../limits/stated-context.ts";
import { outputTokensFor } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import { nativeCallFor } from "./attempt.ts";
import type { Verdict } from "./classify-response.ts";
import type { AttemptReport, ForwardOutcome, ForwardRequest } from "./forward-types.ts";

/** Below this many affordable output tokens (after the margin) the next candidate is tried instead. */
export const MIN_AFFORDABLE_OUTPUT_TOKENS = 256;
/** The share of the affordable output asked for: the key's other requests spend the same balance meanwhile. */
const AFFORDABLE_SHARE = 0.9;

/** The paths whose body's output limit is `max_tokens` (chat, and legacy completions). */
const OUTPUT_LIMITED_PATHS: ReadonlySet<string> = new Set(["/chat/completions", "/completions"]);

/**
 * The request to send the same candidate again, with `max_tokens` it can afford, or undefined when the refusal is
 * not of that kind or the retry is not the gateway's to make (see above).
 */
export function affordableRetryOf(
  verdict: Verdict | undefined,
  request: ForwardRequest,
  deployment: Deployment,
): ForwardRequest | undefined {
  if (verdict?.kind !== "rate_limited" || verdict.affordableOutputTokens === undefined) return undefined;
  if (request.maxOutputTokens > 0 || request.spentOutputTokens !== undefined) return undefined;
  // A native call (a Responses body sent as it is) has its own field; gateway-built calls set their own limits. Only
  // this candidate's call counts: every Responses request carries its native form once any provider is native, and
  // the chat body it sends the others was then never retried.
  if (nativeCallFor(request, deployment) !== undefined) return undefined;
  if (request.isModeration === true || request.isRerank === true) return undefined;
  if (!OUTPUT_LIMITED_PATHS.has(request.endpointPath)) return undefined;
  const tokens = Math.floor(verdict.affordableOutputTokens * AFFORDABLE_SHARE);
  if (tokens < MIN_AFFORDABLE_OUTPUT_TOKENS) return undefined;
  // A `body:` rule setting the output limit itself would send the refused amount again.
  if (outputTokensFor(deployment, tokens, "max_tokens", request.isLegacyCompletion) !== tokens) return undefined;
  return {
    ...request,
    body: { ...request.body, max_tokens: tokens },
    maxOutputTokens: tokens,
    isOutputLimitChosen: true,
  };
}

/** The answer, marked when its request's output limit was the gateway's choice (ForwardRequest.isOutputLimitChosen). */
export function markedChosenLimit(request: ForwardRequest, answer: ForwardOutcome["result"]): ForwardOutcome["result"] {
  return request.isOutputLimitChosen === true && answer.kind !== "audio"
    ? { ...answer, isOutputLimitChosen: true }
    : answer;
}

/**
 * The report of an attempt sent with the output limit the gateway chose, refused for its output again (the balance
 * spent meanwhile): its reason names that limit as the gateway's. Said as the provider put it ("not the 1110 it may
 * use"), the client's 413 read as if the client had asked for 1110 tokens, and told it to send a smaller max_tokens
 * it never sent.
 */
export function reportOfChosenLimit(request: ForwardRequest, report: AttemptReport): AttemptReport {
  if (request.isOutputLimitChosen !== true || report.affordableOutputTokens === undefined) return report;
  return {
    ...report,
    reason: `the credits left cover ${report.affordableOutputTokens} output tokens, not even max_tokens ${request.maxOutputTokens}, the gateway's own choice after the first 402 (the client set no output limit; 402)`,
  };
}

/**
 * What an attempt's report says of a refusal of the request's size (the final 413 reads it: final-error.ts), or of a
 * context-length refusal's stated window (a request with `truncation: "auto"` is cut to it: pipeline/refused-context.ts).
 */
export function refusedSizeOf(
  verdict: Verdict | undefined,
): Pick<AttemptReport, "isRequestTooLarge" | "affordableOutputTokens" | "affordablePromptTokens" | "statedContext"> {
  if (verdict?.kind === "context_length") {
    const stated = statedContextOf(verdict.error.message);
    return stated === undefined ? {} : { statedContext: stated };
  }
  if (verdict?.kind !== "rate_limited") return {};
  return {
    ...(verdict.isRequestTooLarge === true ? { isRequestTooLarge: true } : {}),
    ...(verdict.affordableOutputTokens === undefined ? {} : { affordableOutputTokens: verdict.affordableOutputTokens }),
    ...(verdict.affordablePromptTokens === undefined ? {} : { affordablePromptTokens: verdict.affordablePromptTokens }),
  };
}
