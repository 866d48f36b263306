// What a start opens before its server: the runtime (with the state backend), the kept answers' store and the
// batches' store, each reported as a `state.path` problem when the OS refuses that file.
import { resolve, sep } from "node:path";
import { systemClock } from "../clock.ts";
import { ConfigError } from "../config/config-error.ts";
import type { GatewayConfig } from "../config/types.ts";
import { GatewayRuntime, type Logger, type RuntimeOptions } from "../pipeline/gateway-runtime.ts";
import type { MemoryToolCallExtras } from "../state/tool-call-extras.ts";
import { type BatchStore, createBatchStore } from "./batch-store.ts";
import { createKeptResponsesStore, type KeptResponsesStore } from "./kept-responses-store.ts";

export interface OpenedBooks {
  readonly runtime: GatewayRuntime;
  readonly keptResponses: KeptResponsesStore;
  readonly batchStore: BatchStore;
}

/**
 * With Redis the two stores need nothing of the runtime and open alongside it: each connection waits up to
 * START_READY_WAIT_MS (5 s, state/redis-client.ts) for a Redis that is not ready, and one after the other (the state
 * backend, then the kept answers', then the batches') a start with its Redis Cluster down took ~15 s before it
 * listened; together, ~5 s. Without Redis they follow the runtime: the kept answers' table is the second thing
 * written to state.path, and they keep their signatures in the state file's store (runtime.state.toolCallExtras).
 * One that fails is thrown at once (`openTogether`); those that open are closed.
 */
export async function openBooks(config: GatewayConfig, options: RuntimeOptions): Promise<OpenedBooks> {
  const clock = options.clock ?? systemClock;
  const logger: Logger = options.logger ?? { info: () => {}, warn: () => {} };
  let runtime: GatewayRuntime | undefined;
  // Before the runtime exists (a store opened alongside it) its first snapshot's config is this one.
  const batchSettings = () => (runtime?.snapshot.config ?? config).batches;
  const openRuntime = () => openingStatePath(config, () => GatewayRuntime.create(config, options));
  const openKept = (persisted?: MemoryToolCallExtras) =>
    openingStatePath(config, () => createKeptResponsesStore(config, clock, logger, persisted));
  const openBatches = () => openingStatePath(config, () => createBatchStore(config, clock, batchSettings, logger));
  if (config.state.redisUrl !== undefined) {
    const [opened, keptResponses, batchStore] = await openTogether([openRuntime(), openKept(), openBatches()]);
    runtime = opened;
    return { runtime, keptResponses, batchStore };
  }
  runtime = await openRuntime();
  let keptResponses: KeptResponsesStore;
  try {
    keptResponses = await openKept(runtime.state.toolCallExtras);
  } catch (error) {
    await runtime.close();
    throw error;
  }
  try {
    return { runtime, keptResponses, batchStore: await openBatches() };
  } catch (error) {
    await keptResponses.close();
    await runtime.close();
    throw error;
  }
}

interface Closable {
  close(): Promise<void>;
}

/**
 * Resolves once every store has opened, or rejects as soon as one fails, with its error: a store that failed fast
 * (a start whose runtime could not be built) waited for the others, each of which may wait up to START_READY_WAIT_MS
 * for a Redis that is not ready, so the start reported its error ~5 s late. The others are closed once they have
 * opened (in the background: the caller exits meanwhile; their connections end with their close).
 */
export async function openTogether<A extends Closable, B extends Closable, C extends Closable>(
  opening: readonly [Promise<A>, Promise<B>, Promise<C>],
): Promise<[A, B, C]> {
  try {
    return await Promise.all(opening);
  } catch (error) {
    for (const each of opening) each.then((store) => store.close()).catch(() => {});
    throw error;
  }
}

/**
 * The state store is the first thing that opens `state.path` (its folder is created, then the SQLite file): when
 * the OS refuses it (a file where a folder should be, no permission, a read-only disk), that is a problem of the
 * setting, reported as one (exit 2, naming state.path and the OS error) rather than as a stack.
 */
async function openingStatePath<T>(config: GatewayConfig, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    const { state } = config;
    const isFile = state.redisUrl === undefined && state.path !== "" && state.path !== ":memory:";
    if (!isFile || !(error instanceof Error) || !isStatePathError(error, state.path)) throw error;
    throw new ConfigError([
      {
        location: config.sourcePath ?? "<config>",
        path: "state.path",
        message: `cannot open ${JSON.stringify(state.path)}: ${error.message}`,
      },
    ]);
  }
}

/** SQLite's own refusal, or the OS's about the file or one of its folders. */
function isStatePathError(error: Error, statePath: string): boolean {
  const { code, path } = error as NodeJS.ErrnoException;
  if (code === "ERR_SQLITE_ERROR") return true;
  if (code === undefined || !/^E[A-Z]+$/.test(code) || path === undefined) return false;
  const target = resolve(statePath);
  const failed = resolve(path);
  return target === failed || target.startsWith(`${failed}${sep}`);
}
