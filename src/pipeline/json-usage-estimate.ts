// A JSON answer translated from chat that came without `usage` (several OpenAI-compatible providers leave it out):
// the client gets the gateway's estimate, marked `x_gateway.usage_estimated`, as a stream's client that asked for
// usage does (docs/streaming.md "Usage chunks"). The Responses and Messages doors read it from here: without it
// their `usage` was null and `output_tokens` 0, so the Agents SDK, the AI SDK and Claude Code's meter saw nothing.
import { parseJsonRecord } from "../is-record.ts";
import { countTextTokens } from "../limits/token-estimate.ts";
import { OutputTokenCount, withEstimatedUsage } from "../streaming/estimated-usage.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { JsonResult } from "../upstream/forward-types.ts";
import type { PipelineRequest } from "./pipeline-types.ts";

/**
 * The answer with its estimated usage, or undefined when it needs none (it reported usage, is not a chat or legacy
 * completion, or is not a JSON object). Parsed a second time only here: an answer with usage pays nothing.
 */
export function withJsonUsageEstimate(
  request: PipelineRequest,
  result: JsonResult,
): { readonly result: JsonResult; readonly usage: TokenUsage } | undefined {
  if (result.isUsageMissing !== true || result.api !== "chat" || request.endpoint.estimatesUsage !== true) {
    return undefined;
  }
  const answer = parseJsonRecord(result.bodyText);
  if (answer === undefined) return undefined;
  const output = new OutputTokenCount(countTextTokens);
  output.note(answer);
  const usage = {
    // The prompt as the serving deployment counts it (calibrated from its provider's reports), as for a stream.
    // Of the body it was sent (without reasoning its host refused: ForwardRequest.reasoningPromptTokens).
    promptTokens: request.runtime.promptCalibration.promptTokensFor(
      result.deployment,
      result.promptTokensSent ?? request.prompt.promptTokens,
    ),
    completionTokens: output.tokens,
  };
  return { result: { ...result, bodyText: JSON.stringify(withEstimatedUsage(answer, usage)) }, usage };
}
