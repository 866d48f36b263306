#!/usr/bin/env node
// Bundles the gateway (src/main.ts and the packages it imports) into dist/: ~30 minified ES modules instead of
// ~600 files. bin/llm-gateway.js starts from it while it is fresh (bin/start-entry.js), from the TypeScript
// sources otherwise. Node then resolves, reads, looks up in its compile cache and links ~30 files instead of ~600,
// and holds less source text; with the stand-ins for node:http2 / node:https below, a start takes ~150 ms less CPU
// and ~13 MB less idle RSS than from the sources (bench/START-UP.md). Same code, same behaviour: the tests run the
// sources, and test/e2e/bundle.test.ts a bundle (requests, the dashboard, presets, a /metrics scrape, a config error).
//
// Usage: node bin/build.js [--if-stale] [--quiet] [--no-minify] [--no-snapshot]
//   `npm run build`; `npm start`, `npm run demo` and bin/warm-caches.js run it with --if-stale, which
//   LLM_GATEWAY_BUNDLE=0 turns into a no-op. esbuild is a devDependency: without it (`npm ci --omit=dev`) there is
//   no bundle and the sources run (`npm run build` then fails, exit 1). A start-up snapshot that cannot be built
//   (bin/build-snapshot.js) fails the build (exit 1) though dist/ is written, with a blob of Node alone; under
//   --if-stale it is a warning and the start goes on. --no-snapshot (the Dockerfile's `--build-arg SNAPSHOT=skip`, for
//   emulated cross-arch builds) builds none: a blob of Node alone, not recorded as failed, exit 0.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildFullSnapshot,
  buildNodeOnlySnapshot,
  ensureStartableSnapshot,
  isRunning,
  snapshotFits,
} from "./build-snapshot.js";
import { bundleAssets, bundleOptions, nonAsciiOutputs } from "./bundle-plugins.js";
import { standInPackageDirs } from "./lazy-packages.js";
import {
  BUILD_MANIFEST,
  bundleState,
  DIST_DIR,
  LAZY_SOURCES,
  MANIFEST_FORMAT,
  packageStamp,
  snapshotRecord,
} from "./start-entry.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dist = join(ROOT, DIST_DIR);
const args = new Set(process.argv.slice(2));
const isQuiet = args.has("--quiet");
const say = (line) => {
  if (!isQuiet) process.stdout.write(`${line}\n`);
};

/**
 * Ends a run that leaves dist/'s bundle as it is: `npm start` runs `node --snapshot-blob dist/snapshot.blob`, and Node
 * exits on a missing blob or another Node's, so one this Node can start is left there (bin/build-snapshot.js).
 */
function exitWithStartableSnapshot(code) {
  mkdirSync(dist, { recursive: true });
  const snapshot = ensureStartableSnapshot(dist, ROOT);
  if (snapshot.message !== "") process.stderr.write(`bin/build.js: no start-up snapshot: ${snapshot.message}\n`);
  process.exit(code);
}

