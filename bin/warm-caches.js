#!/usr/bin/env node
import { setEntryV8Flags } from "./entry-v8-flags.js";

// Fills the caches a start reads, so that the first start is as fast as any later one: the bundle in dist/ (when
// esbuild is installed and dist/ is stale: bin/build.js), Node's compile cache for every module `serve` loads
// (type-stripped and compiled once), the parsed scoring data (data/cache/scoring-data.json) and the scoring memo's
// entries of the demo's config and of the config `serve` would load (`--config PATH` as serve's). Run by the
// Dockerfile at build time and by `npm run bench`; harmless to run again (all three are keyed by content or by
// the sources' state, so a stale entry is replaced, never used).
// As bin/llm-gateway.js, first: the optimizing compilers held and WebAssembly kept in V8's baseline tier before any
// module of ours is compiled (the first .ts file included), so that every module is cached under the flags a start
// compiles it with (bin/entry-v8-flags.js; the same rule for a process started with its own tiering flags).
setEntryV8Flags();
const { spawnSync } = await import("node:child_process");
const { readdirSync } = await import("node:fs");
const { fileURLToPath } = await import("node:url");

const root = fileURLToPath(new URL("..", import.meta.url));
// In a process of its own: esbuild is not loaded into this one, whose V8 flags must be those of a start.
const build = spawnSync(
  process.execPath,
  [fileURLToPath(new URL("build.js", import.meta.url)), "--if-stale", "--quiet"],
  {
    stdio: "inherit",
  },
);
if (build.status !== 0) process.stderr.write("warm-caches: bin/build.js failed; starts use the sources\n");
// After the hold, as bin/llm-gateway.js loads it, and after the build, which loads it under V8's default flags (with
// NODE_COMPILE_CACHE set, its cached code is then replaced by the one a start accepts).
const { bundleManifest, bundleState, DIST_DIR, restampBundle } = await import("./start-entry.js");
const bundle = bundleState(root, process.env);
// The same package versions installed again (the container's runtime stage): recorded, so starts only stat them.
if (bundle.isFresh) restampBundle(root, bundle.restamp);
const fromBundle = bundle.isFresh;

const { enableCompileCache, flushCompileCache } = await import("node:module");
enableCompileCache?.();
// V8 rejects code cached under other flags: compile each module under the flags bin/llm-gateway.js has set when
// it loads that module (the same start-up holds, from the same module).
const holds = await import(fromBundle ? "../dist/start-up-holds.js" : "../src/cli/start-up-holds.ts");
holds.holdV8DuringStartup();
// The modules loaded at a door's first request (bin/start-entry.js, LAZY_SOURCES): compiled below, as prom-client is.
const lazyFiles = fromBundle ? bundleManifest(root).lazyFiles : [];
if (fromBundle) {
  // Every module of the bundle but main.js, which would run a command (it is small, and cached by the first start).
  const files = readdirSync(new URL(`../${DIST_DIR}/`, import.meta.url)).filter(
    (name) => name.endsWith(".js") && name !== "main.js" && !lazyFiles.includes(name),
  );
  for (const name of files) await import(`../${DIST_DIR}/${name}`);
} else {
  await import("../src/cli/serve.ts");
}
// Loaded at the first /metrics scrape, not at start: compiled here so that scrape is not the slow one, under the
// flags a scrape finds (compilers released, the new space growing again: V8's defaults). So are the lazy doors' files,
// first imported by a request, once the compilers are released (V8 rejects code cached under other flags).
// Loaded under the holds, as `serve` and `demo` load the modules it shares with them (the demo's config: its own file).
const { warmScoringData, warmScoringMemo } = await import(
  fromBundle ? "../dist/warm-scoring-data.js" : "../src/cli/warm-scoring-data.ts"
);
holds.releaseOptimizingCompilers();
(await import("node:v8")).setFlagsFromString("--semi-space-growth-factor=2");
await import("prom-client");
for (const name of lazyFiles) await import(`../${DIST_DIR}/${name}`);
const scoring = warmScoringData();
// The scoring memo's entries for the demo's config and for the one `serve` would load from here (its `--config PATH`,
// LLM_GATEWAY_CONFIG, else config/meta-providers.yaml), read with this environment and
// its .env, as `serve` reads them.
const { values } = (await import("node:util")).parseArgs({ options: { config: { type: "string" } } });
const memo = await warmScoringMemo({ cwd: process.cwd(), configPath: values.config });
flushCompileCache?.();
process.stdout.write(`caches warm: ${fromBundle ? "bundle" : "sources"}, ${scoring}; scoring memo: ${memo}\n`);
