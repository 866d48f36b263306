// The size of V8's young generation in a gateway process. Node 24's V8 lets the new space (two semi-spaces)
// double under load up to 128 MB on this kind of machine (Node 22 stopped at 32 MB): at 64 connections that alone
// took the gateway from ~185 MB to ~250 MB of RSS; and start-up, which allocates a lot that lives, grows it to
// 32 MB before the first request (~14 MB more idle RSS than a new space left at V8's initial size). The semi-space
// maximum can only be set on the command line (`--max-semi-space-size`), which `npm start`, `npx` and containers
// would each have to repeat; the growth factor, though, is read by V8 at every resize. So bin/llm-gateway.js sets
// it to 1 (no growth) before anything is loaded, and once the gateway serves, `capYoungGeneration` lets the new
// space grow again up to the ceiling, and no further (and lets it grow back should V8 ever shrink it, so that a
// long idle spell never leaves a tiny young generation for the next load). It looks after each collection, the
// only time the size changes, so an idle gateway is not woken for it. Interleaved runs showed no difference
// in CPU until ready or per request beyond the noise. Someone who passes their own semi-space flag (argv or
// NODE_OPTIONS) keeps V8's behaviour.
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { startedWithFlag } from "./node-flags.ts";

/**
 * New space size (both semi-spaces) at which growth stops, bytes. 16 MB: under 64 connections of load the RSS was
 * ~15 MB lower than with 32 MB (Node 22's maximum) for no CPU per request measurable in interleaved runs; at 8 MB
 * more objects outlived their first collections and the old space grew instead (bench/START-UP.md).
 */
export const YOUNG_GENERATION_CEILING_BYTES = 16 * 1024 * 1024;
/** V8's default `--semi-space-growth-factor`. */
const V8_GROWTH_FACTOR = 2;

/** The growth factor for a new space of this size: none at or above the ceiling, V8's below it. */
export function growthFactorFor(newSpaceBytes: number): number {
  return newSpaceBytes >= YOUNG_GENERATION_CEILING_BYTES ? 1 : V8_GROWTH_FACTOR;
}

/** True when the process was started with its own semi-space settings (then they are left alone). */
export function hasOwnSemiSpaceFlags(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return startedWithFlag(execArgv, nodeOptions, /^--(max|min)[-_]semi[-_]space|semi[-_]space[-_]growth/);
}

/** Start-up: no growth of the new space until `capYoungGeneration` (bin/llm-gateway.js, before anything loads). */
export function holdYoungGenerationDuringStartup(): void {
  if (hasOwnSemiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS)) return;
  setFlagsFromString("--semi-space-growth-factor=1");
}

/** Serving: the new space may grow up to the ceiling, no further. Returns a function that stops watching. */
export function capYoungGeneration(): () => void {
  if (hasOwnSemiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS)) return () => {};
  // Unknown at first (start-up may have held it at 1): the first check always sets it.
  let factor: number | undefined;
  const check = (): void => {
    const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
    const next = newSpace === undefined ? V8_GROWTH_FACTOR : growthFactorFor(newSpace.space_size);
    if (next !== factor) {
      setFlagsFromString(`--semi-space-growth-factor=${next}`);
      factor = next;
    }
  };
  check();
  // The new space changes size only in a collection (it doubles at a scavenge, several a second under load), and
  // Node tells a `gc` observer right after each one: looked at then, it never doubles past the ceiling, and nothing
  // wakes an idle gateway (a 50 ms poll did, 20 times a second for as long as the new space was below the ceiling).
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}