// dist/ up to date, but its snapshot missing or not for this Node: only the snapshot is built.
let isSnapshotOnly = false;
// dist/ up to date with a blob of Node alone that no failed build left: the snapshot is built if esbuild is there.
let isRetriedNodeOnly = false;
if (args.has("--if-stale")) {
  if (process.env.LLM_GATEWAY_BUNDLE === "0") {
    say("LLM_GATEWAY_BUNDLE=0: no bundle built, the gateway runs its sources");
    exitWithStartableSnapshot(0);
  }
  const state = bundleState(ROOT, {});
  const record = snapshotRecord(dist);
  // A fresh bundle beside a blob of Node alone that no failed build left (LLM_GATEWAY_BUNDLE=0 or no esbuild at an
  // earlier start, while the snapshot needed building): its snapshot is built now, as for a missing blob.
  isRetriedNodeOnly = record?.kind === "node-only" && record.isFailed !== true;
  if (state.isFresh && snapshotFits(dist, ROOT) && !isRetriedNodeOnly) {
    // A fresh bundle beside a blob of Node alone: the last build could not build the snapshot (it failed, saying
    // why). Said even with --quiet, at each start: every one of them is slower for it.
    if (record?.kind === "node-only") {
      process.stderr.write(
        "bin/build.js: warning: dist/ has no start-up snapshot (its last build could not build one: `npm run build` " +
          "says why); the gateway starts from dist/ without it\n",
      );
    }
    say("dist/ is up to date");
    process.exit(0);
  }
  isSnapshotOnly = state.isFresh;
}

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  if (isSnapshotOnly && isRetriedNodeOnly && snapshotFits(dist, ROOT)) {
    say("dist/ is up to date");
    process.exit(0);
  }
  // Said even with --quiet: every start is then ~100 ms slower, and `npm run build` before pruning avoids it.
  process.stdout.write(
    "llm-gateway: esbuild is not installed (no devDependencies), so there is no bundle: the gateway runs its " +
      "sources. Build before pruning (npm ci && npm run build && npm prune --omit=dev) for a faster start.\n",
  );
  // A build asked for (`npm run build`) that built nothing fails, as one whose snapshot could not be built does.
  exitWithStartableSnapshot(args.has("--if-stale") ? 0 : 1);
}

// Taken before reading any input: a source edited while the build runs is newer than the bundle, so stale.
const builtAtMs = Date.now();
if (isSnapshotOnly) {
  const snapshot = await buildFullSnapshot(esbuild, { dir: dist, root: ROOT, builtAtMs, isNonAsciiKept: true });
  if (!snapshot.isBuilt) {
    process.stderr.write(`bin/build.js: no start-up snapshot: ${snapshot.message}\n`);
    // Not tried again at each start (the warning above says so instead), until dist/ is stale.
    buildNodeOnlySnapshot(dist, ROOT, true);
  }
  say(snapshot.isBuilt ? "dist/ is up to date; its start-up snapshot built" : "dist/ is up to date");
  exitWithStartableSnapshot(0);
}
// Written next to dist/ and renamed into place: a gateway starting meanwhile sees the old bundle, the new one, or
// (for the moment between the two) none, and then runs the sources.
const staging = `${dist}.${process.pid}.tmp`;
removeLeftovers();
mkdirSync(staging, { recursive: true });

/**
 * Removes the staging (and replaced) folders of builds whose process is gone: a build interrupted (Ctrl-C, a killed
 * container build) left its `dist.<pid>.tmp/`, a few MB each, for good. A running build's folder is its own.
 */
function removeLeftovers() {
  let names = [];
  try {
    names = readdirSync(dirname(dist));
  } catch {
    return;
  }
  const base = DIST_DIR.slice(DIST_DIR.lastIndexOf("/") + 1);
  for (const name of names) {
    const match = name.startsWith(`${base}.`) ? /^(\d+)\.(tmp|old)$/.exec(name.slice(base.length + 1)) : null;
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || !isRunning(pid)) rmSync(join(dirname(dist), name), { recursive: true, force: true });
  }
}

/**
 * Fastify and undici require `node:http2` and `node:https` when they load, for servers and connections the gateway
 * never makes (Fastify's `http2`/`https` options; undici's HTTP/2 over TLS): loading them also loads `tls` and
 * OpenSSL's TLS side, ~11 MB of RSS (pages of the node binary and heap) and ~30 ms of CPU at every start. In the
 * bundle, those two packages get a stand-in instead that loads the real module on first use. undici reads
 * `http2.constants` when it loads (header names, error codes): the stand-in holds them, copied from this Node at
 * build time (dist/build.json records that Node; bin/start-entry.js takes the bundle as stale under another one).
 * test/e2e/bundle.test.ts checks that an idle gateway has loaded neither, nor `tls`, and serves through undici.
 */
