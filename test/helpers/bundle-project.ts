// A copy of the project that bin/build.js can write its own dist/ in (test/e2e/bundle*.test.ts).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { REPO_ROOT, tempDir } from "./cli-process.ts";

/**
 * A copy of the project under a temporary folder: bin/*.js and *.cjs copied (a start resolves the root from its own
 * file), `linked` entries symlinked to this checkout's.
 */
export function projectCopy(t: TestContext, name: string, linked: readonly string[]): string {
  const root = join(tempDir(t), name);
  mkdirSync(join(root, "bin"), { recursive: true });
  for (const file of readdirSync(join(REPO_ROOT, "bin"))) {
    if (/\.c?js$/.test(file)) copyFileSync(join(REPO_ROOT, "bin", file), join(root, "bin", file));
  }
  for (const entry of linked) symlinkSync(join(REPO_ROOT, entry), join(root, entry));
  return root;
}

/** Runs `node bin/build.js ...args` in the copy, with a minimal environment. */
export function buildBundle(
  root: string,
  args: readonly string[] = [],
): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(root, "bin", "build.js"), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
    encoding: "utf8",
  });
}
