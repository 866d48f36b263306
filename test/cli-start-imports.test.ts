// What `node src/main.ts` loads before it knows its command: the modules main.ts imports statically, and theirs.
// `--help`, `--version` and a usage error load nothing else (each command's modules are dynamic imports), so that is
// all their start costs. Read from the sources rather than from a spawned process: exact, and no process to start;
// an unknown command, answered once main.ts has read its arguments, is looked at in a run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { runCli, tempDir } from "./helpers/cli-process.ts";

const SRC = join(import.meta.dirname, "..", "src");

/**
 * The specifiers a module loads when it is evaluated: `import ... from`, `export ... from` and `import "x"`, not
 * `import type` / `export type` (erased) nor `import()` (loaded when it runs). An `import { type A }` still loads
 * its module (type stripping leaves `import {} from`).
 */
export function staticImportsOf(text: string): string[] {
  return [
    ...text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;]*?from\s+"([^"]+)"/gms),
    ...text.matchAll(/^\s*import\s+"([^"]+)"/gm),
  ].map((match) => match[1] as string);
}

/** The source files and packages evaluated from `entry` on (transitively), before any of its code runs. */
function loadedAtStart(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of staticImportsOf(readFileSync(file, "utf8"))) {
      if (specifier.startsWith(".")) pending.push(resolve(dirname(file), specifier));
      else if (!specifier.startsWith("node:")) packages.add(specifier);
    }
  }
  return { files: [...files].map((file) => relative(SRC, file)).sort(), packages: [...packages].sort() };
}

test("the static-import reader skips type imports and dynamic imports, and keeps re-exports", () => {
  const text = [
    'import type { A } from "./a.ts";',
    'import { type B, c } from "./b.ts";',
    'export { d } from "./d.ts";',
    'export type { E } from "./e.ts";',
    'import "./f.ts";',
    'const g = await import("./g.ts");',
  ].join("\n");
  assert.deepEqual(staticImportsOf(text).sort(), ["./b.ts", "./d.ts", "./f.ts"]);
});

test("`--help`, `--version` and a usage error load no package and no command's modules", () => {
  // Before, `--version`'s constant came through server/info-routes.ts, which loaded zod (with its 64 locales),
  // yaml and most of the request path: ~240 modules for a usage line, in every CLI test's usage-error runs.
  const { files, packages } = loadedAtStart(join(SRC, "main.ts"));
  assert.deepEqual(packages, []);
  const outside = files.filter((file) => !/^(main\.ts|cli\/|errors\/|observability\/process-faults\.ts)/.test(file));
  assert.deepEqual(outside, ["server/gateway-version.ts"]);
});

test("an unknown command is answered before any command's modules load", async (t) => {
  const dir = tempDir(t);
  const listPath = join(dir, "loaded.txt");
  const preload = pathToFileURL(join(import.meta.dirname, "helpers", "loaded-modules.mjs")).href;
  const result = await runCli(["modles"], {
    cwd: dir,
    env: { NODE_OPTIONS: `--import=${preload}`, LOADED_MODULES_PATH: listPath },
  });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /^Unknown command "modles"; did you mean "models"\?/);
  // Before, main.ts loaded the commands, the config loader and the output (~420 modules) to reach its `default:`.
  const loaded = readFileSync(listPath, "utf8").split("\n").filter(Boolean);
  assert.ok(
    loaded.some((url) => url.endsWith("/src/main.ts")),
    "the list is of this run",
  );
  assert.deepEqual(
    loaded.filter((url) => url.includes("/node_modules/") || url.endsWith("/src/cli/commands.ts")),
    [],
  );
});
