// What a context-length refusal teaches the recorder's books (recorder.ts, the one place that applies it): a window the
// refusal states smaller than the one listed for the deployment is learned as that deployment's window
// (limits/learned-context.ts), and explains the refusal; else the prompt's calibration learns from it
// (PromptCalibration.learnTooLong). Never both: the calibration measures the prompt against the listed window, and
// would scale every later estimate up for a refusal the smaller window already accounts for.
import { learnStatedWindow } from "../limits/learned-context.ts";
import { MAX_FACTOR, MIN_LEARNING_TOKENS } from "../limits/prompt-calibration.ts";
import type { StatedContext } from "../limits/stated-context.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { AttemptReport, CalibratingPrompt } from "../upstream/forward-types.ts";
import type { RecorderBooks } from "./recorder-books.ts";

export function learnContextRefusal(
  { refusedFeatures, promptCalibration, clock }: Pick<RecorderBooks, "refusedFeatures" | "promptCalibration" | "clock">,
  deployment: Deployment,
  report: Pick<AttemptReport, "statedContext" | "reason">,
  prompt: CalibratingPrompt | undefined,
): void {
  const key = deployment.key;
  const stated = plausibleWindowOf(report.statedContext, prompt);
  if (learnStatedWindow(refusedFeatures, key, deployment.contextTokens, stated, report.reason, clock.now())) return;
  if (prompt !== undefined) promptCalibration.learnTooLong(key, prompt.estimate, deployment, prompt.maxOutputTokens);
}

/**
 * The stated window when one refusal may be trusted with it (it leaves the deployment out of every longer request for
 * `cooldowns.unsupported_feature_ms`, for every replica): not below MIN_LEARNING_TOKENS ("maximum context length is 1
 * tokens" is no model's window), and one the request could have exceeded (its estimate, off by MAX_FACTOR at most, with
 * the output it asked for): a 300-token prompt refused as over 4,096 is refused for something else (an aggregator's
 * message about another model). Else undefined: the refusal teaches the calibration, bounded, as before 2026-12-07.
 */
function plausibleWindowOf(
  stated: StatedContext | undefined,
  prompt: CalibratingPrompt | undefined,
): StatedContext | undefined {
  if (stated === undefined || stated.limitTokens < MIN_LEARNING_TOKENS) return undefined;
  if (prompt !== undefined && prompt.estimate * MAX_FACTOR + prompt.maxOutputTokens <= stated.limitTokens)
    return undefined;
  return stated;
}
