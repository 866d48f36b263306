// What a context-length refusal teaches the recorder's books (recorder.ts, the one place that applies it): a window the
// refusal states smaller than the one listed for the deployment is learned as that deployment's window
// (limits/learned-context.ts), and explains the refusal; else the prompt's calibration learns from it
// (PromptCalibration.learnTooLong). Never both: the calibration measures the prompt against the listed window, and
// would scale every later estimate up for a refusal the smaller window already accounts for.
import { learnStatedWindow } from "../limits/learned-context.ts";
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
  if (
    learnStatedWindow(refusedFeatures, key, deployment.contextTokens, report.statedContext, report.reason, clock.now())
  )
    return;
  if (prompt !== undefined) promptCalibration.learnTooLong(key, prompt.estimate, deployment, prompt.maxOutputTokens);
}
