// The bundle's stand-ins for packages a dependency requires when it loads but calls only for features the gateway
// does not use (bin/build.js, `lazyPackages`), and where each stand-in finds its real package.
import { readFileSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, relative, sep } from "node:path";

/**
 * The path a stand-in requires its package's `file` by, relative to dist/, and that package's folder relative to the
 * project root (as dist/build.json records packages). `file` is a real path (require.resolve follows links);
 * `nodeModules` is the real path of the project's node_modules, which may be a link (a linked copy of the project, as
 * test/e2e/bundle.test.ts builds): a file inside it keeps its place there (a nested install, a pnpm store), so the
 * bundle finds it through the node_modules of the folder it is started in, wherever that is checked out (under a
 * folder named node_modules too). A file outside it (a parent folder's node_modules) is reached relative to `dist`.
 * `name` is the package's name: its folder ends at the last `node_modules/<name>/` of the path.
 * @returns {{ fromDist: string, packageDir: string }}
 */
export function standInPath(file, name, nodeModules, dist) {
  const inside = relative(nodeModules, file);
  const isInside = inside !== "" && !inside.startsWith(`..${sep}`) && !isAbsolute(inside);
  const fromDist = (isInside ? ["..", "node_modules", ...inside.split(sep)] : relative(dist, file).split(sep)).join(
    "/",
  );
  const marker = `node_modules/${name}/`;
  const end = fromDist.lastIndexOf(marker);
  if (end < 0 || !fromDist.startsWith("../")) throw new Error(`bin/build.js: ${name} resolved to ${file}`);
  return { fromDist, packageDir: fromDist.slice("../".length, end + marker.length - 1) };
}

/**
 * The project's node_modules and dist/ as real paths, as require.resolve gives a package's files. A project may have
 * no node_modules of its own (npm workspaces hoist every package to a parent folder's): then nothing is inside it.
 */
function realFolders(root) {
  const realRoot = realpathSync(root);
  let nodeModules;
  try {
    nodeModules = realpathSync(join(root, "node_modules"));
  } catch {
    nodeModules = join(realRoot, "node_modules");
  }
  return { nodeModules, dist: join(realRoot, "dist") };
}

/** The real folder of package `name`, from a file of it. */
function packageFolder(file, name) {
  const marker = `${sep}node_modules${sep}${name.split("/").join(sep)}${sep}`;
  return file.slice(0, file.lastIndexOf(marker) + marker.length - 1);
}

/**
 * The folders (relative to the project root) of the stand-ins' packages and of the packages they require, found from
 * the stand-ins' real folders: dist/build.json records them with the bundled packages, so a start takes the bundle as
 * stale once one of them is moved, upgraded or removed (the stand-in's fixed path, or the package it then requires,
 * would fail the first use of the feature). A few stat calls per start.
 * `missing`: where a dependency not installed at build time would be found, in the project's node_modules (the folders
 * Node looks in, from the requiring package's up): recorded as missing, so that installing it makes the bundle stale
 * and the next build records it (else its later removal or upgrade would go unnoticed).
 * @param {Map<string, string>} standIns packageDir -> the package's real folder
 * @returns {{ found: string[], missing: string[] }}
 */
export function standInPackageDirs(standIns, root) {
  const { nodeModules, dist } = realFolders(root);
  const found = new Map(standIns);
  const missing = new Set();
  const next = [...standIns.values()];
  while (next.length > 0) {
    const realDir = next.pop();
    const { dependencies = {} } = JSON.parse(readFileSync(join(realDir, "package.json"), "utf8"));
    const require = createRequire(join(realDir, "package.json"));
    for (const name of Object.keys(dependencies)) {
      const lookupPaths = require.resolve.paths(name) ?? [];
      let file;
      try {
        file = require.resolve(name);
      } catch {
        // Installed with no main to require (exports for `import` only, types only): its package.json stands for it.
        file = installedPackageJson(lookupPaths, name);
      }
      if (file === undefined) {
        // Not installed: the package does without it (an optional dependency), or its own use fails.
        for (const packageDir of placesInProject(lookupPaths, name, nodeModules)) missing.add(packageDir);
        continue;
      }
      const { packageDir } = standInPath(file, name, nodeModules, dist);
      if (found.has(packageDir)) continue;
      found.set(packageDir, packageFolder(file, name));
      next.push(packageFolder(file, name));
    }
  }
  return { found: [...found.keys()], missing: [...missing].filter((packageDir) => !found.has(packageDir)) };
}

