// Where budget and cooldown state lives: in-process (optionally persisted to a local SQLite file), or shared
// with other gateway processes through Redis.
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import { BudgetBook } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import { EmbeddedStateStore } from "./embedded-state-store.ts";
import type { StateBackend, StateLogger } from "./state-types.ts";

export type { StateBackend, StateLogger, StateStatus } from "./state-types.ts";

export async function createStateBackend(
  settings: StateSettings,
  availability: AvailabilityBook,
  clock: Clock,
  logger: StateLogger | undefined,
  /** Kept in the embedded store's file, or in Redis (docs/limits.md "Token estimation"). */
  calibration?: PromptCalibration,
): Promise<StateBackend> {
  if (settings.redisUrl !== undefined) {
    const { createRedisStateBackend } = await import("./redis-state.ts");
    return createRedisStateBackend(settings, availability, clock, logger, calibration ? { calibration } : {});
  }
  const book = new BudgetBook();
  if (settings.path === "" || settings.path === ":memory:") {
    return {
      ledger: book,
      status: () => ({ kind: "memory", isDegraded: false, detail: "in memory only" }),
      close: async () => {},
    };
  }
  const store = new EmbeddedStateStore(settings.path, book, availability, calibration, logger);
  const loaded = store.load();
  if (loaded.scopes + loaded.cooldowns + loaded.calibrations > 0) {
    logger?.info(
      { path: settings.path, ...loaded },
      "restored budgets, cooldowns and prompt calibrations from the embedded store",
    );
  }
  store.start(settings.flushIntervalMs);
  return {
    ledger: book,
    status: () => store.status(),
    close: async () => store.close(),
  };
}
