// Builds the observers of finished requests (metrics, request log, dashboard activity) for one gateway: picks
// the request log's backend from the state settings (Redis when `state.redis_url` is set, else the embedded
// SQLite file's segment files, else memory).
import type { Env } from "../config/env.ts";
import type { GatewayConfig } from "../config/types.ts";
import { FileRequestLogBackend } from "../observability/file-request-log.ts";
import { Observers, type RecordObserver } from "../observability/observers.ts";
import { loggableUrl, otlpSettings } from "../observability/otlp-settings.ts";
import { MemoryRequestLogBackend, type RequestLogBackend } from "../observability/request-log.ts";
import { RequestLogFile } from "../observability/request-log-file.ts";
import type { GatewayRuntime, Logger } from "../pipeline/gateway-runtime.ts";
import { GATEWAY_VERSION } from "../server/info-routes.ts";
import { runtimeLiveState } from "./live-state-source.ts";

export async function createObservers(
  config: GatewayConfig,
  runtime: GatewayRuntime,
  logger: Logger,
  env: Env,
): Promise<Observers> {
  const extra: RecordObserver[] = [];
  // Client and admin keys too: a record may hold what a client sent (`log.content: true`), its key pasted in a prompt.
  const secrets = (): readonly string[] => runtime.secrets.list();
  // The loaded env, not process.env: OTEL_* variables set in .env count like the config's other variables.
  const otlp = otlpSettings(config.traces.otlpEndpoint, env, config.traces.sampleRatio);
  // The metrics that count dropped spans are built after the exporter.
  let built: Observers | undefined;
  if (otlp !== undefined) {
    // Loaded only when tracing is configured.
    const { OtlpTraceExporter } = await import("../observability/otlp-traces.ts");
    extra.push(
      new OtlpTraceExporter({
        url: otlp.tracesUrl,
        headers: otlp.headers,
        serviceName: otlp.serviceName,
        serviceVersion: GATEWAY_VERSION,
        maxQueueSpans: config.traces.maxQueueSpans,
        exportTimeoutMs: config.traces.exportTimeoutMs,
        sampler: otlp.sampler,
        onDropped: (count, reason) => built?.metrics?.countTraceSpansDropped(reason, count),
        secrets,
        onError: (error) =>
          logger.warn(
            { url: loggableUrl(otlp.tracesUrl), error: error instanceof Error ? error.message : String(error) },
            "OTLP trace export failed; spans are dropped until it works again",
          ),
      }),
    );
  }
  // What is built by now owns timers (and a request log backend, a connection): closed if a later step throws, so
  // that a failed start leaves nothing running.
  let backend: RequestLogBackend | undefined;
  try {
    const file = config.requestLog.file;
    if (config.requestLog.enabled && file !== undefined) {
      extra.push(
        new RequestLogFile({
          path: file,
          isContentKept: config.log.content,
          secrets,
          onError: (error) =>
            logger.warn(
              { path: file, error: error instanceof Error ? error.message : String(error) },
              "request log file: could not append",
            ),
        }),
      );
    }
    backend = await requestLogBackend(config);
    built = new Observers({
      extra,
      settings: {
        isContentKept: config.log.content,
        requestLogMaxEntries: config.requestLog.maxEntries,
        requestLogMaxAgeMs: config.requestLog.maxAgeMs,
        isMetricsEnabled: config.metrics.enabled,
      },
      live: runtimeLiveState(runtime),
      clock: runtime.clock,
      requestLogBackend: backend,
      secrets,
      version: GATEWAY_VERSION,
      onError: (message, error) =>
        logger.warn({ error: error instanceof Error ? error.message : String(error) }, message),
    });
    // From here requests without a `traceparent` start a trace, and the sampler decides what is exported.
    if (otlp !== undefined) runtime.traceSampler = otlp.sampler;
    return built;
  } catch (error) {
    await Promise.allSettled([...extra.map((observer) => observer.close()), backend?.close()]);
    throw error;
  }
}

async function requestLogBackend(config: GatewayConfig): Promise<RequestLogBackend | undefined> {
  if (!config.requestLog.enabled) return undefined;
  const { state } = config;
  if (state.redisUrl !== undefined) {
    // Loaded only with Redis: ioredis costs ~10 MB of memory and some startup time.
    const { RedisRequestLogBackend } = await import("../state/redis-request-log.ts");
    const backend = new RedisRequestLogBackend(state.redisUrl, state.redisKeyPrefix, state.redisCluster);
    // Not awaited: startup never waits for the request log; rows are dropped until Redis answers.
    void backend.connect();
    return backend;
  }
  if (state.path === "" || state.path === ":memory:") return new MemoryRequestLogBackend();
  return new FileRequestLogBackend(state.path);
}
