// A ceiling on V8's young generation for the serving process. Node 24's V8 lets the new space (two semi-spaces)
// double under load up to 128 MB on this kind of machine (Node 22 stopped at 32 MB): at 64 connections that alone
// took the gateway from ~185 MB to ~250 MB of RSS, with no measurable gain in CPU per request. The semi-space
// maximum can only be set on the command line (`--max-semi-space-size`), which `npm start`, `npx` and containers
// would each have to repeat; the growth factor, though, is read by V8 at every resize. So once the new space has
// reached the ceiling its growth factor is set to 1 (no growth), and back to V8's 2 should it ever shrink below
// (V8 shrinks an idle process's new space), so that a long idle spell never leaves a tiny young generation for
// the next load. Someone who passes their own semi-space flag (argv or NODE_OPTIONS) keeps V8's behaviour.
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

/** New space size (both semi-spaces) at which growth stops, bytes: 2 x 16 MB semi-spaces, Node 22's maximum. */
export const YOUNG_GENERATION_CEILING_BYTES = 32 * 1024 * 1024;
/** V8's default `--semi-space-growth-factor`. */
const V8_GROWTH_FACTOR = 2;
/** ms between looks at the new space's size: resizes happen at scavenges, at most a few per second under load. */
const CHECK_INTERVAL_MS = 1_000;

/** The growth factor for a new space of this size: none at or above the ceiling, V8's below it. */
export function growthFactorFor(newSpaceBytes: number): number {
  return newSpaceBytes >= YOUNG_GENERATION_CEILING_BYTES ? 1 : V8_GROWTH_FACTOR;
}

/** True when the process was started with its own semi-space settings (then they are left alone). */
export function hasOwnSemiSpaceFlags(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some(
    (flag) => /^--(max|min)[-_]semi[-_]space/.test(flag) || /semi[-_]space[-_]growth/.test(flag),
  );
}

/** Starts holding the new space at the ceiling; returns a function that stops (leaving the current factor). */
export function capYoungGeneration(): () => void {
  if (hasOwnSemiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS)) return () => {};
  let factor = V8_GROWTH_FACTOR;
  const check = (): void => {
    const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
    if (newSpace === undefined) return;
    const next = growthFactorFor(newSpace.space_size);
    if (next === factor) return;
    setFlagsFromString(`--semi-space-growth-factor=${next}`);
    factor = next;
  };
  check();
  const timer = setInterval(check, CHECK_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
