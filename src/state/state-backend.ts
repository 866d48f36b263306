// Where budget and cooldown state lives: in-process (optionally persisted to a local SQLite file), or shared
// with other gateway processes through Redis.
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import { BudgetBook } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import { isDamagedFileError } from "../sqlite-file.ts";
import { EmbeddedStateStore, readStateFile } from "./embedded-state-store.ts";
import type { StateBackend, StateLogger } from "./state-types.ts";
import { MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS } from "./tool-call-extras.ts";

export type { StateBackend, StateLogger, StateStatus } from "./state-types.ts";

/**
 * The books of learned facts a backend keeps beside budgets and cooldowns: in the embedded store's file, or in Redis,
 * shared with the other replicas (docs/limits.md "Token estimation", docs/routing.md "Learned refusals").
 */
export interface LearnedBooks {
  readonly calibration?: PromptCalibration;
  readonly refusedFeatures?: RefusedFeatures;
}

export async function createStateBackend(
  settings: StateSettings,
  availability: AvailabilityBook,
  clock: Clock,
  logger: StateLogger | undefined,
  learned: LearnedBooks = {},
  /**
   * Only read the embedded file, for a command that explains routing (`llm-gateway route`) while a gateway may be
   * serving from it: see readStateFile. A file that cannot be read is left as it is and explained without.
   */
  options: { readonly isReadOnly?: boolean } = {},
): Promise<StateBackend> {
  const { calibration, refusedFeatures } = learned;
  if (settings.redisUrl !== undefined) {
    const { createRedisStateBackend } = await import("./redis-state.ts");
    return createRedisStateBackend(settings, availability, clock, logger, {
      ...(calibration === undefined ? {} : { calibration }),
      ...(refusedFeatures === undefined ? {} : { refusedFeatures }),
    });
  }
  const book = new BudgetBook();
  if (settings.path === "" || settings.path === ":memory:") {
    return {
      ledger: book,
      status: () => ({ kind: "memory", isDegraded: false, detail: "in memory only" }),
      close: async () => {},
      writeBeforeExit: async () => {},
      pruneUnconfigured: (configured, nowMs) => book.pruneUnconfigured(configured, nowMs).length,
    };
  }
  if (options.isReadOnly === true) {
    let detail = `${settings.path} (read only)`;
    try {
      readStateFile(settings.path, book, availability, calibration, refusedFeatures, clock.now());
    } catch (error) {
      detail = `${settings.path} could not be read (${error instanceof Error ? error.message : String(error)})`;
      logger?.warn({ path: settings.path }, `state file not read: ${detail}`);
    }
    return {
      ledger: book,
      status: () => ({ kind: "embedded", isDegraded: false, detail }),
      close: async () => {},
      writeBeforeExit: async () => {},
      pruneUnconfigured: () => 0, // the file is not this command's to change
    };
  }
  // The doors' kept thought signatures (StateBackend.toolCallExtras): with Redis they have a store of their own.
  const toolCallExtras = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, clock);
  const { store, loaded } = openEmbeddedStore(
    settings.path,
    () => {
      const opened = new EmbeddedStateStore(
        settings.path,
        book,
        availability,
        calibration,
        logger,
        refusedFeatures,
        toolCallExtras,
      );
      try {
        return { store: opened, loaded: opened.load(clock.now()) };
      } catch (error) {
        opened.abandon();
        throw error;
      }
    },
    clock,
    logger,
  );
  if (Object.values(loaded).some((count) => count > 0)) {
    logger?.info(
      { path: settings.path, ...loaded },
      "restored budgets, cooldowns, prompt calibrations, refused features and kept thought signatures from the embedded store",
    );
  }
  store.start(settings.flushIntervalMs);
  return {
    ledger: book,
    toolCallExtras,
    status: () => store.status(),
    close: async () => store.close(),
    writeBeforeExit: async (maxWaitMs) => store.writeBeforeExit(maxWaitMs),
    pruneUnconfigured: (configured, nowMs) => {
      const pruned = book.pruneUnconfigured(configured, nowMs);
      if (pruned.length > 0) {
        logger?.info(
          { path: settings.path, scopes: pruned },
          `state file: ${pruned.length} budget scopes of providers, models or clients no longer configured are dropped (nothing in them counts any more)`,
        );
      }
      return pruned.length;
    },
  };
}

/** The first 16 bytes of every SQLite database file. */
const SQLITE_HEADER = "SQLite format 3\0";

/**
 * Opens the state file; one that SQLite finds damaged (a truncated copy, a crash on a disk that lied about its
 * writes) is set aside as `<path>.damaged-<time>` (its WAL with it, for whoever wants to look) and a new file is
 * started: budgets and cooldowns are worth less than a gateway that starts, and a supervisor would otherwise
 * restart it into the same refusal forever. A file that is not an SQLite database at all is left alone and the
 * start refused (a state.path naming the wrong file, e.g. the config): the caller reports it as a state.path problem.
 */
function openEmbeddedStore<T>(path: string, open: () => T, clock: Clock, logger: StateLogger | undefined): T {
  try {
    return open();
  } catch (error) {
    if (!isDamagedFileError(error) || !hasSqliteHeader(path)) throw error;
    const aside = `${path}.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`;
    renameSync(path, aside);
    if (existsSync(`${path}-wal`)) renameSync(`${path}-wal`, `${aside}-wal`);
    rmSync(`${path}-shm`, { force: true }); // an index of the WAL, rebuilt from it
    logger?.warn(
      { path, damaged: aside, error: (error as Error).message },
      `state file damaged (${(error as Error).message}): moved to ${aside}, starting with a new one (budgets, cooldowns and kept Responses API answers start afresh)`,
    );
    return open();
  }
}

function hasSqliteHeader(path: string): boolean {
  const header = Buffer.alloc(SQLITE_HEADER.length);
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    return readSync(fd, header, 0, header.length, 0) === header.length && header.toString("latin1") === SQLITE_HEADER;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
