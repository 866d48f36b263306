// Preloaded (`node --import`) into the gateway by bench/soak.ts: once a second, sends the process's own vital
// signs over the IPC channel — RSS, heap, event-loop delay p99 (since the last sample) and open TCP sockets.
// The gateway itself is unchanged; without an IPC channel this does nothing.
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface ProbeSample {
  readonly kind: "probe";
  readonly atMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly eventLoopDelayP99Ms: number;
  readonly eventLoopDelayMaxMs: number;
  /** TCP handles (listening socket, client and upstream connections). */
  readonly tcpHandles: number;
}

if (typeof process.send === "function") {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const sample: ProbeSample = {
      kind: "probe",
      atMs: Date.now(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopDelayP99Ms: delay.percentile(99) / 1e6,
      eventLoopDelayMaxMs: delay.max / 1e6,
      tcpHandles: process.getActiveResourcesInfo().filter((resource) => resource === "TCPSocketWrap").length,
    };
    delay.reset();
    process.send?.(sample);
  }, 1_000);
  timer.unref();
  process.on("disconnect", () => clearInterval(timer));
}
