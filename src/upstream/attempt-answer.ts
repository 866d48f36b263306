// What a successful attempt hands the door: its JSON answer, or the opened stream or audio with what settles it.
import type { Reservation } from "../limits/budgets.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { AttemptResult } from "./attempt.ts";
import type { AttemptReport, ForwardOutcome } from "./forward-types.ts";

export function answerOf(
  deployment: Deployment,
  result: AttemptResult & { ok: true },
  reservation: Reservation,
  report: AttemptReport,
): ForwardOutcome["result"] {
  if (result.audio !== undefined) {
    return {
      kind: "audio",
      status: result.status,
      audio: result.audio,
      deployment,
      api: "chat",
      reservation,
      attempt: report,
    };
  }
  if (result.stream === undefined) {
    if (result.json === undefined) throw new Error("an attempt succeeded with neither JSON nor a stream");
    return result.json;
  }
  return {
    kind: "stream",
    stream: result.stream.opened,
    deployment,
    reservation,
    isUsageInjected: result.stream.isUsageInjected,
    api: result.stream.api,
    attempt: report,
  };
}
