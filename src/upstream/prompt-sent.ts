// What a failed attempt's prompt was, for its charge once its provider took it in (pipeline/recorder.ts).
import type { Deployment } from "../providers/catalog.ts";
import type { FailoverServices, ForwardRequest } from "./forward-types.ts";

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