function lazyBuiltins(names, importers) {
  const wanted = new RegExp(`^node:(${names.join("|")})$`);
  return {
    name: "lazy-builtins",
    setup(build) {
      build.onResolve({ filter: wanted }, (args) =>
        importers.test(args.importer)
          ? { path: args.path.slice("node:".length), namespace: "lazy-builtin" }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
        const constants = process.getBuiltinModule(`node:${args.path}`).constants;
        return {
          loader: "js",
          contents: `"use strict";
const constants = ${constants === undefined ? "undefined" : JSON.stringify(constants)};
let real;
const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}));
module.exports = new Proxy({}, {
  get: (_, key) => (key === "constants" && constants !== undefined ? constants : load()[key]),
  has: (_, key) => key in load(),
  set: (_, key, value) => Reflect.set(load(), key, value),
  deleteProperty: (_, key) => Reflect.deleteProperty(load(), key),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const descriptor = Object.getOwnPropertyDescriptor(load(), key);
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
});
`,
        };
      });
    },
  };
}

/**
 * Packages that a dependency requires when it loads and calls only for a feature the gateway does not use: semver
 * (Fastify compares versions only for a plugin that declares the Fastify it needs; none does), @fastify/proxy-addr
 * with ipaddr.js (Fastify's trustProxy) and thread-stream (pino's worker-thread transports; the gateway logs to a
 * stream of its own). Bundled, each was evaluated and its source held by every start (~0.5 MB of idle RSS:
 * bench/README.md, section 32). In the bundle they get a stand-in that requires the real package from node_modules
 * at its first use (bin/lazy-packages.js); their folders are recorded with the bundled packages.
 */
const standIns = new Map();

/**
 * An ES `import` of a Node built-in builds the module's namespace, which reads every export once: for `node:fs` that
 * runs the lazy getter of `fs.promises`, which loads `fs/promises` and with it readline, the REPL's history and the
 * file streams (~0.5 MB of idle RSS; src/async-fs.ts says the same for our calls). The bundle's imports of `node:fs`
 * become `process.getBuiltinModule("node:fs")`, as a CommonJS package's `require` is: esbuild reads each imported
 * name off the module object where it is used, and no getter runs. (Doing the same for every built-in made no
 * difference to measure; `node:crypto`'s namespace loads WebCrypto, which was within the noise.)
 */
const fsWithoutNamespace = {
  name: "fs-without-namespace",
  setup(build) {
    build.onResolve({ filter: /^node:fs$/ }, (args) =>
      args.kind === "import-statement" ? { path: args.path, namespace: "builtin-object" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "builtin-object" }, (args) => ({
      loader: "js",
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
    }));
  },
};

/**
 * Ends a build that wrote no bundle: dist/ is left as it was (and is stale, so starts run the sources). With
 * --if-stale (npm start's prestart, warm-caches.js) a failed build must not stop the start: the sources run.
 */
function noBundle(message) {
  rmSync(staging, { recursive: true, force: true });
  process.stderr.write(
    `${message === undefined ? "" : `${message}\n`}bin/build.js: no bundle built; the gateway runs its sources\n`,
  );
  exitWithStartableSnapshot(args.has("--if-stale") ? 0 : 1);
}

