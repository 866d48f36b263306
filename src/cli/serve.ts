// `llm-gateway serve`: load .env and the config, start the server, stop cleanly on signals. Without a config file
// (and without --config / LLM_GATEWAY_CONFIG) every built-in preset whose key variable is set is enabled.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { loadEnv } from "../config/env.ts";
import { DEFAULT_CONFIG_PATH } from "../config/load.ts";
import { recognisedPresetText } from "../config/resolve-providers.ts";
import type { GatewayConfig } from "../config/types.ts";
import { redactSecrets } from "../errors/redact.ts";
import { reportProcessFaultsWith } from "../observability/process-faults.ts";
import { configSecrets } from "../pipeline/logged-secrets.ts";
import { RUNS_FROM_BUNDLE, RUNS_FROM_SNAPSHOT } from "../source-paths.ts";
import { EXIT_OK, EXIT_USAGE } from "./exit-codes.ts";
import { chooseConfig, type GatewayConfigSource, loadChosenConfig } from "./gateway-config.ts";
import { holdSighupDuringStart, reloadOnSighup, watchConfigFiles } from "./hot-reload.ts";
import { isEmptyFile, noProviderMessage } from "./no-provider.ts";
import { releaseOptimizingCompilersOnFirstRequest } from "./optimizing-compilers.ts";
import { configErrorText, startFailure } from "./start-failure.ts";
import { handleShutdownSignals, logUnhandledRejections, reportFaultsThrough, startGateway } from "./start-gateway.ts";
import { terminalLogger } from "./terminal-logger.ts";
import { capYoungGeneration } from "./young-generation.ts";

export async function serve(options: { configPath: string | undefined }): Promise<number> {
  const sighupDuringStart = holdSighupDuringStart();
  const cwd = process.cwd();
  const env = loadEnv(cwd);
  // Chosen once: every reload reads this file (or stays in the no-config mode) until a restart.
  const choice = chooseConfig({ explicitPath: options.configPath, env, cwd });
  let source: GatewayConfigSource;
  try {
    source = loadChosenConfig(choice, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(configErrorText(error));
      return EXIT_USAGE;
    }
    throw error;
  }
  const { loaded, availability, configPath } = source;
  if (loaded.config.providers.length === 0) {
    process.stderr.write(
      noProviderMessage(loaded.config.skippedProviders, { configPath, envFile: join(cwd, ".env"), isServe: true }),
    );
    return EXIT_USAGE;
  }
  // Until the runtime exists (then reportFaultsThrough): a fault while starting is printed without the config's keys.
  const startSecrets = configSecrets(loaded.config);
  reportProcessFaultsWith({ redact: (text) => redactSecrets(text, startSecrets) });
  const logger = terminalLogger(loaded.config);
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(loaded.config, { warnings: loaded.warnings, logger, env });
  } catch (error) {
    const failure = startFailure(error, loaded.config.server, "npm start");
    if (failure === undefined) throw error;
    process.stderr.write(failure.message);
    return failure.exitCode;
  }
  if (availability !== undefined) {
    gateway.app.log.info(
      {
        presets: availability.enabled,
        missingKeys: Object.fromEntries(availability.missing.map((entry) => [entry.name, entry.variables])),
      },
      `no config file (${DEFAULT_CONFIG_PATH}): enabled presets ${availability.enabled.join(", ")}; ` +
        `no key for ${availability.missing.map((entry) => `${entry.name} (${entry.variables})`).join(", ")}`,
    );
  }
  for (const provider of loaded.config.providers) {
    if (provider.presetOrigin?.by !== "base_url") continue;
    gateway.app.log.info(
      { provider: provider.name, preset: provider.presetOrigin.preset },
      `${recognisedPresetText(provider.name, provider.presetOrigin.preset)} (its limits, rate-limit headers and free models apply; \`preset: none\` turns it off)`,
    );
  }
  gateway.app.log.info(
    {
      config: availability === undefined ? configPath : null,
      providers: loaded.config.providers.map((provider) => provider.name),
      models: gateway.runtime.snapshot.catalog.deployments.length,
      code: RUNS_FROM_SNAPSHOT ? "snapshot" : RUNS_FROM_BUNDLE ? "bundle" : "sources",
    },
    `LLM Gateway listening on ${gateway.url}/v1`,
  );
  // Hot reload: the same loading as at startup (.env read again), validated before anything is swapped. The file
  // (or the no-config mode) is the one chosen at start: a config file moved away, or an LLM_GATEWAY_CONFIG line
  // gone from .env, must not drop the serving config's client keys for the presets' (none).
  gateway.runtime.setConfigLoader(() => {
    const nextEnv = loadEnv(cwd);
    const now = chooseConfig({ explicitPath: options.configPath, env: nextEnv, cwd });
    if (now.kind === "file" && (choice.kind === "presets" || now.path !== choice.path)) {
      const kept = choice.kind === "file" ? choice.path : "no config file: the presets whose keys are set";
      gateway.app.log.warn(
        { config: now.path, serving: choice.kind === "file" ? choice.path : null },
        `config reload: the config file would now be ${now.path}, which applies at the next restart (this gateway keeps reading ${kept})`,
      );
    }
    const reloaded = loadChosenConfig(choice, nextEnv).loaded;
    const next = reloaded.config;
    refuseUnsafeReload(next, configPath);
    // As at start: a provider skipped (its key variable gone from .env), a client key entry dropped. Without them a
    // reload that loses a provider logs only the shorter provider list.
    for (const warning of reloaded.warnings) gateway.app.log.warn(`config reload: ${warning}`);
    const fixed = changedUntilRestart(loaded.config, next);
    if (fixed.length > 0) {
      gateway.app.log.warn(
        { settings: fixed },
        `config reload: ${fixed.join(", ")} changed, which applies at the next restart (the rest applies now)`,
      );
    }
    return next;
  });
  reloadOnSighup(gateway.runtime);
  if (sighupDuringStart.stop()) void gateway.runtime.reloadFromSource("SIGHUP (during start-up)");
  watchConfigFiles(
    gateway.runtime,
    () => [configPath ?? defaultConfigWatch(cwd), join(cwd, ".env"), gateway.runtime.snapshot.scoring.adjustmentsPath],
    gateway.app.log,
  );
  handleShutdownSignals(gateway, loaded.config.server.shutdownTimeoutMs, (code) => process.exit(code));
  reportFaultsThrough(gateway);
  logUnhandledRejections(gateway);
  capYoungGeneration();
  releaseOptimizingCompilersOnFirstRequest(gateway.app.server);
  return EXIT_OK;
}

