// V8's optimizing compilers (Maglev and TurboFan) held off through start-up. Start-up code (module top levels, the
// YAML and config validation, the scoring data's indexes, route registration) runs once, yet parts of it are hot
// enough for V8 to optimize them on its worker threads: CPU that competes with the main thread when the process
// has one core, and ~8 MB of idle RSS (compiler memory, the compilers' own code pages, optimized code) for code
// that never runs again. bin/llm-gateway.js turns both off in its first statement, before any other module is loaded
// (with the rule and the flag below, copied into bin/entry-v8-flags.js, plain JavaScript linked with the entry, because
// no .ts file may be loaded before; holding them after the entry's dynamic imports made Node's start hot enough to
// touch the Maglev compiler's ~2 MB of code pages, kept by an idle process; that one small module linked first did
// not: idle paired -0.14 MB against the rule inlined in the entry, 6 interleaved starts without the blob),
// and `holdOptimizingCompilersDuringStartup` is then a no-op; `serve` and `demo` turn them back on at the first
// request that is not a health check (`releaseOptimizingCompilersOnFirstRequest`), so the request path is optimized as
// before: V8 reads these flags at each tier-up decision, and optimizing-compilers.test.ts checks that a hot function
// still gets optimized after the release. Not at listening: an idle gateway answering only health checks then had
// Maglev compile what they run (the 401 of a check without the client key, say), touching the compiler's ~1.8 MB
// of code pages (bench/START-UP.md).
// Sparkplug, V8's baseline (non-optimizing) compiler, is held and released with them since 2026-12-06: start-up
// functions that run a few dozen times got baseline code, and the process touched the compiler's code pages: idle RSS
// 1.2 MB lower, CPU until ready not higher (7 interleaved starts; bench/README.md, section 24).
// Measured (10 interleaved starts, bench/START-UP.md): idle RSS 94 -> 86 MB, process CPU until ready
// about the same (the main thread runs start-up loops interpreted; the worker threads do less). Someone who passes
// their own compiler flags (argv or NODE_OPTIONS) keeps V8's behaviour. The flags are part of V8's code-cache
// check, so bin/warm-caches.js holds them too while it fills Node's compile cache.
import type { IncomingMessage } from "node:http";
import { setFlagsFromString } from "node:v8";
import { startedWithFlag } from "./node-flags.ts";

/**
 * Whether this process holds them, kept on `process` rather than in this module: bin/warm-caches.js or a mix of
 * module instances (the sources and the bundle in dist/) must not leave the compilers off for good because the
 * instance that releases them is not the one that held them.
 */
export const HELD = Symbol.for("llm-gateway.optimizing-compilers-held");
type HoldingProcess = NodeJS.Process & { [HELD]?: boolean };

/** A tiering flag of the process's own (bin/entry-v8-flags.js holds a copy of it). */
export const OWN_COMPILER_FLAG = /^--(no[-_])?(maglev|turbofan|sparkplug|opt|jitless|max[-_]opt|lite[-_]mode)\b/;

/** True when the process was started with its own tiering flags (then they are left alone). */
export function hasOwnCompilerFlags(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return startedWithFlag(execArgv, nodeOptions, OWN_COMPILER_FLAG);
}

/**
 * Start-up: no Maglev or TurboFan until `releaseOptimizingCompilers`. bin/llm-gateway.js and bin/warm-caches.js hold
 * them earlier with bin/entry-v8-flags.js's copy of this (see the top of this file), so there it does nothing; it is
 * the reference that copy follows, and what the tests hold with.
 */
export function holdOptimizingCompilersDuringStartup(): void {
  if ((process as HoldingProcess)[HELD] === true || hasOwnCompilerFlags(process.execArgv, process.env.NODE_OPTIONS)) {
    return;
  }
  setFlagsFromString("--no-maglev");
  setFlagsFromString("--no-turbofan");
  setFlagsFromString("--no-sparkplug");
  (process as HoldingProcess)[HELD] = true;
}

/** Serving: V8's defaults again (only if this process held them). */
export function releaseOptimizingCompilers(): void {
  if ((process as HoldingProcess)[HELD] !== true) return;
  setFlagsFromString("--maglev");
  setFlagsFromString("--turbofan");
  setFlagsFromString("--sparkplug");
  (process as HoldingProcess)[HELD] = false;
}

/**
 * Requests that do not release the compilers: the health checks load balancers and orchestrators send an idle
 * gateway. Not `/metrics`: its first scrape loads prom-client, whose code bin/warm-caches.js caches under the
 * serving flags (V8 rejects cached code compiled under other flags; test/e2e/start-caches.test.ts).
 */
const PROBE_PATHS: ReadonlySet<string> = new Set(["/ok", "/health"]);

/** The HTTP server's side that matters here: its `request` event. */
interface RequestEmitter {
  prependListener(event: "request", listener: (request: IncomingMessage) => void): unknown;
  off(event: "request", listener: (request: IncomingMessage) => void): unknown;
}

/**
 * Serving: V8's defaults again at the first request other than a probe (PROBE_PATHS), then the listener is gone.
 * Until then an idle gateway optimizes nothing (the top of this file says why that matters).
 */
export function releaseOptimizingCompilersOnFirstRequest(server: RequestEmitter): void {
  if ((process as HoldingProcess)[HELD] !== true) return;
  const onRequest = (request: IncomingMessage): void => {
    const url = request.url ?? "/";
    const queryAt = url.indexOf("?");
    if (PROBE_PATHS.has(queryAt < 0 ? url : url.slice(0, queryAt))) return;
    server.off("request", onRequest);
    releaseOptimizingCompilers();
  };
  // First among the listeners: released before the request's own code runs (and loads anything).
  server.prependListener("request", onRequest);
}
