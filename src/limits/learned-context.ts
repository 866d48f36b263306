// The context window a deployment's own refusal stated ("maximum context length is 500 tokens": stated-context.ts),
// remembered when it is smaller than the one listed for the deployment (its `context` in config, or the model list's):
// without it, every later prompt the listed window holds was sent there, refused and failed over, `truncation: "auto"`
// sent whole first, and `POST /v1/responses/input_tokens` counted against the listed window. Kept in the
// refused-features book (refused-features.ts) as a sized lesson, as an embeddings batch limit is: `minEntries` is the
// window + 1 (a prompt of that many tokens or more is refused), so that the state file, Redis sharing, the lesson's
// lifetime (`cooldowns.unsupported_feature_ms`), `POST /admin/cooldowns/reset` and a reload's forgetting apply as they
// do to every refused feature, two lessons that both hold keep the smaller window, and a success whose reported prompt
// was larger than the window ends it (`unlearn` with the prompt as the size: the provider was upgraded). Applied for
// LEARNED_CONTEXT_TRUST_MS from its refusal, then tried again; kept apart from the book's bound on feature lessons
// (refused-features.ts isGatewayLesson). Pure.

import type { FeatureRefusal, RefusedFeatures } from "./refused-features.ts";
import type { StatedContext } from "./stated-context.ts";

/**
 * The lesson's feature: the gateway's prefix (router/request-features.ts GATEWAY_PREFIX), which no request feature
 * carries, so the router never ranks a candidate last for it; only the context fit reads it (`learnedLimitsOf`).
 */
export const CONTEXT_WINDOW_FEATURE = "x_gateway_context_window";

/**
 * How long a learned window keeps longer prompts from the deployment: 1 h from the refusal that taught it (not the
 * lesson's `cooldowns.unsupported_feature_ms`, 6 h by default). The fit keeps every longer prompt away, so no success
 * could end the lesson: a provider that raised its window (or a refusal that misstated it) was held to it for the whole
 * lifetime. Past this, the listed window is read again and the next longer prompt is the re-trial: refused stating the
 * window again, the lesson is learned afresh (its hour restarts) and the request fails over as the first did, one
 * refused call an hour; answered, the success ends the lesson (clearOutgrownWindow). As the embeddings input limit's
 * LEARNED_INPUTS_TRUST_MS (pipeline/embeddings-chunks.ts).
 */
export const LEARNED_CONTEXT_TRUST_MS = 60 * 60_000;

/** A deployment's context limits as the fit check reads them (router/context-fit.ts ContextLimits). */
export interface ContextWindowLimits {
  readonly contextTokens: number | undefined;
  readonly maxOutputTokens: number | undefined;
}

/** The limits with a learned window in force: the refusal's words, for skip reasons and route explanations. */
export interface LearnedWindowLimits extends ContextWindowLimits {
  readonly learnedWindow?: { readonly limitTokens: number; readonly reason: string; readonly atMs: number };
}

/** The window a held lesson states (`minEntries` less one), or undefined when no lesson about it holds at `nowMs`. */
export function learnedWindowOf(
  book: Pick<RefusedFeatures, "refusalOf">,
  deploymentKey: string,
  nowMs: number,
): (FeatureRefusal & { readonly limitTokens: number }) | undefined {
  const lesson = book.refusalOf(deploymentKey, [CONTEXT_WINDOW_FEATURE], nowMs);
  if (lesson?.minEntries === undefined) return undefined;
  return { ...lesson, limitTokens: lesson.minEntries - 1 };
}

/**
 * The limits the fit check reads: `limits` (as listed, or as calibration made them: PromptCalibration.limitsFor),
 * with the window a refusal stated when it is smaller and was learned less than LEARNED_CONTEXT_TRUST_MS ago. An output limit as large as that window or larger cannot be a
 * separate one: the window is then read as shared with the output, as the refusals word it ("maximum context length").
 */
export function learnedLimitsOf(
  limits: ContextWindowLimits,
  book: Pick<RefusedFeatures, "refusalOf">,
  deploymentKey: string,
  nowMs: number,
): LearnedWindowLimits {
  const learned = learnedWindowOf(book, deploymentKey, nowMs);
  if (learned === undefined || nowMs >= learned.atMs + LEARNED_CONTEXT_TRUST_MS) return limits;
  const { limitTokens } = learned;
  if (limits.contextTokens !== undefined && limits.contextTokens <= limitTokens) return limits;
  const maxOutputTokens =
    limits.maxOutputTokens !== undefined && limits.maxOutputTokens < limitTokens ? limits.maxOutputTokens : undefined;
  return {
    contextTokens: limitTokens,
    maxOutputTokens,
    learnedWindow: { limitTokens, reason: learned.reason, atMs: learned.atMs },
  };
}

/**
 * A context-length refusal of the deployment: its stated window is learned when it is smaller than `listedTokens`
 * (or none is listed). Returns whether the refusal is explained by a stated window (learned now, or no larger than
 * one learned before): then no calibration is to be learned from it (PromptCalibration.learnTooLong measures the
 * prompt against the listed window, and would count the same refusal twice: every estimate scaled up as well).
 */
export function learnStatedWindow(
  book: Pick<RefusedFeatures, "learn" | "refusalOf" | "unlearn">,
  deploymentKey: string,
  listedTokens: number | undefined,
  stated: StatedContext | undefined,
  reason: string,
  nowMs: number,
): boolean {
  if (stated === undefined) return false;
  if (listedTokens !== undefined && stated.limitTokens >= listedTokens) return false;
  // A re-trial's refusal (the lesson past LEARNED_CONTEXT_TRUST_MS) states the window as it is now: it replaces the
  // lesson rather than keeping the smaller of the two, which held a provider that raised its window (500 to 1,000) to
  // the old one for another hour at every re-trial by a prompt longer than the new one.
  const known = learnedWindowOf(book, deploymentKey, nowMs);
  if (known !== undefined && nowMs >= known.atMs + LEARNED_CONTEXT_TRUST_MS && stated.limitTokens > known.limitTokens) {
    book.unlearn(
      deploymentKey,
      [CONTEXT_WINDOW_FEATURE],
      nowMs,
      new Map([[CONTEXT_WINDOW_FEATURE, known.limitTokens + 1]]),
    );
  }
  book.learn(deploymentKey, CONTEXT_WINDOW_FEATURE, reason, nowMs, undefined, stated.limitTokens + 1);
  return true;
}

/**
 * A success of the deployment whose provider reported `promptTokens`, for a request sent at `sentAtMs`: a learned
 * window smaller than that prompt no longer holds (the provider raised it); a refusal learned after the request was
 * sent is newer evidence and stays (RefusedFeatures.unlearn).
 */
export function clearOutgrownWindow(
  book: Pick<RefusedFeatures, "knows" | "unlearn">,
  deploymentKey: string,
  promptTokens: number | undefined,
  sentAtMs: number,
): void {
  if (promptTokens === undefined || !(promptTokens > 0) || !book.knows(deploymentKey)) return;
  book.unlearn(deploymentKey, [CONTEXT_WINDOW_FEATURE], sentAtMs, new Map([[CONTEXT_WINDOW_FEATURE, promptTokens]]));
}
