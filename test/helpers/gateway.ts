// Starts the real gateway (same code path as `serve`) on a free loopback port, from a YAML config text, for
// e2e tests. Every test starts its own and closes it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dispatcher } from "undici";
import { watchConfigFiles } from "../../src/cli/hot-reload.ts";
import { type RunningGateway, startGateway } from "../../src/cli/start-gateway.ts";
import type { Clock } from "../../src/clock.ts";
import type { Env } from "../../src/config/env.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { createPresetResolver, loadPresets } from "../../src/providers/presets.ts";

export interface TestGateway extends RunningGateway {
  /** `http://127.0.0.1:PORT/v1`, for SDK clients. */
  readonly baseUrl: string;
  readonly warnings: readonly string[];
  readonly configPath: string;
}

export interface TestGatewayOptions {
  readonly env?: Env;
  readonly clock?: Clock;
  /** The gateway's upstream connections (e.g. an Agent whose connections are slow to open). */
  readonly dispatcher?: Dispatcher;
  /** Log level; default silent. */
  readonly logLevel?: string;
  /** Where log lines go (default stdout): a test reads them, e.g. to check that no key reaches a log. */
  readonly logStream?: NodeJS.WritableStream;
  /** Files written next to the config before it loads, by name (e.g. `model-adjustments.yaml`). */
  readonly files?: Readonly<Record<string, string>>;
  /** Reload when the config file changes (as `serve` does). */
  readonly watchFiles?: boolean;
  readonly watchDebounceMs?: number;
  /** Where the presets are read from (default the built-in ones): a test's own preset files. */
  readonly presetsDir?: string;
}

/** Writes `yamlText` to a temp file (with a private discovery cache dir unless one is set) and starts the gateway. */
export async function startTestGateway(yamlText: string, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-test-"));
  const configPath = join(dir, "meta-providers.yaml");
  let text = yamlText;
  if (!/^server:/m.test(text)) text = `server:\n  port: 0\n  host: 127.0.0.1\n${text}`;
  if (!/^discovery:/m.test(text)) text = `${text}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(dir, "cache"))}\n`;
  if (!/^state:/m.test(text)) text = `${text}\nstate:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`;
  writeFileSync(configPath, text);
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content);
  const env: Env = options.env ?? {};
  const resolvePreset = createPresetResolver(loadPresets(env, options.presetsDir));
  const { config, warnings } = loadConfigFile(configPath, { env: { ...env }, resolvePreset });
  const logger = {
    level: options.logLevel ?? "silent",
    ...(options.logStream === undefined ? {} : { stream: options.logStream }),
  };
  const gateway = await startGateway(config, {
    logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
  });
  // POST /admin/reload (and `watchFiles`) load this file again, as `serve` does with its config.
  gateway.runtime.setConfigLoader(() => loadConfigFile(configPath, { env: { ...env }, resolvePreset }).config);
  const stopWatching =
    options.watchFiles === true
      ? watchConfigFiles(gateway.runtime, () => [configPath], { warn: () => {} }, options.watchDebounceMs)
      : () => {};
  return {
    ...gateway,
    close: async () => {
      stopWatching();
      await gateway.close();
    },
    baseUrl: `${gateway.url}/v1`,
    warnings,
    configPath,
  };
}
