// Starting and stopping a gateway process: shared by `serve`, `demo` and the tests (which start the real
// thing on port 0).

import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { Env } from "../config/env.ts";
import type { GatewayConfig } from "../config/types.ts";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { FRONT_DOORS } from "../front-doors.ts";
import { countUnhandledRejection, reportProcessFaultsWith } from "../observability/process-faults.ts";
import { routedLogLine } from "../observability/routed-log.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { startLeaderboardRefresh } from "../pipeline/leaderboard-refresh-loop.ts";
import type { GatewayServer } from "../server/build-server.ts";
import { buildServer } from "../server/build-server.ts";
import { createObservers } from "./observers.ts";
import { openBooks } from "./open-books.ts";

/** ms between sweeps for connections that went idle during shutdown. */
const IDLE_SWEEP_INTERVAL_MS = 100;
/** ms during which an unhandled rejection with the same message is not logged again. */
const REJECTION_LOG_INTERVAL_MS = 60_000;
/** Distinct messages remembered for that (a flood of distinct ones is logged, not remembered). */
const MAX_REMEMBERED_REJECTIONS = 100;

export interface RunningGateway {
  readonly app: GatewayServer;
  readonly runtime: GatewayRuntime;
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /**
   * The last writes before an exit that will not wait for `close` (a second signal): the state file synchronously
   * (waiting at most `stateWaitMs` for a lock another process holds) and the kept answers waiting for that lock (if
   * it is free), then the request log's pending batch, the other observers' buffers and, with Redis, the queued
   * prompt calibrations. Never rejects; the caller bounds it.
   */
  writeBeforeExit(stateWaitMs: number): Promise<void>;
  /**
   * Ends every request still in flight through its own pipeline (open-requests.ts): each is recorded (outcome
   * `client_aborted`, status 503, `service_unavailable`), its budget reservation reconciled, and a client still
   * reading gets the error in its protocol. Resolves once each is settled; those still open after `maxWaitMs` (a stream
   * whose client reads nothing) have their connections closed and get 200 ms more. Never rejects.
   */
  endInFlight(maxWaitMs: number): Promise<void>;
}

