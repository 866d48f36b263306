// The start-up snapshot `npm start` and `npm run demo` start from (node --snapshot-blob dist/snapshot.blob): a heap
// in which every module `serve` and `demo` load is already evaluated, built by `node --build-snapshot` from one
// CommonJS file (a snapshot's entry may require only built-ins) that esbuild writes from bin/snapshot-main.js. A
// start then deserializes that heap instead of reading, compiling and evaluating dist/: ~90 ms less CPU until ready,
// the same idle RSS (bench/README.md section 36). bin/build.js builds it with dist/; `--if-stale` (npm's prestart)
// makes sure dist/snapshot.blob is one this Node can start, else one of Node alone, with no main function, from which
// Node runs bin/llm-gateway.js as before (Node exits on a missing blob or on one another Node built).
// What a module computes when it loads is frozen into the blob and shared by every start: bin/snapshot-guard.js ends
// the build on a load-time call to the clock, randomness, process.env, process.cwd(), os.hostname() or a timer, and
// guardReport below maps its stacks to the sources for the "no start-up snapshot" message.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleOptions, nonAsciiOutputs } from "./bundle-plugins.js";
import { REPORT_HEADING } from "./snapshot-guard.js";
import { READ_AT_BUILD, SNAPSHOT_BLOB, SNAPSHOT_RECORD, snapshotRecord } from "./start-entry.js";

const RECORD_FORMAT = 1;

/** The Node a blob is for: Node refuses another version's blob (exit 14), and another binary is not this one. */
function thisNode() {
  const binary = statSync(process.execPath);
  return {
    version: process.version,
    arch: process.arch,
    platform: process.platform,
    binary: { path: process.execPath, size: binary.size, mtimeMs: binary.mtimeMs },
  };
}

/** Whether dir/snapshot.blob is one this Node can start, built for the project at `root`. */
export function snapshotFits(dir, root) {
  const record = snapshotRecord(dir);
  const blob = statSync(join(dir, SNAPSHOT_BLOB), { throwIfNoEntry: false });
  return (
    blob !== undefined &&
    record?.format === RECORD_FORMAT &&
    // The blob the record was written for: Node crashes on a cut or emptied one (SIGSEGV, or an assertion reading it).
    record.blobBytes === blob.size &&
    record.root === root &&
    JSON.stringify(record.node) === JSON.stringify(thisNode()) &&
    // A full snapshot holds these as they were at its build (bin/snapshot-main.js runs the sources once one changed).
    (record.kind !== "full" ||
      READ_AT_BUILD.every(
        (path) => (statSync(join(root, path), { throwIfNoEntry: false })?.mtimeMs ?? 0) <= record.builtAtMs,
      ))
  );
}

/**
 * Removes the files of snapshot builds in `dir` whose process is gone: one interrupted (Ctrl-C at npm start's
 * prestart, which builds in dist/ itself when only the snapshot is missing) left its blob (~8 MB) for good.
 */
function removeLeftovers(dir) {
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(
      /^(?:snapshot\.blob|snapshot\.json|snapshot-config|snapshot-node-only)\.(\d+)\.(?:tmp|json|cjs)$/.exec(name)?.[1],
    );
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) rmSync(join(dir, name), { force: true });
  }
}

/** Whether process `pid` runs: a build's leftovers (here, and bin/build.js's staging folders) are named by its pid. */
export function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process of another user holds that pid; its files are not ours to judge.
    return error.code === "EPERM";
  }
}

/**
 * The load-time guard's report (bin/snapshot-guard.js) in a failed build's stderr, whole, with the positions in the
 * minified script (`snapshot.cjs:1:4242`) mapped to the sources through its source map (`src/x.ts:5:24`); else
 * undefined.
 */