let result;
try {
  result = await esbuild.build({
    // The start-up holds are an entry of their own: bin/llm-gateway.js applies them before loading main.js, and both
    // share one instance of the module that later releases them (a shared chunk).
    // bin/warm-caches.js loads the third.
    entryPoints: ["main.ts", "cli/start-up-holds.ts", "cli/warm-scoring-data.ts"].map((path) =>
      join(ROOT, "src", path),
    ),
    outdir: staging,
    // Flat: every file of dist/ is one folder below the root (src/source-paths.ts relies on it).
    entryNames: "[name]",
    splitting: true,
    format: "esm",
    // --no-minify keeps names readable in CPU profiles and heap snapshots (it starts slower and uses more memory).
    ...bundleOptions({
      root: ROOT,
      minify: !args.has("--no-minify"),
      standIns,
      first: [lazyBuiltins(["http2", "https"], /node_modules[\\/](fastify|undici)[\\/]/)],
      last: [fsWithoutNamespace],
    }),
    // CommonJS packages inside an ES module bundle call `require` for Node's built-in modules.
    banner: {
      js: 'import { createRequire as __gatewayRequire } from "node:module"; const require = __gatewayRequire(import.meta.url);',
    },
  });
} catch {
  // esbuild has printed what it could not build.
  noBundle(undefined);
}
// esbuild's `charset: "ascii"` leaves regular expressions as written: one character above ASCII doubles what V8 holds
// of that file's source (bin/bundle-plugins.js). Under --if-stale said and kept: that bundle still holds less than the
// sources a refused one falls back to, and a refused one would be built again, and refused, at every start.
const nonAscii = nonAsciiOutputs(result.metafile, ROOT);
if (nonAscii.length > 0) {
  const message = `bin/build.js: characters above ASCII in the bundle, escape them in the source: ${nonAscii.join(", ")}`;
  if (!args.has("--if-stale")) noBundle(message);
  process.stderr.write(`${message}\n`);
}
// The start-up snapshot, from the same sources (bin/build-snapshot.js); without it, a blob of Node alone, from which
// `npm start` runs dist/ as `node bin/llm-gateway.js` does. Its script's inputs (bin/snapshot-main.js, and a subpath of
// a package the bundle leaves out) are recorded with the bundle's: a change to any makes dist/ stale.
const isSnapshotSkipped = args.has("--no-snapshot");
const snapshot = isSnapshotSkipped
  ? { ...buildNodeOnlySnapshot(staging, ROOT), isBuilt: false, inputs: [] }
  : await buildFullSnapshot(esbuild, {
      dir: staging,
      root: ROOT,
      builtAtMs,
      minify: !args.has("--no-minify"),
      isNonAsciiKept: args.has("--if-stale"),
    });
if (isSnapshotSkipped) say("bin/build.js: --no-snapshot: no start-up snapshot; the gateway starts from dist/");
// dist/ is still written, with a blob of Node alone (npm start works, without the snapshot), but a build asked for
// (`npm run build`, the Dockerfile) fails at its end: a snapshot that stopped being built costs every start its
// CPU (bench/README.md section 36), and an exit status of 0 let nobody see it.
const isSnapshotFailed = !snapshot.isBuilt && !isSnapshotSkipped;
if (isSnapshotFailed) {
  process.stderr.write(`bin/build.js: no start-up snapshot: ${snapshot.message}\n`);
  buildNodeOnlySnapshot(staging, ROOT, true);
}
const sources = [];
const packages = {};
for (const input of new Set([...Object.keys(result.metafile.inputs), ...snapshot.inputs])) {
  // The stand-ins of lazyBuiltins (`lazy-builtin:http2`), the empty zod locales and `node:fs` are no files; nor the
  // snapshot's stand-ins, nor those of llhttp's WebAssembly (undici itself is recorded).
  if (/^(lazy-builtin|lazy-package|empty-module|builtin-object|snapshot-stand-in|llhttp-wasm):/.test(input)) continue;
  // Relative to ROOT (absWorkingDir), as bin/start-entry.js reads them back.
  const path = normalize(input);
  const packageDir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
  if (packageDir === undefined) {
    sources.push(path);
  } else if (packages[packageDir] === undefined) {
    packages[packageDir] = packageStamp(ROOT, packageDir);
  }
}
// Nor inputs, the scripts that write dist/: its stand-ins and plugins are theirs, so dist/ built by an older one (before
// a git pull that changed it) is stale as a bundle of older sources is, and the prestart build builds it again.
for (const script of ["bin/build.js", "bin/build-snapshot.js", "bin/bundle-plugins.js", "bin/lazy-packages.js"]) {
  if (!sources.includes(script)) sources.push(script);
}
// Not inputs (a stand-in requires its package at run time), yet a bundle whose stand-ins' packages moved or changed is
// stale: the first use of their feature would fail, or run another version than the one built against.
// One that cannot be placed (linked from outside any node_modules) fails the build as a stand-in's own package does.
let standInPackages;
try {
  standInPackages = standInPackageDirs(standIns, ROOT);
} catch (error) {
  noBundle(error.message);
}
for (const packageDir of standInPackages.found) {
  packages[packageDir] ??= packageStamp(ROOT, packageDir);
}
for (const packageDir of standInPackages.missing) {
  packages[packageDir] ??= { isMissing: true };
}
// The files only the lazily loaded modules use: their own (each a dynamic import's entry) and the chunks nothing
// else reaches. bin/warm-caches.js compiles them under the flags a request finds; any other file is compiled under
// a start's (V8 rejects code cached under other flags).
const outputs = result.metafile.outputs;
const isEntryOf = (file, source) => {
  // By the path's end: in a linked copy of the project (test/e2e/bundle.test.ts) esbuild names the real files.
  const entry = outputs[file]?.entryPoint === undefined ? "" : normalize(outputs[file].entryPoint);
  return entry === source || entry.endsWith(`/${source}`);
};
const isLazyEntry = (file) => LAZY_SOURCES.some((source) => isEntryOf(file, source));
const reached = (from) => {
  const seen = new Set();
  const next = [...from];
  while (next.length > 0) {
    const file = next.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { path } of outputs[file]?.imports ?? [])
      if (outputs[path] !== undefined && !isLazyEntry(path)) next.push(path);
  }
  return seen;
};
const lazyEntries = Object.keys(outputs).filter(isLazyEntry);
// A lazy module that is no entry of its own (no dynamic import of it left, or not one esbuild can follow) would load
// with a start: not a bundle to run.
const notEntries = LAZY_SOURCES.filter((source) => !lazyEntries.some((file) => isEntryOf(file, source)));
if (notEntries.length > 0) noBundle(`bin/build.js: lazy modules not found as entries of their own: ${notEntries}`);
// From every other entry (main.ts, the holds, warm-scoring-data, and the other dynamic imports: commands, Redis, ...).
const eager = reached(
  Object.keys(outputs).filter((file) => outputs[file].entryPoint !== undefined && !isLazyEntry(file)),
);
const lazyFiles = [...reached(lazyEntries), ...lazyEntries]
  .filter((file) => !eager.has(file))
  .map((file) => file.slice(file.lastIndexOf("/") + 1));
