// Which code a start runs: the bundle bin/build.js wrote to dist/ when it was built from the files as they are
// now, else the TypeScript sources (src/main.ts), so an edited source is never shadowed by an older bundle.
// "As they are now": every source file the bundle holds is no newer than the build; every bundled package, and
// every package a stand-in requires at first use (bin/lazy-packages.js) with those it requires, has the version it
// had then, and those of them not installed then still are not (an `npm install` that changes one makes the bundle
// stale; files edited inside node_modules by hand are not noticed); and the Node running it is the one that built it.
// A package whose package.json has the size and time recorded for it is taken as unchanged without reading it;
// another install of the same versions (a container's runtime stage) is read once and recorded again by
// bin/warm-caches.js (restampBundle). One stat per bundled source and package: about 400 (365 + 33 today), 2-5 ms
// on a quiet VM, 8-15 ms on a loaded one.
// LLM_GATEWAY_BUNDLE=0 starts from the sources whatever dist/ holds.
import { join } from "node:path";

// Not an ES import of node:fs: its namespace would load fs/promises and readline into every start (bin/build.js).
const { readFileSync, renameSync, statSync, writeFileSync } = process.getBuiltinModule("node:fs");

export const DIST_DIR = "dist";
export const BUILD_MANIFEST = "build.json";
export const MANIFEST_FORMAT = 5;
/**
 * Modules a start does not load: imported at the first request to their routes (src/server/lazy-routes.ts; the
 * pipeline's per-request modules at the first request to a forwarded door, src/server/forwarding-route.ts). Their
 * files of dist/ are listed in the manifest (`lazyFiles`): bin/warm-caches.js compiles them under the flags a
 * request finds, not those of a start, and test/e2e/bundle.test.ts checks that an idle gateway has not loaded them.
 */
export const LAZY_SOURCES = [
  "src/server/protocol-routes.ts",
  "src/server/batch-routes.ts",
  "src/pipeline/handle-request.ts",
];

/** The start-up snapshot in dist/ (bin/build-snapshot.js) and its record (kind, root, Node, builtAtMs). */
export const SNAPSHOT_BLOB = "snapshot.blob";
export const SNAPSHOT_RECORD = "snapshot.json";
/**
 * What a snapshot reads when it is built, and so holds as it was then: the dashboard page (read when
 * src/server/observability-routes.ts loads). bin/snapshot-main.js runs the sources once one is newer than the build.
 */
export const READ_AT_BUILD = ["src/server/dashboard.html"];

/** dir/snapshot.json, or undefined. */
export function snapshotRecord(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, SNAPSHOT_RECORD), "utf8"));
  } catch {
    return undefined;
  }
}

/** What bin/build.js records of a bundled package: its version, and its package.json's size and time. */
export function packageStamp(root, packageDir) {
  const path = join(root, packageDir, "package.json");
  const stat = statSync(path);
  return { version: JSON.parse(readFileSync(path, "utf8")).version, size: stat.size, mtimeMs: stat.mtimeMs };
}

function statOrUndefined(path) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** dist/'s manifest as bin/build.js wrote it (read by bin/warm-caches.js for its `lazyFiles`). */
export function bundleManifest(root) {
  return readManifest(root) ?? { lazyFiles: [] };
}

function readManifest(root) {
  try {
    return JSON.parse(readFileSync(join(root, DIST_DIR, BUILD_MANIFEST), "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * @param {string} root the project root
 * @param {Record<string, string | undefined>} env
 * @returns {{ isFresh: boolean, reason: string, restamp: string[] }} restamp: packages of the recorded versions
 *   whose package.json has another size or time (another install of them)
 */
export function bundleState(root, env) {
  const restamp = [];
  if (env.LLM_GATEWAY_BUNDLE === "0") return { isFresh: false, reason: "LLM_GATEWAY_BUNDLE=0", restamp };
  const manifest = readManifest(root);
  if (manifest === undefined) return { isFresh: false, reason: "no bundle (npm run build writes dist/)", restamp };
  if (
    manifest?.format !== MANIFEST_FORMAT ||
    !Array.isArray(manifest.sources) ||
    typeof manifest.builtAtMs !== "number" ||
    typeof manifest.packages !== "object" ||
    manifest.packages === null
  ) {
    return { isFresh: false, reason: "dist/build.json is not one this version writes", restamp };
  }
  // The bundle holds values read from the Node that built it (bin/build.js: lazyBuiltins).
  if (manifest.node !== process.version) {
    return { isFresh: false, reason: `built by Node ${manifest.node}, this is ${process.version}`, restamp };
  }
  // Plain concatenation and no options object: this loop runs once per start, cold, and path.join and the
  // options cost more than the stat calls themselves there (4 against 2.6 ms for 178 files).
  const base = root.endsWith("/") ? root : `${root}/`;
  for (const source of manifest.sources) {
    const stat = statOrUndefined(base + source);
    if (stat === undefined) return { isFresh: false, reason: `${source} is gone`, restamp };
    if (stat.mtimeMs > manifest.builtAtMs)
      return { isFresh: false, reason: `${source} changed after the build`, restamp };
  }
  for (const [name, size] of Object.entries(manifest.assets ?? {})) {
    if (statOrUndefined(`${base}${DIST_DIR}/${name}`)?.size !== size) {
      return { isFresh: false, reason: `${DIST_DIR}/${name} is gone or not the one built`, restamp };
    }
  }
  for (const [packageDir, recorded] of Object.entries(manifest.packages)) {
    const stat = statOrUndefined(`${base}${packageDir}/package.json`);
    // Not installed at build time (bin/lazy-packages.js): installed since, a stand-in's package now requires it.
    if (recorded?.isMissing === true) {
      if (stat === undefined) continue;
      return { isFresh: false, reason: `${packageDir} was installed after the build`, restamp };
    }
    if (stat !== undefined && stat.size === recorded?.size && stat.mtimeMs === recorded?.mtimeMs) continue;
    let current;
    try {
      current = packageStamp(root, packageDir).version;
    } catch {
      current = undefined;
    }
    if (current !== recorded?.version) {
      return { isFresh: false, reason: `${packageDir} is not ${recorded?.version} any more`, restamp };
    }
    restamp.push(packageDir);
  }
  return { isFresh: true, reason: "built from the current sources", restamp };
}

/** Records the current size and time of the given packages' package.json (same versions, another install). */
export function restampBundle(root, packageDirs) {
  const manifest = readManifest(root);
  if (manifest === undefined || packageDirs.length === 0) return;
  for (const packageDir of packageDirs) manifest.packages[packageDir] = packageStamp(root, packageDir);
  const path = join(root, DIST_DIR, BUILD_MANIFEST);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(manifest, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}