function guardReport(stderr, dir, root) {
  const start = stderr.indexOf(REPORT_HEADING);
  if (start === -1) return undefined;
  const report = stderr.slice(start).trim();
  let map;
  try {
    map = new SourceMap(JSON.parse(readFileSync(join(dir, "snapshot.cjs.map"), "utf8")));
  } catch {
    return report;
  }
  const mapped = (position, line, column) => {
    const entry = map.findEntry(Number(line) - 1, Number(column) - 1);
    if (typeof entry?.originalSource !== "string") return position;
    const source = entry.originalSource.startsWith("file:")
      ? fileURLToPath(entry.originalSource)
      : resolve(dir, entry.originalSource);
    return `${relative(root, source)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  };
  return (
    report
      .split("\n")
      .map((line) => line.replace(/[^\s(]*snapshot\.cjs:(\d+):(\d+)/g, mapped))
      // Frames of no source (esbuild's module wrappers), of the guard itself, and of Node's snapshot builder.
      .filter(
        (line) => !/^\s+at .*(snapshot\.cjs:|bin\/snapshot-guard\.js:|node:internal\/main\/mksnapshot)/.test(line),
      )
      .join("\n")
  );
}

/**
 * Builds dir/snapshot.blob (and its record, with `more` in it) with `node --build-snapshot-config`; false when Node
 * failed.
 */
function buildBlob(dir, root, builder, kind, builtAtMs, more = {}) {
  removeLeftovers(dir);
  // Named by pid, as the blob: two prestart builds at once (two `npm start`s) each write and remove their own.
  const config = join(dir, `snapshot-config.${process.pid}.json`);
  // Node's code cache of its own built-ins left out: Node keeps the whole blob in memory, and with it (5 MB more)
  // the idle RSS was 4.3 MB higher than a start from dist/ (bench/README.md section 36).
  writeFileSync(config, JSON.stringify({ builder, withoutCodeCache: true }));
  const tmp = join(dir, `${SNAPSHOT_BLOB}.${process.pid}.tmp`);
  const built = spawnSync(process.execPath, ["--snapshot-blob", tmp, "--build-snapshot-config", config], {
    cwd: dir,
    // Node warns about built-ins it has not verified in snapshots (section 36 lists them).
    env: { ...process.env, NODE_NO_WARNINGS: "1", NODE_OPTIONS: "" },
    encoding: "utf8",
  });
  rmSync(config, { force: true });
  if (built.status !== 0) {
    rmSync(tmp, { force: true });
    const message =
      guardReport(`${built.stderr}`, dir, root) ?? `${built.stderr}`.trim().split("\n").slice(-3).join("\n");
    return { isBuilt: false, message };
  }
  const blobBytes = statSync(tmp).size;
  renameSync(tmp, join(dir, SNAPSHOT_BLOB));
  const record = join(dir, `${SNAPSHOT_RECORD}.${process.pid}.tmp`);
  writeFileSync(
    record,
    `${JSON.stringify({ format: RECORD_FORMAT, kind, root, node: thisNode(), builtAtMs, blobBytes, ...more }, null, 1)}\n`,
  );
  renameSync(record, join(dir, SNAPSHOT_RECORD));
  return { isBuilt: true, message: "" };
}

/**
 * A blob of Node alone (no main function): Node runs the script it is given, bin/llm-gateway.js, as without a blob.
 * For a start that cannot have the full one (no esbuild, a failed build, LLM_GATEWAY_BUNDLE=0).
 */
export function buildNodeOnlySnapshot(dir, root, isFailed = false) {
  const builder = join(dir, `snapshot-node-only.${process.pid}.cjs`);
  writeFileSync(builder, "// Node alone: bin/build-snapshot.js (buildNodeOnlySnapshot).\n");
  // `isFailed`: the full one could not be built (bin/build.js warns at each start, and does not try again until dist/
  // is stale); else it was not asked for (LLM_GATEWAY_BUNDLE=0, no esbuild), and the next prestart that can builds it.
  const result = buildBlob(dir, root, builder, "node-only", Date.now(), { isFailed });
  rmSync(builder, { force: true });
  return result;
}

/**
 * What `npm start` needs before it runs `node --snapshot-blob dist/snapshot.blob ...`: a blob this Node can start in
 * dist/. Left as it is when it fits; else Node alone (a full one is built with dist/, by bin/build.js).
 */
export function ensureStartableSnapshot(dist, root) {
  if (snapshotFits(dist, root)) return { isBuilt: false, message: "" };
  return buildNodeOnlySnapshot(dist, root);
}

/**
 * Built-in modules that cannot be in a snapshot, replaced by stand-ins that load the real module at first use.
 * `node:http` ends the build with "global handle not serialized: ... HTTPParser" (CheckGlobalAndEternalHandles
 * failed), `node:sqlite` with "Unknown external reference" (node::sqlite::StatementSync::Iterate); `http2`, `https`
 * and `tls` are stand-ins in the bundle already. Fastify, undici and our modules read some of their exports when they
 * load (`STATUS_CODES`, `IncomingMessage`, `maxHeaderSize`, `DatabaseSync` through esbuild's copy of a CommonJS
 * module's keys): plain data and numbers are copied from this Node at build time, functions and classes become stand-ins
 * that call the real one, and the list of keys is this Node's, so none of that loads the module.
 * A copied value the real module computes when read (a getter: `http.maxHeaderSize` reads `--max-http-header-size`,
 * which NODE_OPTIONS may set at run time, and undici takes its response header limit from it) is the copy only while
 * the snapshot is built; once deserialized, reading it loads the real module (serve has loaded it by then anyway).
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
      const computed = Object.keys(copied).filter(
        (key) => typeof Object.getOwnPropertyDescriptor(real, key)?.get === "function",
      );
      return {
        loader: "js",
        contents: `"use strict";
let real;
const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}));
const copied = ${JSON.stringify(copied)};
const computed = ${JSON.stringify(computed)};
const isCopy = (key) =>
  real === undefined && Object.hasOwn(copied, key) &&
  (!computed.includes(key) || require("node:v8").startupSnapshot.isBuildingSnapshot());