writeFileSync(
  join(staging, BUILD_MANIFEST),
  `${JSON.stringify({ format: MANIFEST_FORMAT, node: process.version, builtAtMs, sources, packages, assets: bundleAssets(staging), lazyFiles: [...new Set(lazyFiles)] }, null, 1)}\n`,
);
// The old bundle is moved aside, then the new one renamed into place: a second build finishing at the same time
// (two `npm start`s, a test run and a start) may place its bundle between the two renames, and a rename onto a
// folder that is not empty fails (ENOTEMPTY). That bundle was built from the same sources: keep it, drop ours.
const replaced = `${dist}.${process.pid}.old`;
try {
  renameSync(dist, replaced);
} catch (error) {
  if (error.code !== "ENOENT") throw error;
}
try {
  renameSync(staging, dist);
} catch (error) {
  if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
  rmSync(staging, { recursive: true, force: true });
}
rmSync(replaced, { recursive: true, force: true });
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
say(
  `dist/: ${Object.keys(result.metafile.outputs).filter((name) => name.endsWith(".js")).length} modules, ` +
    `${(bytes / 1024).toFixed(0)} KiB with source maps, from ${sources.length} source files and ` +
    `${Object.keys(packages).length} packages`,
);
if (isSnapshotFailed && args.has("--if-stale")) {
  // npm start's prestart (and bin/warm-caches.js): the start goes on, from dist/ without the snapshot.
  process.stderr.write(
    "bin/build.js: warning: the gateway starts from dist/ without a start-up snapshot (why: above)\n",
  );
} else if (isSnapshotFailed) {
  const line = "=".repeat(100);
  process.stderr.write(
    `${line}\nbin/build.js: BUILD FAILED: the start-up snapshot could not be built (why: above). dist/ was written ` +
      "with a blob of Node alone, from which `npm start` runs dist/ without the snapshot; fix the cause and build " +
      `again.\n${line}\n`,
  );
  process.exit(1);
}
