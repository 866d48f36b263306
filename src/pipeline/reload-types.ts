// What a config reload takes and answers (GatewayRuntime.reloadFromSource), apart from the runtime's own file.
import type { GatewayConfig } from "../config/types.ts";

/** Loads and validates the config again (files, .env); throws ConfigError listing every problem. */
export type ConfigLoader = () => GatewayConfig | Promise<GatewayConfig>;

export type ReloadResult =
  | { readonly isApplied: true; readonly hash: string; readonly loadedAtMs: number }
  | { readonly isApplied: false; readonly problems: readonly string[] };

/** The latest reload that was refused since the serving config was applied: when, and every problem. */
export interface RefusedReload {
  readonly atMs: number;
  readonly problems: readonly string[];
}
