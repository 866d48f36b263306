#!/usr/bin/env node
// Linked with this file, evaluated before its first statement: it only defines the function called below.
import { setEntryV8Flags } from "./entry-v8-flags.js";

// The package's command. The sources are TypeScript run by Node 24's type stripping; `npx llm-gateway` puts
// the project's own Node 24 (the `node` dependency) first on PATH, so `node` here is that one.
const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  process.stderr.write(
    `llm-gateway needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx llm-gateway, npm start), which uses the project's pinned Node 24.\n`,
  );
  process.exit(2);
}
// V8's compilers above its interpreter (Maglev and TurboFan, and since 2026-12-06 the baseline compiler Sparkplug:
// ~1.2 MB less idle RSS, its code pages and baseline code for start-up functions that run a few times; CPU until
// ready not worse) held off from here, before any other module is loaded:
// Node's own start already makes a few functions hot, and optimizing them touched ~2 MB more pages of the `node`
// binary (the compilers' own code) that an idle gateway keeps (idle RSS 71.6 -> 69.5 MB against holding them after
// this file's imports; same time to ready). `serve` and `demo` turn them back on at the first request that is not
// a health check (/ok, /health), through the flag on `process` (src/cli/optimizing-compilers.ts, which has the why).
// WebAssembly kept in V8's baseline tier from here on too (src/cli/webassembly-tiers.ts has the why): before the first
// .ts file, whose load compiles Node's TypeScript stripper (WebAssembly) when the compile cache has no entry.
// bin/warm-caches.js sets both the same way, first, because V8 rejects code cached under other flags.
setEntryV8Flags();
// Node's compile cache (in the OS temp folder, or NODE_COMPILE_CACHE) keeps the type-stripped sources and their
// V8 code: from the second start on, Node neither loads its TypeScript stripper (~18 MB of WebAssembly) nor
// strips or compiles anything again, which roughly halves the time to ready. This file is JavaScript so that the
// cache is on before the first .ts file is read (and so that a start from the bundle reads none).
const { enableCompileCache } = await import("node:module");
enableCompileCache?.();
// The bundle in dist/ when it is fresh (bin/build.js, bin/start-entry.js), else the sources.
const { bundleState } = await import("./start-entry.js");
const { fileURLToPath } = await import("node:url");
const fromBundle = bundleState(fileURLToPath(new URL("..", import.meta.url)), process.env).isFresh;
// V8's new space held at its initial size through start-up (~14 MB less idle RSS), and its optimizing compilers
// off until the first request (held above already; ~8 MB less: start-up code runs once); `serve` and `demo` let
// the new space grow to a ceiling once listening and turn the compilers back on once serving (src/cli/young-generation.ts,
// optimizing-compilers.ts).
// The holds come from the same code as the rest, so that `serve` releases them through the module instance that
// set them (in the bundle: a chunk main.js shares).
const { holdV8DuringStartup } = await import(fromBundle ? "../dist/start-up-holds.js" : "../src/cli/start-up-holds.ts");
holdV8DuringStartup();
await import(fromBundle ? "../dist/main.js" : "../src/main.ts");
