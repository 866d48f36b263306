// Where budget and cooldown state lives: in-process (optionally persisted to a local SQLite file), or shared
// with other gateway processes through Redis.
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import { BudgetBook } from "../limits/budgets.ts";
import { EmbeddedStateStore } from "./embedded-state-store.ts";
import type { StateBackend, StateLogger } from "./state-types.ts";

export type { StateBackend, StateLogger, StateStatus } from "./state-types.ts";

export async function createStateBackend(
  settings: StateSettings,
  availability: AvailabilityBook,
  clock: Clock,
  logger: StateLogger | undefined,
): Promise<StateBackend> {
  if (settings.redisUrl !== undefined) {
    const { createRedisStateBackend } = await import("./redis-state.ts");
    return createRedisStateBackend(settings, availability, clock, logger);
  }
  const book = new BudgetBook();
  if (settings.path === "" || settings.path === ":memory:") {
    return {
      ledger: book,
      status: () => ({ kind: "memory", isDegraded: false, detail: "in memory only" }),
      close: async () => {},
    };
  }
  const store = new EmbeddedStateStore(settings.path, book, availability);
  const loaded = store.load();
  if (loaded.scopes + loaded.cooldowns > 0) {
    logger?.info({ path: settings.path, ...loaded }, "restored budgets and cooldowns from the embedded store");
  }
  store.start(settings.flushIntervalMs);
  return {
    ledger: book,
    status: () => ({ kind: "embedded", isDegraded: false, detail: settings.path }),
    close: async () => store.close(),
  };
}
