// The gateway's one WebAssembly module is undici's HTTP/1 parser (llhttp). V8 compiles it with its baseline compiler
// (Liftoff) at the first upstream connection, then, under load, again with its optimizing one (Turboshaft), in a
// background job whose zone peaked at ~15 MB (heaptrack: the loop-unrolling phase). That job runs on one of V8's
// worker threads, so its memory is malloc'd in that thread's arena, and glibc keeps the freed pages (the start from
// the snapshot blob raised its trim threshold to ~13 MB): a loaded gateway held a 16 MB arena for the parser's sake
// (bench/README.md section 43). The parser's baseline code is enough: no cost per request shown (section 43).
// Both flags are needed at run time (`--liftoff-only` is applied through implications only at V8's start, and
// either one alone still tiers up); they change V8's flag hash, so they are set with the start-up holds, which
// bin/warm-caches.js applies in the same order. Someone who passes their own WebAssembly tiering flags keeps them.
// bin/llm-gateway.js and bin/warm-caches.js set them earlier still, in their first statement (bin/entry-v8-flags.js,
// with a copy of the rule below): a start from the sources without a compile cache loads Node's TypeScript stripper, WebAssembly too, with
// its first .ts file, and the stripper tiered up otherwise (test/e2e/start-webassembly-tiers.test.ts). Here it is then
// a no-op; it is what the snapshot's main applies.
import { setFlagsFromString } from "node:v8";
import { startedWithFlag } from "./node-flags.ts";

/** A WebAssembly tiering flag of the process's own (bin/entry-v8-flags.js holds a copy of it). */
export const OWN_WASM_TIER_FLAG = /^--(no[-_])?(liftoff|wasm[-_](tier|dynamic[-_]tiering))/;

/** True when the process was started with its own WebAssembly tiering flags (then they are left alone). */
export function hasOwnWebAssemblyTierFlags(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return startedWithFlag(execArgv, nodeOptions, OWN_WASM_TIER_FLAG);
}

/** WebAssembly stays in V8's baseline tier for the life of the process. */
export function keepWebAssemblyInBaselineTier(): void {
  if (hasOwnWebAssemblyTierFlags(process.execArgv, process.env.NODE_OPTIONS)) return;
  setFlagsFromString("--no-wasm-dynamic-tiering");
  setFlagsFromString("--no-wasm-tier-up");
}
