// The start-up snapshot's entry (bin/build-snapshot.js bundles it into dist/snapshot.cjs, which `node
// --build-snapshot` evaluates once). What it imports is evaluated at build time: every module `serve` and `demo` load,
// so a start from dist/snapshot.blob begins with them in its heap. Nothing here touches the environment before the
// deserialized main runs: the config, .env, files, sockets, timers and the clock belong to the command, which runs
// only then. (One file is read at build time, the dashboard page: READ_AT_BUILD, checked below.)
// First: it watches what the other modules do while they are evaluated (bin/snapshot-guard.js).

import { createRequire, enableCompileCache } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startupSnapshot } from "node:v8";
import { runCli } from "../src/cli/run-cli.ts";
import { endLoadTimeWatch } from "./snapshot-guard.js";
import "../src/cli/serve.ts";
import "../src/cli/demo.ts";
import { holdV8DuringStartup } from "../src/cli/start-up-holds.ts";
import { bundleState, DIST_DIR, READ_AT_BUILD, snapshotRecord } from "./start-entry.js";

// Not an ES import of node:fs: its namespace would load fs/promises and readline (bin/build.js).
const { realpathSync, statSync } = process.getBuiltinModule("node:fs");
/** The project this snapshot was built from (import.meta.url is defined at build time: bin/build-snapshot.js). */
const BUILT_FOR = resolve(fileURLToPath(new URL("..", import.meta.url)));

/**
 * Why this start cannot use the snapshot's heap, or undefined: as bin/llm-gateway.js takes dist/ (stale sources or
 * packages, another Node, LLM_GATEWAY_BUNDLE=0), and besides, another checkout (the blob holds its root) or a file
 * read at build time changed since.
 */
function staleReason(root) {
  if (root !== BUILT_FOR) return `built for ${BUILT_FOR}`;
  const bundle = bundleState(root, process.env);
  if (!bundle.isFresh) return bundle.reason;
  const builtAtMs = snapshotRecord(join(root, DIST_DIR))?.builtAtMs ?? 0;
  for (const path of READ_AT_BUILD) {
    if (statSync(join(root, path), { throwIfNoEntry: false })?.mtimeMs > builtAtMs) return `${path} changed`;
  }
  return undefined;
}

function realRoot(path) {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** `--loader X` or `--experimental-loader X` on the command line or in NODE_OPTIONS. */
function hasLoader(execArgv, nodeOptions) {
  const flag = /(?:^|\s)--(?:experimental-)?loader(?:=|\s|$)/;
  return flag.test(nodeOptions) || execArgv.some((argument) => flag.test(argument));
}

/** This start's project: argv as bin/llm-gateway.js gets it, by its real path, as the build's (import.meta.url). */
function startRoot() {
  return process.argv[1] === undefined ? BUILT_FOR : realRoot(resolve(dirname(process.argv[1]), ".."));
}

startupSnapshot.setDeserializeMainFunction(() => {
  const options = process.env.NODE_OPTIONS ?? "";
  // Node skips `--loader` / `--experimental-loader` when it starts from a snapshot, as it does `--import`; and a loader
  // registered now would see none of the modules in this heap (an instrumentation loader patches them as they load).
  // So the normal start, bin/llm-gateway.js, runs instead, with the loaders registered first (bin/import-preloads.js).
  if (hasLoader(process.execArgv, options)) {
    process.stderr.write(
      "llm-gateway: a --loader / --experimental-loader is set, which Node skips when it starts from the start-up " +
        "snapshot: started without the snapshot (bin/llm-gateway.js), the loaders registered with module.register()\n",
    );
    const root = startRoot();
    const { startWithLoaders } = createRequire(join(root, "package.json"))(join(root, "bin", "import-preloads.js"));
    startWithLoaders(process.execArgv, options, process.cwd(), join(root, "bin", "llm-gateway.js"));
    return;
  }
  // As bin/llm-gateway.js, first (V8's flags are not part of a snapshot): the new space and the compilers held.
  holdV8DuringStartup();
  // For what loads later from node_modules (prom-client at the first scrape).
  enableCompileCache();
  // npm start: node --snapshot-blob dist/snapshot.blob bin/llm-gateway.js serve. A checkout reached through a symbolic
  // link is the same checkout.
  const root = startRoot();
  const run = () => {
    if (staleReason(root) === undefined) {
      runCli(process.argv.slice(2));
      return;
    }
    // The sources, as bin/llm-gateway.js runs them then. `import()` does not work from a snapshot's script; `require`
    // of an ES module does (src/main.ts has no top-level await).
    createRequire(join(root, "package.json"))(join(root, "src", "main.ts"));
  };
  // Node skips `--import` preloads when it starts from a snapshot (bin/import-preloads.js imports them first).
  if (!process.execArgv.some((flag) => flag.startsWith("--import")) && !options.includes("--import")) {
    run();
    return;
  }
  const { importPreloads } = createRequire(join(root, "package.json"))(join(root, "bin", "import-preloads.js"));
  importPreloads(process.execArgv, options, process.cwd()).then(run);
});
// Last: every module above is evaluated; any clock, randomness, environment or timer used meanwhile ends the build.
endLoadTimeWatch();
