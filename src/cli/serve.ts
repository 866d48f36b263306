// `llm-gateway serve`: load .env and the config, start the server, stop cleanly on signals. Without a config file
// (and without --config / LLM_GATEWAY_CONFIG) every built-in preset whose key variable is set is enabled.
import { ConfigError } from "../config/config-error.ts";
import { loadEnv } from "../config/env.ts";
import { DEFAULT_CONFIG_PATH } from "../config/load.ts";
import { EXIT_OK, EXIT_USAGE } from "./exit-codes.ts";
import { type GatewayConfigSource, loadGatewayConfig } from "./gateway-config.ts";
import { handleShutdownSignals, startGateway } from "./start-gateway.ts";

export async function serve(options: { configPath: string | undefined }): Promise<number> {
  const env = loadEnv(process.cwd());
  let source: GatewayConfigSource;
  try {
    source = loadGatewayConfig({ explicitPath: options.configPath, env, cwd: process.cwd() });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `Config error (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`,
      );
      return EXIT_USAGE;
    }
    throw error;
  }
  const { loaded, availability, configPath } = source;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(loaded.config, { warnings: loaded.warnings });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `Config error (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`,
      );
      return EXIT_USAGE;
    }
    throw error;
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
  gateway.app.log.info(
    {
      config: availability === undefined ? configPath : null,
      providers: loaded.config.providers.map((provider) => provider.name),
      models: gateway.runtime.snapshot.catalog.deployments.length,
    },
    `LLM Gateway listening on ${gateway.url}/v1`,
  );
  handleShutdownSignals(gateway, loaded.config.server.shutdownTimeoutMs, (code) => process.exit(code));
  return EXIT_OK;
}
