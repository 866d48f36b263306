// The `routed` log line: one per request, written from its record (one subscriber among others).
import type { Logger } from "../logger.ts";
import type { RecordListener, RequestRecord } from "./request-record.ts";

export function routedLogFields(record: RequestRecord): object {
  return {
    reqId: record.id,
    endpoint: record.endpoint,
    protocol: record.clientProtocol,
    model: record.requestedModel,
    status: record.status,
    servedBy: record.servedBy?.deploymentKey,
    ...(record.servedBy?.cost === "paid" ? { cost: "paid" } : {}),
    attempts: record.attempts.map(
      (attempt) =>
        `${attempt.deploymentKey}:${attempt.outcome}${attempt.status === undefined ? "" : `:${attempt.status}`}`,
    ),
    ...(record.continuations.length === 0 ? {} : { continuations: record.continuations.length }),
    ...(record.queueWaitMs > 0 ? { queuedMs: record.queueWaitMs } : {}),
    ms: record.durationMs,
  };
}

export function routedLogLine(logger: () => Pick<Logger, "info"> | undefined): RecordListener {
  return (record) => logger()?.info(routedLogFields(record), "routed");
}
