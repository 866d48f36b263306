// Builds the observers of finished requests (metrics, request log, dashboard activity) for one gateway: picks
// the request log's backend from the state settings (Redis when `state.redis_url` is set, else the embedded
// SQLite file, else memory).
import type { GatewayConfig } from "../config/types.ts";
import { Observers } from "../observability/observers.ts";
import { MemoryRequestLogBackend, type RequestLogBackend } from "../observability/request-log.ts";
import { SqliteRequestLogBackend } from "../observability/sqlite-request-log.ts";
import type { GatewayRuntime, Logger } from "../pipeline/gateway-runtime.ts";
import { GATEWAY_VERSION } from "../server/info-routes.ts";
import { RedisRequestLogBackend } from "../state/redis-request-log.ts";
import { runtimeLiveState } from "./live-state-source.ts";

export function createObservers(config: GatewayConfig, runtime: GatewayRuntime, logger: Logger): Observers {
  return new Observers({
    settings: config.observability,
    live: runtimeLiveState(runtime),
    clock: runtime.clock,
    requestLogBackend: requestLogBackend(config),
    secrets: () => runtime.snapshot.config.providers.flatMap((provider) => provider.apiKeys),
    version: GATEWAY_VERSION,
    onError: (message, error) =>
      logger.warn({ error: error instanceof Error ? error.message : String(error) }, message),
  });
}

function requestLogBackend(config: GatewayConfig): RequestLogBackend | undefined {
  if (!config.observability.requestLogEnabled) return undefined;
  const { state } = config;
  if (state.redisUrl !== undefined) {
    const backend = new RedisRequestLogBackend(state.redisUrl, state.redisKeyPrefix);
    // Not awaited: startup never waits for the request log; rows are dropped until Redis answers.
    void backend.connect();
    return backend;
  }
  if (state.path === "" || state.path === ":memory:") return new MemoryRequestLogBackend();
  return new SqliteRequestLogBackend(state.path);
}
