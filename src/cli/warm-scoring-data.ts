// bin/warm-caches.js: parse and index the shipped scoring data once and keep it in data/cache/, and write the scoring
// memo's entries (scoring-memo.ts) for the configs a first start would build, from the same code a start runs (the
// sources or the bundle, where this is an entry of its own).
import { systemClock } from "../clock.ts";
import { ConfigError } from "../config/config-error.ts";
import { loadEnv } from "../config/env.ts";
import type { GatewayConfig } from "../config/types.ts";
import { buildSnapshot } from "../pipeline/snapshot.ts";
import { createUpstreamAgent } from "../pipeline/undici-agent.ts";
import { loadShippedScoringData } from "../scoring/scoring-data-cache.ts";
import { LEADERBOARD_DIR, MODEL_METADATA_PATH, SCORING_DATA_CACHE_PATH } from "../scoring/scoring-sources.ts";
import { demoConfig } from "./demo-config.ts";
import { chooseConfig, loadChosenConfig } from "./gateway-config.ts";

/** Loads (or rebuilds and writes) data/cache/scoring-data.json; says what it did. */
export function warmScoringData(): string {
  const loaded = loadShippedScoringData({
    leaderboardDir: LEADERBOARD_DIR,
    metadataPath: MODEL_METADATA_PATH,
    cachePath: SCORING_DATA_CACHE_PATH,
  });
  return `scoring data ${loaded.source}, ${loaded.leaderboards.boards.size} leaderboards`;
}

export interface MemoWarmOptions {
  /** Where `serve` would run: its `.env` (with this process's environment) and the default config path. */
  readonly cwd: string;
  /** `--config PATH`, as `serve` takes it. */
  readonly configPath: string | undefined;
}

/**
 * Builds the first snapshot of `npm run demo`'s config and of the config `serve` would load (`--config`,
 * `LLM_GATEWAY_CONFIG`, else config/meta-providers.yaml, else the presets whose keys are set), which writes their
 * entries into the scoring memo (buildSnapshot persists it): their first start then loads no scoring data (bench/README.md
 * sections 43 and 44). The catalog is the one a start builds: discovered providers are asked for their models (from
 * the discovery cache when it is fresh, else over the network, as a start does, which fills that cache for the first
 * start). A config that does not load here (no provider key set at build time, the usual case in a container: its
 * catalog is only known at the first start) is skipped and said so; nothing here fails the warm-up. Says what it did.
 */
export async function warmScoringMemo(options: MemoWarmOptions): Promise<string> {
  const agent = createUpstreamAgent();
  const said: string[] = [];
  const env = loadEnv(options.cwd);
  try {
    // The demo's fake providers listen on ports of the moment; a URL is no input of a memo entry.
    const demo = demoConfig("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", {});
    said.push(`demo ${await warmOne(demo, agent)}`);
    const choice = chooseConfig({ explicitPath: options.configPath, env, cwd: options.cwd });
    const name = choice.kind === "file" ? choice.path : "the presets whose keys are set";
    let config: GatewayConfig;
    try {
      config = loadChosenConfig(choice, env).loaded.config;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      said.push(`${name} not loaded (${error.issues[0]?.message.split("\n")[0] ?? "config error"})`);
      return said.join(", ");
    }
    said.push(
      config.providers.length === 0
        ? `${name} has no provider with a key set`
        : `${name} ${await warmOneOrSay(config, agent)}`,
    );
  } finally {
    await agent.close();
  }
  return said.join(", ");
}

/**
 * A config that loads can still fail its first snapshot with a ConfigError (an adjustments file named but not there
 * yet: one mounted at run time, absent at build time): skipped and said so, as one that does not load, rather than
 * failing the Docker build or `npm run bench` over an optional warm-up.
 */
async function warmOneOrSay(config: GatewayConfig, agent: ReturnType<typeof createUpstreamAgent>): Promise<string> {
  try {
    return await warmOne(config, agent);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return `not warmed (${error.issues[0]?.message.split("\n")[0] ?? "config error"})`;
  }
}

async function warmOne(config: GatewayConfig, agent: ReturnType<typeof createUpstreamAgent>): Promise<string> {
  // A discovery that failed, or a rule left out, says so as at a start (a catalog unlike the start's is warmed in vain).
  const logger = {
    info: () => {},
    warn: (_object: object, message: string) => process.stderr.write(`warm-caches: ${message}\n`),
  };
  const snapshot = await buildSnapshot(config, agent, systemClock, logger, false);
  const count = snapshot.catalog.deployments.length;
  return `${count} model${count === 1 ? "" : "s"}`;
}
