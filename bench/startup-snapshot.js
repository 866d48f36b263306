// Builds the experiment of bench/README.md section 36: a user-land start-up snapshot of `serve` (Node's
// `--build-snapshot`), so that a start deserializes a heap in which every module `serve` loads is already evaluated,
// instead of reading, compiling and evaluating the bundle. Not how `npm start` runs (section 36 says why not yet).
//
// Usage: node bench/startup-snapshot.js [--with-code-cache] [--no-minify] OUT_DIR
//   writes OUT_DIR/snapshot.cjs (one CommonJS file: a snapshot entry may require only built-ins) and
//   OUT_DIR/snapshot.blob; start it as bench/footprint-ab.ts does with a variant `OUT_DIR/snapshot.blob`, or by hand:
//   node --snapshot-blob OUT_DIR/snapshot.blob bin/llm-gateway.js serve --config FILE
// --with-code-cache keeps Node's code cache of its own built-in modules in the blob (+5 MB, all of it resident).
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import {
  ASSERT_IMPORTERS,
  EXTERNAL_PACKAGES,
  LAZY_PACKAGE_IMPORTERS,
  LAZY_PACKAGE_NAMES,
  lazyAssert,
  withoutZodLocales,
} from "../bin/bundle-plugins.js";
import { lazyPackages } from "../bin/lazy-packages.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { "with-code-cache": { type: "boolean", default: false }, "no-minify": { type: "boolean", default: false } },
});
if (positionals.length !== 1) {
  process.stderr.write("usage: node bench/startup-snapshot.js [--with-code-cache] [--no-minify] OUT_DIR\n");
  process.exit(2);
}
const out = resolve(positionals[0]);
mkdirSync(out, { recursive: true });
// The sources find the project's files from `import.meta.url` one folder below the root (src/source-paths.ts), and
// the stand-ins of bin/lazy-packages.js require their packages relative to dist/: both see a file in dist/.
const seenAs = join(ROOT, "dist", "snapshot.cjs");

/**
 * Built-in modules that cannot be in a snapshot, replaced by stand-ins that load the real module at first use.
 * `node:http` ends the build with "global handle not serialized: ... HTTPParser" (CheckGlobalAndEternalHandles
 * failed), `node:sqlite` with "Unknown external reference" (node::sqlite::StatementSync::Iterate); `http2`, `https`
 * and `tls` are stand-ins in the bundle already. Fastify, undici and our modules read some of their exports when they
 * load (`STATUS_CODES`, `IncomingMessage`, `maxHeaderSize`, `DatabaseSync` through esbuild's copy of a CommonJS
 * module's keys): plain data and numbers are copied from this Node at build time, functions and classes become stand-ins
 * that call the real one, and the list of keys is this Node's, so none of that loads the module.
 */
const UNSNAPSHOTTABLE = ["http", "sqlite", "http2", "https", "tls"];
/** Plain data copied (not `tls.rootCertificates`, 184 KB, nor an Agent, which must be the real one). */
const COPIED = ["constants", "STATUS_CODES", "METHODS"];
const unsnapshottableBuiltins = {
  name: "unsnapshottable-builtins",
  setup(build) {
    const wanted = new RegExp(`^(node:)?(${UNSNAPSHOTTABLE.join("|")})$`);
    build.onResolve({ filter: wanted }, (args) =>
      args.namespace === "snapshot-stand-in"
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ""), namespace: "snapshot-stand-in" },
    );
    build.onLoad({ filter: /.*/, namespace: "snapshot-stand-in" }, (args) => {
      const real = process.getBuiltinModule(`node:${args.path}`);
      const keys = Object.keys(real);
      const copied = Object.fromEntries(
        keys.filter((key) => COPIED.includes(key) || typeof real[key] === "number").map((key) => [key, real[key]]),
      );
      const functions = keys.filter((key) => typeof real[key] === "function");
      return {
        loader: "js",
        contents: `"use strict";
let real;
const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}));
const copied = ${JSON.stringify(copied)};
for (const key of ${JSON.stringify(functions)}) {
  copied[key] = new Proxy(function standIn() {}, {
    get: (_, property) => load()[key][property],
    apply: (_, self, argumentList) => Reflect.apply(load()[key], self, argumentList),
    construct: (_, argumentList, newTarget) => Reflect.construct(load()[key], argumentList, newTarget),
  });
}
module.exports = new Proxy({}, {
  get: (_, key) => (real === undefined && Object.hasOwn(copied, key) ? copied[key] : load()[key]),
  has: (_, key) => key in load(),
  ownKeys: () => (real === undefined ? ${JSON.stringify(keys)} : Reflect.ownKeys(load())),
  getOwnPropertyDescriptor: (_, key) => {
    if (real === undefined && Object.hasOwn(copied, key)) {
      return { value: copied[key], writable: true, enumerable: true, configurable: true };
    }
    const descriptor = Object.getOwnPropertyDescriptor(load(), key);
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
});
`,
      };
    });
  },
};