export interface StartOptions {
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  readonly clock?: Clock;
  /** The upstream connections (default: a keep-alive undici Agent of the runtime's own). */
  readonly dispatcher?: Dispatcher;
  readonly warnings?: readonly string[];
  /**
   * The environment the config was loaded with (the real one plus `.env`): what the OTLP export reads its
   * `OTEL_*` settings from. Default: `process.env`, which has no `.env` in it.
   */
  readonly env?: Env;
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const logger = options.logger;
  // The server (and its logger) is built once the runtime is: what the runtime logs before (the state file restored
  // or found damaged, a Redis not reachable at start) is kept and written once the logger exists.
  let app: GatewayServer | undefined;
  const earlyLines: { level: "info" | "warn"; object: object; message: string }[] = [];
  const runtimeLogger = {
    info: (object: object, message: string) =>
      app === undefined ? earlyLines.push({ level: "info", object, message }) : app.log.info(object, message),
    warn: (object: object, message: string) =>
      app === undefined ? earlyLines.push({ level: "warn", object, message }) : app.log.warn(object, message),
  };
  const { runtime, keptResponses, batchStore } = await openBooks(config, {
    logger: runtimeLogger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
  });
  let observers: Awaited<ReturnType<typeof createObservers>>;
  try {
    observers = await createObservers(config, runtime, runtimeLogger, options.env ?? process.env);
  } catch (error) {
    await Promise.allSettled([keptResponses.close(), batchStore.close(), runtime.close()]);
    throw error;
  }
  const serverOptions = {
    observers,
    batches: batchStore.setup,
    keptResponses: keptResponses.kept,
    conversations: keptResponses.conversations,
    toolCallExtras: keptResponses.toolCallExtras,
    keptResponsesStatus: () => keptResponses.status(),
  };
  app = buildServer(runtime, logger === undefined ? serverOptions : { logger, ...serverOptions });
  for (const warning of options.warnings ?? []) app.log.warn(warning);
  // Among them the first snapshot's discovery and meta model warnings.
  for (const line of earlyLines.splice(0)) app.log[line.level](line.object, line.message);
  runtime.onRecord(routedLogLine(() => app?.log));
  runtime.onRecord(observers.observe);
  keptResponses.onAnswersLost((count) => observers.metrics?.countAnswersLost(FRONT_DOORS.responses.name, count));
  try {
    await app.listen({ port: config.server.port, host: config.server.host });
  } catch (error) {
    // e.g. the port is in use: release what was opened (store files, Redis connections) so the process can exit.
    await app.close();
    await observers.close();
    await keptResponses.close();
    await batchStore.close();
    await runtime.close();
    throw error;
  }
  const stopLeaderboardRefresh = startLeaderboardRefresh(runtime, runtimeLogger);
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.server.port;
  const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
  const instance = app;
  return {
    app: instance,
    runtime,
    url: `http://${host}:${port}`,
    port,
    close: async () => {
      // Fastify closes the connections that are idle when close() starts; a connection whose stream finishes
      // later stays open on the client's keep-alive and would hold up the exit until the client drops it (or
      // the shutdown timeout). Close such connections as they go idle.
      runtime.isShuttingDown = true;
      stopLeaderboardRefresh();
      const idleSweep = setInterval(() => instance.server.closeIdleConnections(), IDLE_SWEEP_INTERVAL_MS);
      try {
        await instance.close();
        // Background responses have no connection that close() waits for: they finish within the same grace (the
        // shutdown timeout ends them, failed, like any request still in flight) before their store closes.
        await runtime.backgroundRuns.settled();
      } finally {
        clearInterval(idleSweep);
      }
      // At once: the state file's, the kept answers' and the conversations' last writes each wait up to 2 s for a
      // lock another process holds on the file (by a timer: the event loop runs), so together they take 2 s at
      // most, not 2 s each in turn (~6 s past the shutdown timeout until 2026-12-06). Each says what it lost.
      // The observers close alongside, not before: none of them writes these stores, and one that is slow (an OTLP
      // export to a collector that does not answer waits 5 s) made the stores' closes start so late that the exit's
      // 3 s bound after the shutdown timeout cut their lock wait, and its warning, before it began.
      // allSettled: one close that throws must not end the exit while the others still write; the first failure is
      // thrown once all have settled, as a single close's failure was before.
      const closes = await Promise.allSettled([
        observers.close(),
        keptResponses.close(),
        batchStore.close(),
        runtime.close(),
      ]);
      const failed = closes.find((close) => close.status === "rejected");
      if (failed !== undefined) throw failed.reason;
    },
    endInFlight: (maxWaitMs) => {
      const ended = runtime.openRequests.cutAll(
        new ServiceUnavailableError("The gateway is shutting down; retry the request (on another instance)."),
      );
      // A stream whose client reads nothing waits for its socket to drain and settles only once the socket is
      // gone: what is still open after the wait is closed with its connection, and gets a last short wait.
      return settledWithin(ended, maxWaitMs).then(() => {
        if (runtime.openRequests.size === 0) return;
        instance.server.closeAllConnections();
        return settledWithin(ended, END_IN_FLIGHT_SOCKET_WAIT_MS);
      });
    },
    writeBeforeExit: async (stateWaitMs) => {
      stopLeaderboardRefresh();
      const state = runtime.state.writeBeforeExit(stateWaitMs);
      keptResponses.writeBeforeExit();
      await Promise.allSettled([state, observers.flushBeforeExit()]);
    },
  };
}

/** How long the flush after a shutdown timeout may take (the request log's last batch, the state file). */
const SHUTDOWN_FLUSH_MS = 3_000;
/**
 * ms a second signal (or the shutdown timeout) waits for the requests it ends to be recorded before the last writes:
 * ending one is an abort and a few turns of the event loop; a stream whose client reads nothing waits for its socket,
 * which is closed after this (END_IN_FLIGHT_SOCKET_WAIT_MS).
 */
const END_IN_FLIGHT_WAIT_MS = 300;
/** ms the requests still open after END_IN_FLIGHT_WAIT_MS get, once their connections are closed, to settle. */
const END_IN_FLIGHT_SOCKET_WAIT_MS = 200;

/** Resolves when `settled` does or `maxWaitMs` has passed, whichever is first; never rejects. */
function settledWithin(settled: Promise<void>, maxWaitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((done) => {
    timer = setTimeout(done, maxWaitMs);
  });
  return Promise.race([settled.catch(() => {}), bound]).finally(() => clearTimeout(timer));
}

/** ms a second signal's state write may wait for a lock on the state file another process holds. */
const SECOND_SIGNAL_STATE_WAIT_MS = 1_000;
/**
 * ms a second signal waits, after the state file is written, for the request log's pending batch (a file append on
 * libuv's thread pool, or a Redis command) and the queued Redis calibrations. A healthy disk or Redis answers in
 * milliseconds; a hung one must not keep the process alive, so the exit comes at this bound regardless (what was
 * not written is lost, as before). With the state file's own bound and the wait for the requests it ends
 * (END_IN_FLIGHT_*), the process is gone within ~2.5 s of the signal.
 */
const SECOND_SIGNAL_FLUSH_MS = 1_000;

/**
 * SIGTERM/SIGINT: stop accepting connections, let in-flight requests and streams finish for up to
 * `shutdownTimeoutMs`, then exit. A second signal exits without waiting for them (code 1): it ends each one through
 * its pipeline first (recorded, its reservation settled, the client told in its protocol; bounded by
 * END_IN_FLIGHT_WAIT_MS), then writes the state file (synchronously, bounded by SECOND_SIGNAL_STATE_WAIT_MS) and the
 * request log's pending batch (bounded by SECOND_SIGNAL_FLUSH_MS): the budgets counted since the state file's last
 * flush, the records of the last half second and those of the requests it ended would be lost otherwise.
 */
