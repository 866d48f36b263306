// Which code a start runs: the bundle bin/build.js wrote to dist/ when it was built from the files as they are
// now, else the TypeScript sources (src/main.ts), so an edited source is never shadowed by an older bundle.
// "As they are now": every source file the bundle holds is no newer than the build, and every bundled package has
// the version it had then (an `npm install` that changes one makes the bundle stale; files edited inside
// node_modules by hand are not noticed). About 200 stats and 25 small reads, ~1-2 ms.
// LLM_GATEWAY_BUNDLE=0 starts from the sources whatever dist/ holds.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const DIST_DIR = "dist";
export const BUILD_MANIFEST = "build.json";

/**
 * @param {string} root the project root
 * @param {Record<string, string | undefined>} env
 * @returns {{ isFresh: boolean, reason: string }}
 */
export function bundleState(root, env) {
  if (env.LLM_GATEWAY_BUNDLE === "0") return { isFresh: false, reason: "LLM_GATEWAY_BUNDLE=0" };
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, DIST_DIR, BUILD_MANIFEST), "utf8"));
  } catch {
    return { isFresh: false, reason: "no bundle (npm run build writes dist/)" };
  }
  if (manifest?.format !== 1 || !Array.isArray(manifest.sources) || typeof manifest.builtAtMs !== "number") {
    return { isFresh: false, reason: "dist/build.json is not one this version writes" };
  }
  for (const source of manifest.sources) {
    const stat = statSync(join(root, source), { throwIfNoEntry: false });
    if (stat === undefined) return { isFresh: false, reason: `${source} is gone` };
    if (stat.mtimeMs > manifest.builtAtMs) return { isFresh: false, reason: `${source} changed after the build` };
  }
  for (const [packageDir, version] of Object.entries(manifest.packages ?? {})) {
    let current;
    try {
      current = JSON.parse(readFileSync(join(root, packageDir, "package.json"), "utf8")).version;
    } catch {
      current = undefined;
    }
    if (current !== version) return { isFresh: false, reason: `${packageDir} is not ${version} any more` };
  }
  return { isFresh: true, reason: "built from the current sources" };
}
