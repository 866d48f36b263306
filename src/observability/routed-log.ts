// The `routed` log line: one per request, written from its record (one subscriber among others).
import type { Logger } from "../logger.ts";
import type { RecordListener, RequestRecord } from "./request-record.ts";

export function routedLogFields(record: RequestRecord): object {
  return {
    reqId: record.id,
    endpoint: record.endpoint,
    protocol: record.clientProtocol,
    ...(record.route === undefined ? {} : { route: record.route }),
    model: record.requestedModel,
    ...(record.client === undefined ? {} : { client: record.client }),
    status: record.status,
    servedBy: record.servedBy?.deploymentKey,
    ...(record.cache === undefined ? {} : { cache: record.cache }),
    ...(record.servedBy?.cost === "paid" ? { cost: "paid" } : {}),
    attempts: record.attempts.map(
      (attempt) =>
        `${attempt.deploymentKey}:${attempt.outcome}${attempt.status === undefined ? "" : `:${attempt.status}`}`,
    ),
    ...(record.continuations.length === 0 ? {} : { continuations: record.continuations.length }),
    ...(record.queueWaitMs > 0 ? { queuedMs: record.queueWaitMs } : {}),
    ...(record.earlyCommitMs === undefined ? {} : { earlyCommitMs: record.earlyCommitMs }),
    ...(record.isAnswerNotKept === true ? { isAnswerNotKept: true } : {}),
    ms: record.durationMs,
  };
}

/** pino's loggers say whether a level is on; building the line's fields for nothing costs on every request. */
type RoutedLogger = Pick<Logger, "info"> & { isLevelEnabled?(level: string): boolean };

export function routedLogLine(logger: () => RoutedLogger | undefined): RecordListener {
  return (record) => {
    const target = logger();
    if (target === undefined || target.isLevelEnabled?.("info") === false) return;
    target.info(routedLogFields(record), "routed");
  };
}