export function handleShutdownSignals(
  gateway: RunningGateway,
  shutdownTimeoutMs: number,
  exit: (code: number) => void,
  /** Where the signals come from; a test passes an emitter of its own. */
  signals: Pick<NodeJS.EventEmitter, "on"> = process,
): void {
  let isStopping = false;
  let isExiting = false;
  let isClosed = false;
  const stop = (signal: string): void => {
    if (isStopping) {
      if (isExiting) return; // a third signal while the second one's writes are under way: they are bounded
      isExiting = true;
      gateway.app.log.warn(
        { signal },
        "second signal: ending the requests in flight, writing the state file and the request log's pending records, then exiting",
      );
      void gateway.endInFlight(END_IN_FLIGHT_WAIT_MS).then(() => {
        const writes = gateway.writeBeforeExit(SECOND_SIGNAL_STATE_WAIT_MS);
        // Started after the synchronous state write returned: the request log gets its own full bound. Not
        // unref'd: it is the exit itself, whatever else the loop still holds or does not.
        setTimeout(() => exit(1), SECOND_SIGNAL_FLUSH_MS);
        void writes.then(() => exit(1));
      });
      return;
    }
    isStopping = true;
    gateway.app.log.info({ signal, shutdownTimeoutMs }, "shutting down: finishing in-flight requests");
    const timer = setTimeout(() => {
      gateway.app.log.warn("shutdown timeout: ending the requests still in flight and closing their connections");
      // Ended through their pipelines first, so that a client still reading gets an error rather than a cut socket.
      void gateway.endInFlight(END_IN_FLIGHT_WAIT_MS).then(() => gateway.app.server.closeAllConnections());
      // The close under way goes on once the connections are gone: the cut streams publish their records, then the
      // request log and the state are flushed (gateway.close). Exiting here lost both; bounded all the same.
      setTimeout(() => {
        if (isExiting || isClosed) return;
        // The close is still under way (a background run's final save, or a store, slower than the bound): the state
        // file and the kept answers waiting for its lock get one last write now, without waiting for the lock, and
        // each says what it could not write. Exiting without it cut a store's lock wait before its warning: what
        // was lost went unsaid. Synchronous (node:sqlite): done before the exit below; the rest is not waited for.
        void gateway.writeBeforeExit(0);
        exit(0);
      }, SHUTDOWN_FLUSH_MS).unref();
    }, shutdownTimeoutMs);
    timer.unref();
    // Once a second signal came, its own path exits (code 1, bounded): ending the requests in flight lets this close
    // finish too (its flushes are as good as the second signal's), and which of the two came first must not decide
    // the exit code.
    gateway.close().then(
      () => {
        isClosed = true;
        if (!isExiting) exit(0);
      },
      () => {
        isClosed = true;
        exit(1);
      },
    );
  };
  signals.on("SIGTERM", () => stop("SIGTERM"));
  signals.on("SIGINT", () => stop("SIGINT"));
}

/**
 * Faults of the process from now on (process-faults.ts): an uncaught exception is logged (fatal) by the gateway's
 * logger and printed redacted with every secret the runtime knows, then ends the process as Node's default does.
 */
export function reportFaultsThrough(gateway: RunningGateway): void {
  reportProcessFaultsWith({
    redact: gateway.runtime.secrets.redactor,
    log: (error, message) => gateway.app.log.fatal({ err: error }, message),
  });
}

/**
 * A promise rejected with nobody to handle it (a library's internal command, as ioredis's re-SUBSCRIBE was) would
 * end the process by Node's default, and every request in flight with it. A gateway keeps serving: the rejection is
 * logged as an error (redacted like every line), at most once a minute per message, and counted
 * (`llm_gateway_unhandled_rejections_total`). Thrown exceptions still end the process (the state they leave may be
 * half-changed), redacted: `reportFaultsThrough`.
 */
export function logUnhandledRejections(gateway: RunningGateway): void {
  const lastLoggedMs = new Map<string, number>();
  process.on("unhandledRejection", (reason: unknown) => {
    countUnhandledRejection();
    const message = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
    const nowMs = Date.now();
    const last = lastLoggedMs.get(message);
    if (last !== undefined && nowMs - last < REJECTION_LOG_INTERVAL_MS) return;
    if (last !== undefined || lastLoggedMs.size < MAX_REMEMBERED_REJECTIONS) lastLoggedMs.set(message, nowMs);
    gateway.app.log.error(
      { err: reason instanceof Error ? reason : new Error(message) },
      `unhandled promise rejection (a bug; the gateway keeps serving): ${message}`,
    );
  });
}
