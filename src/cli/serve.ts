// `llm-gateway serve`: load .env and the config, start the server, stop cleanly on signals.
import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { DEFAULT_CONFIG_PATH } from "../config/defaults.ts";
import { loadEnv } from "../config/env.ts";
import { loadConfigFile } from "../config/load.ts";
import { handleShutdownSignals, startGateway } from "./start-gateway.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG_ERROR = 2;

export async function serve(options: { configPath: string | undefined }): Promise<number> {
  const env = loadEnv(process.cwd());
  const configPath = resolve(options.configPath ?? env.LLM_GATEWAY_CONFIG ?? DEFAULT_CONFIG_PATH);
  let loaded: ReturnType<typeof loadConfigFile>;
  try {
    loaded = loadConfigFile(configPath, { env });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `Config error (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`,
      );
      return EXIT_CONFIG_ERROR;
    }
    throw error;
  }
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(loaded.config, { warnings: loaded.warnings });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `Config error (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`,
      );
      return EXIT_CONFIG_ERROR;
    }
    throw error;
  }
  gateway.app.log.info(
    {
      config: configPath,
      providers: loaded.config.providers.map((provider) => provider.name),
      models: gateway.runtime.snapshot.catalog.deployments.length,
    },
    `LLM Gateway listening on ${gateway.url}/v1`,
  );
  handleShutdownSignals(gateway, loaded.config.server.shutdownTimeoutMs, (code) => process.exit(code));
  return EXIT_OK;
}
