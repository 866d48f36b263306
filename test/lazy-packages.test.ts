// Where a bundle stand-in finds its real package (bin/lazy-packages.js): the path it requires, relative to dist/, and
// the package folder dist/build.json records for it.
import assert from "node:assert/strict";
import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { standInPackageDirs, standInPath } from "../bin/lazy-packages.js";
import { bundleState, MANIFEST_FORMAT, packageStamp } from "../bin/start-entry.js";
import { tempDir } from "./helpers/cli-process.ts";

test("a package in the project's node_modules is required through it, wherever the project is checked out", () => {
  assert.deepEqual(
    standInPath("/srv/app/node_modules/semver/index.js", "semver", "/srv/app/node_modules", "/srv/app/dist"),
    {
      fromDist: "../node_modules/semver/index.js",
      packageDir: "node_modules/semver",
    },
  );
  // Checked out under a folder named node_modules: the path starts at the project's own node_modules, not the first.
  assert.deepEqual(
    standInPath(
      "/home/me/node_modules/gateway/node_modules/@fastify/proxy-addr/index.js",
      "@fastify/proxy-addr",
      "/home/me/node_modules/gateway/node_modules",
      "/home/me/node_modules/gateway/dist",
    ),
    { fromDist: "../node_modules/@fastify/proxy-addr/index.js", packageDir: "node_modules/@fastify/proxy-addr" },
  );
});

test("a nested install or a pnpm store keeps its place inside node_modules", () => {
  assert.deepEqual(
    standInPath(
      "/srv/node_modules/app/node_modules/fastify/node_modules/semver/index.js",
      "semver",
      "/srv/node_modules/app/node_modules",
      "/srv/node_modules/app/dist",
    ),
    {
      fromDist: "../node_modules/fastify/node_modules/semver/index.js",
      packageDir: "node_modules/fastify/node_modules/semver",
    },
  );
  assert.deepEqual(
    standInPath(
      "/app/node_modules/.pnpm/thread-stream@5.0.0/node_modules/thread-stream/index.js",
      "thread-stream",
      "/app/node_modules",
      "/app/dist",
    ),
    {
      fromDist: "../node_modules/.pnpm/thread-stream@5.0.0/node_modules/thread-stream/index.js",
      packageDir: "node_modules/.pnpm/thread-stream@5.0.0/node_modules/thread-stream",
    },
  );
});

test("a package outside the project's node_modules (a parent folder's) is reached relative to dist/", () => {
  assert.deepEqual(
    standInPath("/work/node_modules/semver/index.js", "semver", "/work/app/node_modules", "/work/app/dist"),
    { fromDist: "../../node_modules/semver/index.js", packageDir: "../node_modules/semver" },
  );
});

test("a stand-in's dependency that is installed but has no main Node can require (exports for import only, types only) is recorded as installed, not missing", (t) => {
  const root = tempDir(t);
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const dependencies = { "esm-only": "1", "@types/thing": "1", absent: "1" };
  write("node_modules/host/package.json", JSON.stringify({ name: "host", version: "1.0.0", dependencies }));
  write("node_modules/host/index.js", "module.exports = 1;\n");
  write("node_modules/esm-only/package.json", '{"name":"esm-only","version":"2.0.0","exports":{"import":"./a.mjs"}}');
  write("node_modules/esm-only/a.mjs", "export default 1;\n");
  write("node_modules/@types/thing/package.json", '{"name":"@types/thing","version":"3.0.0","types":"index.d.ts"}');
  write("node_modules/@types/thing/index.d.ts", "export {};\n");

  const { found, missing } = standInPackageDirs(
    new Map([["node_modules/host", realpathSync(join(root, "node_modules/host"))]]),
    root,
  );
  assert.deepEqual(found.sort(), ["node_modules/@types/thing", "node_modules/esm-only", "node_modules/host"]);
  assert.deepEqual(missing.sort(), ["node_modules/absent", "node_modules/host/node_modules/absent"]);
  // As bin/build.js records them: the bundle is fresh (an installed package recorded as missing made every start
  // rebuild it and run the sources).
  const packages: Record<string, unknown> = {};
  for (const packageDir of found) packages[packageDir] = packageStamp(root, packageDir);
  for (const packageDir of missing) packages[packageDir] = { isMissing: true };
  write(
    "dist/build.json",
    JSON.stringify({ format: MANIFEST_FORMAT, node: process.version, builtAtMs: Date.now(), sources: [], packages }),
  );
  assert.equal(bundleState(root, {}).isFresh, true, bundleState(root, {}).reason);
});
