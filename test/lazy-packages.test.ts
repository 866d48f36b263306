// Where a bundle stand-in finds its real package (bin/lazy-packages.js): the path it requires, relative to dist/, and
// the package folder dist/build.json records for it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { standInPath } from "../bin/lazy-packages.js";

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
