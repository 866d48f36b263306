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
 * One that fails closes those that opened, and its error is thrown.
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
    const opened = await Promise.allSettled([openRuntime(), openKept(), openBatches()]);
    const [runtimeOpened, keptOpened, batchesOpened] = opened;
    if (
      runtimeOpened.status === "fulfilled" &&
      keptOpened.status === "fulfilled" &&
      batchesOpened.status === "fulfilled"
    ) {
      runtime = runtimeOpened.value;
      return { runtime, keptResponses: keptOpened.value, batchStore: batchesOpened.value };
    }
    await Promise.allSettled(opened.map((each) => (each.status === "fulfilled" ? each.value.close() : undefined)));
    throw opened.find((each) => each.status === "rejected")?.reason;
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
