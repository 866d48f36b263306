// The bundle's stand-ins for semver, @fastify/proxy-addr and thread-stream (bin/lazy-packages.js): each requires its
// real package from node_modules at first use, by a path fixed at build time, so a build records those packages and a
// start takes the bundle as stale once one is moved, upgraded or removed; and each behaves as its package.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { bundleState } from "../../bin/start-entry.js";
import { projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT } from "../helpers/cli-process.ts";

const STAND_INS = ["@fastify/proxy-addr", "semver", "thread-stream"];

function build(root: string, args: readonly string[] = []): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(root, "bin", "build.js"), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
    encoding: "utf8",
  });
}

function builtProject(t: TestContext): string {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const built = build(root);
  assert.equal(built.status, 0, built.stderr);
  return root;
}

function versionOf(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string }).version;
}

/**
 * Replaces the project's node_modules (a link to this checkout's) by a folder of links to the same packages, less
 * `left` (names, scoped ones included): a rearranged node_modules, changed without touching the shared one.
 */
function relinkNodeModules(root: string, left: readonly string[]): void {
  const target = join(root, "node_modules");
  // The first time a link to the shared node_modules: removed as a link, never through it.
  if (lstatSync(target).isSymbolicLink()) unlinkSync(target);
  else rmSync(target, { recursive: true });
  const linkEach = (from: string, to: string, prefix: string) => {
    mkdirSync(to);
    for (const entry of readdirSync(from)) {
      const name = `${prefix}${entry}`;
      if (left.includes(name)) continue;
      if (entry.startsWith("@") && left.some((other) => other.startsWith(`${name}/`))) {
        linkEach(join(from, entry), join(to, entry), `${name}/`);
      } else {
        symlinkSync(join(from, entry), join(to, entry));
      }
    }
  };
  linkEach(join(REPO_ROOT, "node_modules"), target, "");
}

test("a stand-in's package moved, upgraded or removed after the build makes the bundle stale; --if-stale rebuilds", (t) => {
  const root = builtProject(t);
  const manifest = JSON.parse(readFileSync(join(root, "dist", "build.json"), "utf8")) as {
    packages: Record<string, { version?: unknown }>;
  };
  // Each stand-in's package and those it requires (proxy-addr's ipaddr.js), by the path the stand-in requires.
  for (const name of [...STAND_INS, "ipaddr.js"]) {
    assert.equal(
      manifest.packages[`node_modules/${name}`]?.version,
      versionOf(join(REPO_ROOT, "node_modules", name)),
      `${name} is not recorded`,
    );
  }
  assert.equal(build(root, ["--if-stale"]).stdout, "dist/ is up to date\n");

  // Removed (or moved elsewhere: the stand-in's fixed path no longer finds it).
  relinkNodeModules(root, ["semver"]);
  assert.deepEqual(bundleState(root, {}), {
    isFresh: false,
    reason: `node_modules/semver is not ${versionOf(join(REPO_ROOT, "node_modules", "semver"))} any more`,
    restamp: [],
  });
  // Upgraded: a package the stand-in's package requires, at another version.
  relinkNodeModules(root, ["@fastify/proxy-addr"]);
  mkdirSync(join(root, "node_modules", "@fastify", "proxy-addr"));
  writeFileSync(
    join(root, "node_modules", "@fastify", "proxy-addr", "package.json"),
    JSON.stringify({ name: "@fastify/proxy-addr", version: "99.0.0" }),
  );
  assert.match(bundleState(root, {}).reason, /^node_modules\/@fastify\/proxy-addr is not \d+\.\d+\.\d+ any more$/);
  const rebuilt = build(root, ["--if-stale"]);
  assert.equal(rebuilt.status, 0, rebuilt.stderr);
  assert.match(rebuilt.stdout, /^dist\/: \d+ modules/m);
  assert.equal(bundleState(root, {}).isFresh, true);
});
