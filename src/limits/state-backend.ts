// Where budget and cooldown state lives: in-process (optionally persisted to a local SQLite file), or shared
// with other gateway processes through Redis.
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "./availability.ts";
import { BudgetBook, type BudgetLedger } from "./budgets.ts";
import { EmbeddedStateStore } from "./embedded-state-store.ts";

export interface StateStatus {
  readonly kind: "memory" | "embedded" | "redis";
  /** True while a shared store is unreachable and the gateway serves from local state. */
  readonly isDegraded: boolean;
  readonly detail: string;
}

export interface StateBackend {
  readonly ledger: BudgetLedger;
  status(): StateStatus;
  close(): Promise<void>;
}

export interface StateLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

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
