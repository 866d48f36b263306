// What a failed attempt's prompt was, and what the attempt stays charged once its provider took it in
// (pipeline/recorder.ts for the deployment's budgets, pipeline/record-builder.ts for its client's).
import { hasProviderCountedPrompt } from "../errors/outcomes.ts";
import { promptTokensSent } from "../limits/token-estimate.ts";
import type { Deployment } from "../providers/catalog.ts";
import { gatewayPromptTokensOf } from "../providers/moderation-api.ts";
import type { AttemptResult } from "./attempt-context.ts";
import type { AttemptReport, CalibratingPrompt, FailoverServices, ForwardRequest } from "./forward-types.ts";

/**
 * The prompt estimate of the body `deployment` is sent, from `promptTokens` (the request's, or the one it calibrates
 * with): without the reasoning sent back when its host refused the field (removed before the send), and with
 * Llama Guard's prompt template once per call (providers/moderation-api.ts LLAMA_GUARD_TEMPLATE_TOKENS), which its
 * provider counts around each input. The reservation, the calibration's estimate and what a failed attempt stays
 * charged start from it: without the template, the calibration learned a Llama Guard deployment's long inputs as
 * denser than they are, and left its short ones (most) reserved at a few tokens of the ~200 each was charged.
 */
export function promptTokensTo(
  deployment: Deployment,
  request: Pick<ForwardRequest, "reasoningPromptTokens" | "moderationInputs">,
  promptTokens: number,
  isReasoningRemoved: boolean,
): number {
  const sent = promptTokensSent(promptTokens, request.reasoningPromptTokens, isReasoningRemoved);
  return sent + gatewayPromptTokensOf(deployment.model, request.moderationInputs);
}

/**
 * The prompt an attempt's body carries, as its deployment counts it: its reservation's prompt, plus a prefill
 * continuation's delivered text (spentOutputTokens), which its reservation leaves out (a segment's estimate adds it:
 * pipeline/continuation-source.ts) but its provider takes in. What the attempt stays charged when it fails after it
 * went out (AttemptReport.reservedPromptTokens); before 2026-12-07 a prefill continuation's was the original prompt.
 */
export function promptSentOf(
  deployment: Deployment,
  request: ForwardRequest,
  services: FailoverServices,
  sentTokens: number,
  prompt: number,
): number {
  const spent = request.spentOutputTokens;
  if (spent === undefined) return prompt;
  return services.promptTokensFor?.(deployment, sentTokens + spent) ?? sentTokens + spent;
}

/**
 * What a failed attempt stays charged: the usage its answered calls reported (a Llama Guard moderation's earlier
 * inputs, plus the prompts of its calls taken in without a report: callsPromptTokens), else the prompt part of its
 * reservation when its provider counted the prompt (sent, and not refused by an answer: errors/outcomes.ts
 * hasProviderCountedPrompt), else nothing. Its deployment's budgets keep it (pipeline/recorder.ts), and so do its
 * client's (the record's attempt carries it: RecordedAttempt.chargedTokens). Until 2026-12-07 every failed attempt
 * without a report was charged 0, to its deployment and to its client.
 */
export function failedAttemptTokens(report: AttemptReport): number {
  const spent = report.usage;
  const reported = spent === undefined ? 0 : spent.promptTokens + spent.completionTokens;
  // A Llama Guard moderation's calls, each a request its provider counted on its own (moderation-attempt.ts).
  if (report.callsPromptTokens !== undefined) return reported + report.callsPromptTokens;
  if (spent !== undefined) return reported;
  const isCounted = hasProviderCountedPrompt(report.outcome, report.isSent === true, report.status);
  return isCounted ? (report.reservedPromptTokens ?? 0) : 0;
}

/** A failed Llama Guard attempt's unreported calls' prompts, calibrated as its reservation's prompt is. */
export function callsPromptOf(
  deployment: Deployment,
  unreportedPromptTokens: number | undefined,
  services: FailoverServices,
): { callsPromptTokens?: number } {
  if (unreportedPromptTokens === undefined) return {};
  if (unreportedPromptTokens === 0) return { callsPromptTokens: 0 };
  return {
    callsPromptTokens: services.promptTokensFor?.(deployment, unreportedPromptTokens) ?? unreportedPromptTokens,
  };
}

/**
 * What an attempt's answer may calibrate (FailoverServices.attemptEnded), undefined when nothing may (images,
 * documents: ForwardRequest.calibratingPromptTokens): the prompt it was sent and the output it asked for; for a Llama
 * Guard call refused as longer than the model's context, that call's own (AttemptResult.refusedCall). Each call is a
 * request of its own, one input wrapped in the template, asking for 64 tokens: until 2026-12-07 such a refusal was
 * learned as if every input's prompt together had been refused, against the window less every call's output, which
 * taught a lower factor than the refused call showed, or none.
 */
export function calibratingPromptOf(
  deployment: Deployment,
  request: ForwardRequest,
  result: AttemptResult,
  sent: { readonly isReasoningRemoved: boolean; readonly maxOutputTokens: number },
): CalibratingPrompt | undefined {
  if (request.calibratingPromptTokens === undefined) return undefined;
  if (!result.ok && result.refusedCall !== undefined) return result.refusedCall;
  return {
    estimate: promptTokensTo(deployment, request, request.calibratingPromptTokens, sent.isReasoningRemoved),
    maxOutputTokens: sent.maxOutputTokens,
    ...(isManyInputs(request) ? { isManyInputs: true } : {}),
  };
}

/** Several inputs each fitted alone: an embeddings batch, a moderation of several inputs (CalibratingPrompt). */
function isManyInputs(request: ForwardRequest): boolean {
  if ((request.moderationInputs ?? 0) > 1) return true;
  const input = request.body.input;
  return request.endpointPath === "/embeddings" && Array.isArray(input) && input.length > 1 && !isTokenIds(input);
}

/** One input given as token ids ([1, 2, 3]): one prompt, not many. */
function isTokenIds(input: readonly unknown[]): boolean {
  return input.every((item) => typeof item === "number");
}
