// The V8 flags bin/llm-gateway.js and bin/warm-caches.js set in their first statements, before any other module of
// theirs is loaded: one copy for both, in plain JavaScript (this module is linked with the entry itself, so it is
// there before the first .ts file or the bundle is read). The rules are copies of src/cli/optimizing-compilers.ts's
// and src/cli/webassembly-tiers.ts's (their tests keep them equal); why each flag, there.
// A process started with its own tiering flags (argv or NODE_OPTIONS) keeps V8's behaviour for that kind of flag.

/**
 * V8's compilers above its interpreter (Maglev, TurboFan, Sparkplug) held until the first request (released by
 * src/cli/optimizing-compilers.ts through the flag on `process`), and WebAssembly kept in V8's baseline tier for the
 * life of the process: Node's TypeScript stripper, WebAssembly too, is loaded with the first .ts file when the
 * compile cache has no entry, and tiered up while it stripped the sources otherwise (a 16 MB optimizing zone:
 * test/e2e/start-webassembly-tiers.test.ts). bin/warm-caches.js sets the same, because V8 rejects code cached under
 * other flags.
 */
export function setEntryV8Flags() {
  const ownFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  const { setFlagsFromString } = process.getBuiltinModule("node:v8");
  if (
    !ownFlags.some((flag) => /^--(no[-_])?(maglev|turbofan|sparkplug|opt|jitless|max[-_]opt|lite[-_]mode)\b/.test(flag))
  ) {
    setFlagsFromString("--no-maglev");
    setFlagsFromString("--no-turbofan");
    setFlagsFromString("--no-sparkplug");
    process[Symbol.for("llm-gateway.optimizing-compilers-held")] = true;
  }
  if (!ownFlags.some((flag) => /^--(no[-_])?(liftoff|wasm[-_](tier|dynamic[-_]tiering))/.test(flag))) {
    setFlagsFromString("--no-wasm-dynamic-tiering");
    setFlagsFromString("--no-wasm-tier-up");
  }
}