/** The real path of the first package.json of package `name` in `lookupPaths` (node_modules folders), if any. */
function installedPackageJson(lookupPaths, name) {
  for (const lookupPath of lookupPaths) {
    try {
      return realpathSync(join(lookupPath, name, "package.json"));
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

/**
 * Package `name`'s folders, relative to the project root, in those of `lookupPaths` (node_modules folders) that are the
 * project's node_modules or inside it. A parent folder's node_modules is not the project's to record.
 */
function placesInProject(lookupPaths, name, nodeModules) {
  const places = [];
  for (const lookupPath of lookupPaths) {
    const inside = relative(nodeModules, lookupPath);
    if (inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) continue;
    places.push(["node_modules", ...(inside === "" ? [] : inside.split(sep)), name].join("/"));
  }
  return places;
}

/**
 * Stand-ins for `names` when required from `importers`: each requires the real package from node_modules (left out
 * of the bundle) at its first use, as a namespace (a property read) or as the value itself (called, or constructed
 * with `new`). `standIns` receives each one's package folder (relative to `root`) and real folder.
 * @param {Map<string, string>} standIns
 */
export function lazyPackages(names, importers, root, standIns) {
  const { nodeModules, dist } = realFolders(root);
  const wanted = new RegExp(`^(${names.map((name) => name.replaceAll(".", "\\.")).join("|")})$`);
  const require = createRequire(import.meta.url);
  return {
    name: "lazy-packages",
    setup(build) {
      build.onResolve({ filter: wanted }, (args) => {
        if (!importers.test(args.importer)) return undefined;
        const file = require.resolve(args.path, { paths: [args.resolveDir] });
        const { fromDist, packageDir } = standInPath(file, args.path, nodeModules, dist);
        standIns.set(packageDir, packageFolder(file, args.path));
        return { path: fromDist, namespace: "lazy-package" };
      });
      // The stand-in's own require of the real file: left to Node, relative to the chunk in dist/.
      build.onResolve({ filter: /.*/, namespace: "lazy-package" }, (args) => ({ path: args.path, external: true }));
      build.onLoad({ filter: /.*/, namespace: "lazy-package" }, (args) => ({
        loader: "js",
        contents: `"use strict";
let real;
const load = () => (real ??= require(${JSON.stringify(args.path)}));
const standIn = new Proxy(function lazyPackage() {}, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  // Writes, deletes and key listings go to the package too (a write kept on the stand-in would never be read).
  set: (_, key, value) => Reflect.set(load(), key, value),
  deleteProperty: (_, key) => Reflect.deleteProperty(load(), key),
  // The stand-in function's own non-configurable \`prototype\` must stay listed: a proxy may not hide it.
  ownKeys: (target) => [
    ...new Set([...Reflect.ownKeys(load()), ...Reflect.ownKeys(target).filter((key) => !isConfigurable(target, key))]),
  ],
  getOwnPropertyDescriptor: (target, key) => {
    if (!isConfigurable(target, key)) return Reflect.getOwnPropertyDescriptor(target, key);
    const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
  apply: (_, self, args) => Reflect.apply(load(), self, args),
  // new.target is kept: a class extending the stand-in (class extends require(...)) constructs through here, and
  // its instances must get its prototype (its methods), not the package's.
  construct: (_, args, newTarget) => Reflect.construct(load(), args, newTarget === standIn ? load() : newTarget),
});
function isConfigurable(target, key) {
  return Reflect.getOwnPropertyDescriptor(target, key)?.configurable ?? true;
}
module.exports = standIn;
`,
      }));
    },
  };
}
