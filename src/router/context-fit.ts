// PURE: whether a request's prompt and requested output fit a deployment's context limits.
//
// LiteLLM's table (our metadata) gives `max_input_tokens` (the prompt's limit) and `max_output_tokens`; its own
// router pre-call check compares the prompt alone with `max_input_tokens`. When the two numbers differ (Gemini:
// 1,048,576 in, 65,536 out; Claude) the prompt must fit the input limit and the output is bounded on its own, so
// adding `max_tokens` to the prompt refused requests the provider serves. When only one number is known, or both
// are the same, it is one window the prompt and the output share (OpenAI-style "maximum context length"), and
// prompt + max_tokens must fit it. A `max_tokens` above the output limit is never a reason to skip: providers
// clamp it or answer with an error, and an error fails over while a refusal loses the request.
import type { LearnedWindowLimits } from "../limits/learned-context.ts";
import { type OutputLimitName, outputTokensFor } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import { gatewayOutputTokensOf, gatewayPromptTokensOf } from "../providers/moderation-api.ts";

/**
 * A deployment's limits as the fit check reads them; `learnedWindow` when the context is the smaller window one of its
 * refusals stated (limits/learned-context.ts), which the description names.
 */
export type ContextLimits = Pick<Deployment, "contextTokens" | "maxOutputTokens"> &
  Pick<LearnedWindowLimits, "learnedWindow">;

export interface ContextFit {
  readonly fits: boolean;
  /** Tokens counted against `limitTokens`: the prompt, plus `max_tokens` in a shared window. */
  readonly neededTokens: number;
  readonly limitTokens: number;
  /** One window for the prompt and the output (true), or an input limit of its own (false). */
  readonly isSharedWindow: boolean;
  /** The numbers used, for skip reasons and route explanations. */
  readonly description: string;
}

/** What of a request its fit reads: router/route-types.ts RouteRequest's fields of these names. */
export interface FitRequest {
  readonly promptTokens?: number | undefined;
  readonly contextTokens?: number | undefined;
  readonly maxOutputTokens?: number;
  readonly outputLimitName?: OutputLimitName | undefined;
  readonly isLegacyCompletion?: boolean | undefined;
  readonly moderationInputs?: number | undefined;
}

/**
 * What one call of the request puts in `deployment`'s window: its prompt's estimate (not calibrated yet) and the
 * output it asks for; undefined when nothing is fitted. A Llama Guard moderation's call holds one input (its fit is
 * the longest input's), wrapped in the model's prompt template, and asks for `max_tokens: 64`
 * (providers/moderation-api.ts): both count in the window, as the budgets count them. Until 2026-12-07 the fit read
 * the input's text alone, and a call its window could not hold was sent (and refused, or cut by its host).
 */
export function fitTokensOf(
  request: FitRequest,
  deployment: Deployment,
): { readonly promptTokens: number; readonly outputTokens: number } | undefined {
  const fitted = request.contextTokens ?? request.promptTokens;
  if (fitted === undefined) return undefined;
  const oneCall = request.moderationInputs === undefined ? undefined : 1;
  return {
    promptTokens: fitted + gatewayPromptTokensOf(deployment.model, oneCall),
    outputTokens:
      gatewayOutputTokensOf(deployment.model, oneCall) ??
      outputTokensFor(deployment, request.maxOutputTokens ?? 0, request.outputLimitName, request.isLegacyCompletion),
  };
}

/**
 * `a + b` in digits, exact where the double is not: a limit up to 2^53 - 1 passes the doors' schemas, and above 2^53 a
 * double holds only even numbers, so "prompt ~8 + 9007199254740991" was printed as ~9007199254741000.
 */
function exactSum(a: number, b: number): string {
  const sum = a + b;
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) && !Number.isSafeInteger(sum)
    ? String(BigInt(a) + BigInt(b))
    : String(sum);
}

/** Whether the output shares the context window: no separate output limit is known, or it equals the window. */
export function isSharedWindow(limits: ContextLimits): boolean {
  return limits.maxOutputTokens === undefined || limits.maxOutputTokens === limits.contextTokens;
}

/**
 * The fit of a prompt and a requested output; undefined when the deployment's context is unknown. `outputParam`: the
 * request's name for its output limit, as its door calls it (RouteRequest `outputLimitParam`).
 */
export function contextFit(
  limits: ContextLimits,
  promptTokens: number,
  requestedOutputTokens: number | undefined,
  outputParam = "max_tokens",
): ContextFit | undefined {
  const limitTokens = limits.contextTokens;
  if (limitTokens === undefined) return undefined;
  const output = requestedOutputTokens ?? 0;
  const learned = limits.learnedWindow === undefined ? "" : `; ${limitTokens} as learned from its refusal`;
  if (isSharedWindow(limits)) {
    const neededTokens = promptTokens + output;
    return {
      fits: neededTokens <= limitTokens,
      neededTokens,
      limitTokens,
      isSharedWindow: true,
      description: `needs ~${exactSum(promptTokens, output)} tokens of context, has ${limitTokens} (prompt ~${promptTokens} + ${outputParam} ${output} share one window${learned})`,
    };
  }
  return {
    fits: promptTokens <= limitTokens,
    neededTokens: promptTokens,
    limitTokens,
    isSharedWindow: false,
    description: `needs ~${promptTokens} tokens of prompt, input limit ${limitTokens} (${outputParam} ${output} counts against the separate output limit ${limits.maxOutputTokens}${learned})`,
  };
}