/**
 * `process.getBuiltinModule(...)` (src/server/error-handler.ts reads `node:http`'s STATUS_CODES when it loads) as a
 * `require`, so that unsnapshottableBuiltins sees it.
 */
const getBuiltinAsRequire = {
  name: "get-builtin-as-require",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const { readFile } = await import("node:fs/promises");
      const text = await readFile(args.path, "utf8");
      if (!text.includes("process.getBuiltinModule(")) return undefined;
      return { contents: text.replaceAll("process.getBuiltinModule(", "require("), loader: "ts" };
    });
  },
};

/**
 * fast-json-stringify stays out, but not `fast-json-stringify/lib/serializer`, which Fastify's error serializer
 * requires when it loads (esbuild's `external` takes a package's subpaths too): run at build time from node_modules,
 * it is user-land CommonJS, after which Node refuses to start from the snapshot (ERR_INTERNAL_ASSERTION,
 * `!hasStartedUserCJSExecution()` in initializeModuleLoaders).
 */
const onlyBareExternals = {
  name: "only-bare-externals",
  setup(build) {
    build.onResolve({ filter: /^fast-json-stringify$/ }, (args) => ({ path: args.path, external: true }));
  },
};

const standIns = new Map();
const result = await esbuild.build({
  entryPoints: [join(ROOT, "bench", "snapshot-entry.ts")],
  outfile: join(out, "snapshot.cjs"),
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node24",
  // A snapshot's script has no dynamic import callback ("A dynamic import callback was not specified"): `import()`
  // of an external package (prom-client at the first scrape) becomes a require.
  supported: { "dynamic-import": false },
  minify: !values["no-minify"],
  sourcemap: "linked",
  metafile: true,
  absWorkingDir: ROOT,
  logLevel: "warning",
  charset: "ascii",
  legalComments: "external",
  define: { "import.meta.url": JSON.stringify(pathToFileURL(seenAs).href) },
  external: EXTERNAL_PACKAGES.filter((name) => name !== "fast-json-stringify"),
  plugins: [
    unsnapshottableBuiltins,
    getBuiltinAsRequire,
    onlyBareExternals,
    lazyAssert(ASSERT_IMPORTERS),
    lazyPackages(LAZY_PACKAGE_NAMES, LAZY_PACKAGE_IMPORTERS, ROOT, standIns),
    withoutZodLocales,
  ],
  // The script's own `require` loads built-ins only; anything else (prom-client, ioredis, the stand-ins' packages) is
  // required through module.createRequire, once deserialized (at build time nothing may be: see onlyBareExternals).
  banner: {
    js: `var require = ((builtin) => { let user; const load = () => (user ??= builtin("node:module").createRequire(${JSON.stringify(seenAs)})); return Object.assign((id) => (builtin("node:module").isBuiltin(id) ? builtin(id) : load()(id)), { resolve: (id, options) => load().resolve(id, options) }); })(require);`,
  },
});
const blob = join(out, "snapshot.blob");
const config = join(out, "snapshot-config.json");
writeFileSync(
  config,
  JSON.stringify({ builder: join(out, "snapshot.cjs"), withoutCodeCache: !values["with-code-cache"] }),
);
const built = spawnSync(process.execPath, ["--snapshot-blob", blob, "--build-snapshot-config", config], {
  cwd: out,
  env: { ...process.env, NODE_NO_WARNINGS: "1" },
  encoding: "utf8",
});
if (built.status !== 0) {
  process.stderr.write(`${built.stderr}\nbench/startup-snapshot.js: node --build-snapshot failed (${built.status})\n`);
  process.exit(1);
}
const bytes = Object.values(result.metafile.outputs).find((output) => output.entryPoint !== undefined)?.bytes ?? 0;
process.stdout.write(
  `${blob}: ${(statSync(blob).size / 1e6).toFixed(1)} MB (script ${(bytes / 1e6).toFixed(2)} MB, code cache ${values["with-code-cache"] ? "kept" : "left out"})\n`,
);