/**
 * In the no-config mode, what is watched for the default config file: a file created there applies at the next
 * restart, and the reload its creation triggers says so (the config loader above), instead of nothing happening
 * to a user who was told a changed config file reloads. Its folder while that does not exist yet (watching a
 * missing folder fails): making it triggers a reload, after which the file itself is watched.
 */
function defaultConfigWatch(cwd: string): string {
  const path = resolve(cwd, DEFAULT_CONFIG_PATH);
  return existsSync(dirname(path)) ? path : dirname(path);
}

/**
 * What a start refuses, a reload refuses too (the previous config keeps serving): no provider with a key (a moved
 * or emptied `.env`: every request would be a 404 until someone noticed). (Client keys that all resolve empty are
 * a config error at any load: src/config.)
 */
export function refuseUnsafeReload(next: GatewayConfig, configPath: string | undefined): void {
  if (next.providers.length === 0) {
    // An editor that empties the file before writing it, read in between: the save's own event reloads again.
    if (isEmptyFile(configPath)) throw new Error(`${configPath} is empty (a save under way?)`);
    throw new Error(
      `no provider would be left: ${next.skippedProviders.map((entry) => `${entry.name} (${entry.reason})`).join(", ") || "none is configured"}`,
    );
  }
}

/**
 * Settings read once, when the server, its logger, the state store and the record subscribers are built
 * (docs/configuration.md "Reloading the config"): a reload cannot apply them, and says so rather than keep quiet.
 */
const RESTART_ONLY: readonly [string, (config: GatewayConfig) => unknown][] = [
  ["server.port", (config) => config.server.port],
  ["server.host", (config) => config.server.host],
  ["server.body_limit_bytes", (config) => config.server.bodyLimitBytes],
  ["server.log_level", (config) => config.server.logLevel],
  ["server.cors_origins", (config) => config.server.corsOrigins],
  ["server.allowed_hosts", (config) => config.server.allowedHosts],
  ["server.request_timeout_ms", (config) => config.server.requestTimeoutMs],
  ["server.headers_timeout_ms", (config) => config.server.headersTimeoutMs],
  ["server.max_connections", (config) => config.server.maxConnections],
  ["server.shutdown_timeout_ms", (config) => config.server.shutdownTimeoutMs],
  ["log.format", (config) => config.log.format],
  // Records carry content per the serving config, but the request log keeps it or not as it was started.
  ["log.content", (config) => config.log.content],
  ["state", (config) => config.state],
  ["metrics", (config) => config.metrics],
  ["request_log", (config) => config.requestLog],
  // The OTLP exporter is built once with the record subscribers (cli/observers.ts).
  ["traces", (config) => config.traces],
  // The kept answers' store is sized once, when it is opened (cli/kept-responses-store.ts).
  ["responses.store", (config) => config.responses.store],
  // The refresh loop is started once, with the URL and interval of the config started with (start-gateway.ts).
  ["scoring.leaderboard_refresh_url", (config) => config.scoring.leaderboardRefreshUrl],
  ["scoring.leaderboard_refresh_interval_ms", (config) => config.scoring.leaderboardRefreshIntervalMs],
];

/** The restart-only settings (RESTART_ONLY) that differ between the config started with and a reloaded one. */
export function changedUntilRestart(started: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_ONLY.filter(([, read]) => JSON.stringify(read(started)) !== JSON.stringify(read(next))).map(
    ([name]) => name,
  );
}
