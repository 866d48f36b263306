// bin/build.js writes dist/ through a staging folder: builds that were interrupted must not leave theirs behind for
// good, and two builds finishing together (two `npm start`s) must both succeed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bundleState } from "../../bin/start-entry.js";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";

/** A pid no process holds now. */
function deadPid(): number {
  for (let pid = 4_194_000; pid > 1; pid--) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return pid;
    }
  }
  throw new Error("no free pid");
}

function leftovers(root: string): string[] {
  return readdirSync(root)
    .filter((name) => name.startsWith("dist."))
    .sort();
}

function buildAsync(root: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "bin", "build.js"), "--quiet"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (status) => resolve({ status, stderr }));
  });
}

test("an interrupted build's staging folder is removed by the next build; a running build's is kept", (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json", "src"]);
  const dead = deadPid();
  for (const name of [`dist.${dead}.tmp`, `dist.${dead}.old`, `dist.${process.pid}.tmp`]) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, "main.js"), "// a half-written bundle\n");
  }
  const build = buildBundle(root, ["--quiet"]);
  assert.equal(build.status, 0, build.stderr);
  assert.deepEqual(leftovers(root), [`dist.${process.pid}.tmp`]);
  assert.equal(bundleState(root, {}).isFresh, true);
});

test("two builds at once: both succeed, one bundle in place, nothing left beside it", async (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json", "src"]);
  const results = await Promise.all([buildAsync(root), buildAsync(root)]);
  for (const result of results) assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(leftovers(root), []);
  assert.equal(bundleState(root, {}).isFresh, true);
});
