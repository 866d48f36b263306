// `llm-gateway serve`: load .env and the config, start the server, stop cleanly on signals. Without a config file
// (and without --config / LLM_GATEWAY_CONFIG) every built-in preset whose key variable is set is enabled.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { DEFAULT_CONFIG_PATH } from "../config/defaults.ts";
import { loadEnv } from "../config/env.ts";
import { buildConfig, type LoadedConfig, loadConfigFile } from "../config/load.ts";
import {
  createPresetResolver,
  loadPresets,
  type PresetAvailability,
  presetAvailability,
  presetOnlyConfig,
} from "../providers/presets.ts";
import { handleShutdownSignals, startGateway } from "./start-gateway.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG_ERROR = 2;

export async function serve(options: { configPath: string | undefined }): Promise<number> {
  const env = loadEnv(process.cwd());
  const explicitPath = options.configPath ?? (env.LLM_GATEWAY_CONFIG === "" ? undefined : env.LLM_GATEWAY_CONFIG);
  const configPath = resolve(explicitPath ?? DEFAULT_CONFIG_PATH);
  // An explicit path that does not exist stays an error (exit 2); only the default one may be absent.
  const isPresetOnly = explicitPath === undefined && !existsSync(configPath);
  let loaded: LoadedConfig;
  let availability: PresetAvailability | undefined;
  try {
    const presets = loadPresets(env);
    const resolvePreset = createPresetResolver(presets);
    if (isPresetOnly) {
      availability = presetAvailability(presets, env);
      if (availability.enabled.length === 0) {
        process.stderr.write(noKeysMessage(availability));
        return EXIT_CONFIG_ERROR;
      }
      loaded = buildConfig(presetOnlyConfig(availability), undefined, { env, resolvePreset });
    } else {
      loaded = loadConfigFile(configPath, { env, resolvePreset });
    }
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

function noKeysMessage(availability: PresetAvailability): string {
  const lines = availability.missing.map((entry) => `  ${entry.name}: ${entry.variables}`);
  return (
    `No config file (${DEFAULT_CONFIG_PATH}) and no provider key in the environment or .env.\n` +
    `Set at least one of these (docs/quickstart.md), or pass --config PATH:\n${lines.join("\n")}\n`
  );
}
