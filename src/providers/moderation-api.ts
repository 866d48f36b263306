// How a moderation model is called (`/v1/moderations`): a native moderation endpoint, or Llama Guard's verdict through
// chat completions; as its `moderation_api` says, else read from its id. A safety classifier that answers in neither
// way is not served.
import type { ModelSettings } from "../config/types.ts";
import type { Deployment } from "./catalog.ts";

/**
 * `native`: the provider's own `/moderations` (OpenAI's `omni-moderation-*`, Mistral's `mistral-moderation-*`, any
 * host of that API). `llama_guard`: Llama Guard 3 or 4 through `/chat/completions` (Groq, Cloudflare, Together,
 * DeepInfra, ...), whose `safe` / `unsafe\nS1,S10` verdict the gateway translates.
 */
export type ModerationApi = "native" | "llama_guard";

/**
 * Llama Guard and its version: `meta-llama/llama-guard-4-12b`, `@cf/meta/llama-guard-3-8b`,
 * `meta-llama/Meta-Llama-Guard-3-8B`, `meta-llama/LlamaGuard-2-8b`, `Llama-Guard-3-11B-Vision`; a number followed
 * by `b` is a size, not a version (`LlamaGuard-7b` is the first Llama Guard).
 */
const LLAMA_GUARD = /llama[-_ ]?guard(?:[-_ ]?(\d+)(?![\d.]*b))?/i;

/**
 * Safety classifiers that take chat messages but answer otherwise: Prompt Guard (a jailbreak score), gpt-oss-safeguard
 * (a verdict under a policy the caller writes), ShieldGemma (a yes/no per policy), Granite Guardian (yes/no).
 */
const OTHER_CLASSIFIERS = /prompt[-_ ]?guard|safeguard|shieldgemma|granite[-_ ]?guardian/i;

/** What says how a model is called: its upstream id, and its configured `moderation_api` (or its known model's). */
export type ModerationModel = Pick<ModelSettings, "id" | "moderationApi">;

/**
 * The way this model is called, or undefined: none the gateway speaks. A configured `moderation_api` wins: a provider's
 * alias of Llama Guard (`acme-safety-v2`) or a native model whose id looks like another classifier is called as the
 * config says. Else the id decides (moderationApiFromId).
 */
export function moderationApiOf(model: ModerationModel): ModerationApi | undefined {
  return model.moderationApi ?? moderationApiFromId(model.id);
}

/**
 * The way a model is called read from its id alone, or undefined: none the gateway speaks. Llama Guard 1 and 2 answer
 * in their own taxonomies (O1-O6; S1-S11, numbered otherwise than MLCommons' S1-S14), which would be mapped to the
 * wrong categories: not served. Any other moderation model (a configured `kind: moderation`) is taken to be native.
 */
export function moderationApiFromId(modelId: string): ModerationApi | undefined {
  if (OTHER_CLASSIFIERS.test(modelId)) return undefined;
  const guard = LLAMA_GUARD.exec(modelId);
  if (guard === null) return "native";
  const version = guard[1] === undefined ? undefined : Number(guard[1]);
  return version !== undefined && version >= 3 ? "llama_guard" : undefined;
}

/**
 * The upstream calls a request makes of this model: a Llama Guard moderation one chat call per input, anything else
 * one. The request budgets count each (limits/budget-types.ts BudgetCost.requests), as the provider does.
 * `moderationInputs`: a moderation request's inputs; undefined for every other request.
 */
export function upstreamCallsOf(model: ModerationModel, moderationInputs: number | undefined): number {
  if (moderationInputs === undefined || moderationInputs <= 1) return 1;
  return moderationApiOf(model) === "llama_guard" ? moderationInputs : 1;
}

/**
 * The `max_tokens` of each Llama Guard call (upstream/moderation-dialect.ts): its longest verdict (`unsafe` and all
 * fourteen codes) is under 50 tokens.
 */
export const LLAMA_GUARD_MAX_TOKENS = 64;

/**
 * The prompt tokens Llama Guard's prompt template adds to each call, as the prompt estimator counts them
 * (limits/token-estimate.ts countTextTokens, the units every estimate and its calibration are in). The gateway sends
 * the input alone as the user's message; the model's chat template wraps it in Llama Guard's task, its fourteen
 * hazard categories and its answer instructions, and the provider counts that whole prompt. Meta documents the format
 * on the model cards (https://www.llama.com/docs/model-cards-and-prompt-formats/llama-guard-3/ and
 * .../llama-guard-4/); the chat template applying it is the models' (`chat_template` of meta-llama/Llama-Guard-3-8B
 * and meta-llama/Llama-Guard-4-12B on Hugging Face). Measured on that template rendered around one message, the
 * message's own tokens taken away: 338 estimated for Llama Guard 3 (869 characters, six special tokens), 329 for
 * Llama Guard 4 (its header tokens are shorter); the larger is kept. cl100k (which Llama 3's tokenizer extends) and
 * o200k count ~201 real tokens, about what a provider charges: until 2026-12-07 the estimate left them out, so a
 * short input's call reserved a few tokens of the ~200 it was charged, and the calibration never learned the gap (it
 * ignores prompts under 256 estimated tokens, limits/prompt-calibration.ts MIN_LEARNING_TOKENS).
 */
export const LLAMA_GUARD_TEMPLATE_TOKENS = 338;

/**
 * The prompt tokens a request's calls to this model carry besides the request's own text: Llama Guard's template,
 * once per call (per input); 0 for every other request and model.
 */
export function gatewayPromptTokensOf(model: ModerationModel, moderationInputs: number | undefined): number {
  if (moderationInputs === undefined || moderationApiOf(model) !== "llama_guard") return 0;
  return Math.max(1, moderationInputs) * LLAMA_GUARD_TEMPLATE_TOKENS;
}

/**
 * The output tokens a request's calls to this model ask for when the gateway sets them, or undefined: the request's own
 * (`max_tokens` and the body rules; every request but a Llama Guard moderation). A Llama Guard moderation of N inputs
 * is N calls of LLAMA_GUARD_MAX_TOKENS each: the token budgets reserve all of them, as they reserve any request's
 * `max_tokens` (`count_max_tokens`), so that a `tpm` that holds one call's prompt and output does not let N through.
 */
export function gatewayOutputTokensOf(
  model: ModerationModel,
  moderationInputs: number | undefined,
): number | undefined {
  if (moderationInputs === undefined || moderationApiOf(model) !== "llama_guard") return undefined;
  return Math.max(1, moderationInputs) * LLAMA_GUARD_MAX_TOKENS;
}

/**
 * Whether a moderation model may be sent an image part. Llama Guard 3 reads text only, but for its 11B Vision model;
 * Llama Guard 4 reads images; a Llama Guard whose id names no version (a configured `moderation_api: llama_guard`) is
 * taken to read text only. A native model is taken to (omni-moderation does; one that does not answers with an error
 * and the next candidate is tried). Used when the model's `vision` is not configured.
 */
export function moderationTakesImages(model: ModerationModel): boolean {
  if (moderationApiOf(model) !== "llama_guard") return true;
  const version = Number(LLAMA_GUARD.exec(model.id)?.[1]);
  return version >= 4 || /vision/i.test(model.id);
}

/**
 * Whether a deployment may be sent image parts: its `vision`, not false. A moderation model's is its configured one,
 * else what its id says (moderationTakesImages; the metadata table states none for Llama Guard, which reads as false).
 */
export function acceptsImages(deployment: Deployment): boolean {
  if (deployment.kind !== "moderation") return deployment.capabilities.vision !== false;
  return deployment.model.vision ?? moderationTakesImages(deployment.model);
}