const keys = ${JSON.stringify(keys)};
for (const key of ${JSON.stringify(functions)}) {
  copied[key] = new Proxy(function standIn() {}, {
    get: (_, property) => load()[key][property],
    apply: (_, self, argumentList) => Reflect.apply(load()[key], self, argumentList),
    construct: (_, argumentList, newTarget) => Reflect.construct(load()[key], argumentList, newTarget),
  });
}
module.exports = new Proxy({}, {
  get: (_, key) => (isCopy(key) ? copied[key] : load()[key]),
  has: (_, key) => key in load(),
  ownKeys: () => (real === undefined ? keys : Reflect.ownKeys(load())),
  getOwnPropertyDescriptor: (_, key) => {
    if (isCopy(key)) {
      return { value: copied[key], writable: true, enumerable: true, configurable: true };
    }
    // Listed, not copied (an Agent): esbuild's interop reads only whether it is enumerable; a getter loads it when read.
    if (real === undefined && keys.includes(key)) {
      return { get: () => load()[key], enumerable: true, configurable: true };
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
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!text.includes("process.getBuiltinModule(")) return undefined;
      return { contents: text.replaceAll("process.getBuiltinModule(", "require("), loader: "ts" };
    });
  },
};

/**
 * Builds dir/snapshot.cjs (from bin/snapshot-main.js) and dir/snapshot.blob for the project at `root`; `inputs`:
 * the script's (esbuild's metafile, relative to `root`), for dist/build.json.
 * `builtAtMs`: taken before any input was read (bin/build.js), as dist/build.json's. `isNonAsciiKept`: a script with a
 * character above ASCII is said and built rather than refused (bin/build.js --if-stale).
 */
export async function buildFullSnapshot(esbuild, { dir, root, builtAtMs, minify = true, isNonAsciiKept = false }) {
  // The sources find the project's files from `import.meta.url` one folder below the root (src/source-paths.ts), and
  // the stand-ins of bin/lazy-packages.js require their packages relative to dist/: both see a file in dist/.
  const seenAs = join(root, "dist", "snapshot.cjs");
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [fileURLToPath(new URL("snapshot-main.js", import.meta.url))],
      outfile: join(dir, "snapshot.cjs"),
      format: "cjs",
      // A snapshot's script has no dynamic import callback ("A dynamic import callback was not specified"): `import()`
      // of an external package (prom-client at the first scrape) becomes a require.
      supported: { "dynamic-import": false },
      ...bundleOptions({
        root,
        minify,
        standIns: new Map(),
        first: [unsnapshottableBuiltins, getBuiltinAsRequire],
      }),
      define: { "import.meta.url": JSON.stringify(pathToFileURL(seenAs).href) },
      // The script's own `require` loads built-ins only; anything else (prom-client, ioredis, the stand-ins' packages)
      // is required through module.createRequire, once deserialized (at build time nothing may be: bin/bundle-plugins.js
      // onlyBareExternals).
      banner: {
        js: `var require = ((builtin) => { let user; const load = () => (user ??= builtin("node:module").createRequire(${JSON.stringify(seenAs)})); return Object.assign((id) => (builtin("node:module").isBuiltin(id) ? builtin(id) : load()(id)), { resolve: (id, options) => load().resolve(id, options) }); })(require);`,
      },
    });
  } catch {
    // esbuild has printed what it could not build.
    return { isBuilt: false, message: "esbuild could not build the snapshot's script", inputs: [] };
  }
  const nonAscii = nonAsciiOutputs(result.metafile, root);
  if (nonAscii.length > 0) {
    // Every start would hold the script's source as two-byte text (bin/bundle-plugins.js); `isNonAsciiKept` (npm
    // start's prestart) says so and builds it: a start from it is still sooner than from the bundle alone.
    const message = `characters above ASCII in the snapshot's script, escape them in the source: ${nonAscii.join(", ")}`;
    if (!isNonAsciiKept) return { isBuilt: false, message, inputs: [] };
    process.stderr.write(`bin/build.js: ${message}\n`);
  }
  const inputs = Object.keys(result.metafile.inputs);
  const built = buildBlob(dir, root, join(dir, "snapshot.cjs"), "full", builtAtMs);
  return { ...built, inputs: built.isBuilt ? inputs : [] };
}
