// The tokens a JSON answer says it used, in whichever of the shapes the hosts report them.
import { isRecord } from "../is-record.ts";
import { countTextTokens } from "../limits/token-estimate.ts";
import { EchoedPrompt, type EchoRequest } from "../streaming/echoed-prompt.ts";
import { OutputTokenCount } from "../streaming/estimated-usage.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { tokenCount } from "../streaming/stream-event.ts";

/**
 * Chat's `prompt_tokens` / `completion_tokens`, or the Responses API's (and a token-billed transcription's, and
 * `gpt-image-1`'s: the prompt and the images' tokens) `input_tokens` / `output_tokens`. An answer giving only
 * `total_tokens` (Voyage's embeddings: `{"usage": {"total_tokens": 700}}`) spent it on its input, less any output it
 * names: read as 0 before, the budgets kept the estimate and the stats counted no token.
 */
export function readUsage(json: unknown): TokenUsage {
  const usage = (json as { usage?: Record<string, unknown> | null } | null)?.usage;
  const completionTokens = tokenCount(usage?.completion_tokens) ?? tokenCount(usage?.output_tokens) ?? 0;
  const totalTokens = tokenCount(usage?.total_tokens);
  return {
    promptTokens:
      tokenCount(usage?.prompt_tokens) ??
      tokenCount(usage?.input_tokens) ??
      (totalTokens === undefined ? 0 : Math.max(0, totalTokens - completionTokens)),
    completionTokens,
  };
}

/**
 * The gateway's estimate of a chat or legacy completion answer, or a native Responses answer (`responses_api: native`:
 * its `output` items), that came without `usage` (several OpenAI-compatible providers leave it out): `promptTokens`,
 * the prompt as the serving deployment counts it (calibrated, of the body it was sent: its reservation's), plus the
 * answer's text, reasoning, refusals and tool calls counted with the gateway's tokenizer. Made from the answer already parsed, only when its usage is missing: an answer with usage pays nothing.
 * Until 2026-12-07 it was made after the attempt was settled, so only the record had it: the attempt, /stats and the
 * budgets (its reservation only) counted none of the answer.
 */
export function estimatedAnswerUsage(answer: Record<string, unknown>, promptTokens: number): TokenUsage {
  const output = new OutputTokenCount(countTextTokens);
  output.note(answer);
  return { promptTokens, completionTokens: output.tokens };
}

/**
 * The estimate of an answer whose usage is none to believe (on a door that estimates usage): missing, or stating 0
 * tokens in all or 0 output tokens for an answer that has output, as a stream's (streaming/segment-progress.ts
 * #isBelieved): some proxies fill `usage` with zeros they never counted. Undefined when its usage is believed (an
 * empty answer's 0 output tokens, as a legacy completion's that asked `echo` and generated nothing past its prompt: prompt
 * scoring). A legacy completion's echoed prompt is no output (streaming/echoed-prompt.ts): until 2026-12-07 its estimate
 * counted it as output, and an echo followed by text, reported as 0 output tokens, was believed. Until 2026-12-07 a
 * JSON answer's zeros were believed: its record, /stats and the metrics counted them and its client was told them.
 */
export function unreportedAnswerUsage(
  answer: Record<string, unknown>,
  promptTokens: number,
  request: EchoRequest,
): TokenUsage | undefined {
  const echo = EchoedPrompt.of(request);
  const generated = echo?.generated(answer, "").json ?? answer;
  if (!isRecord(answer.usage)) return estimatedAnswerUsage(generated, promptTokens);
  const reported = readUsage(answer);
  // An echo of a prompt of tokens has no text to take off: its report is believed (EchoedPrompt.hasTokenPrompt).
  if (reported.completionTokens > 0 || (reported.promptTokens > 0 && echo?.hasTokenPrompt === true)) return undefined;
  const estimate = estimatedAnswerUsage(generated, promptTokens);
  return reported.promptTokens === 0 || estimate.completionTokens > 0 ? estimate : undefined;
}
