// A build that cannot write a bundle (bin/build.js) leaves dist/ stale and, under --if-stale (npm start's prestart,
// bin/warm-caches.js), exits 0 with one line saying so: the start runs the sources instead of failing.
import assert from "node:assert/strict";
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { bundleState } from "../../bin/start-entry.js";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT } from "../helpers/cli-process.ts";

test("a lazy module that is no entry of its own: --if-stale says so and the start runs the sources; a plain build fails", (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  // An import esbuild cannot follow: batch-routes.ts is then neither bundled nor an entry of its own.
  const doors = join(root, "src", "server", "batch-doors.ts");
  const text = readFileSync(doors, "utf8");
  assert.match(text, /import\("\.\/batch-routes\.ts"\)/);
  writeFileSync(doors, text.replace('import("./batch-routes.ts")', 'import(["./batch-routes.ts"][0] ?? "")'));

  const ifStale = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(ifStale.status, 0, ifStale.stderr);
  assert.equal(
    ifStale.stderr,
    "bin/build.js: lazy modules not found as entries of their own: src/server/batch-routes.ts\n" +
      "bin/build.js: no bundle built; the gateway runs its sources\n",
  );
  // No bundle: only the blob of Node alone that `npm start` needs (bin/build-snapshot.js), which runs the sources.
  assert.deepEqual(readdirSync(join(root, "dist")).sort(), ["snapshot.blob", "snapshot.json"]);
  assert.deepEqual(
    readdirSync(dirname(join(root, "dist"))).filter((name) => name.startsWith("dist.")),
    [],
    "the build's staging folder is left",
  );
  assert.equal(bundleState(root, {}).isFresh, false);

  const plain = buildBundle(root);
  assert.equal(plain.status, 1);
  assert.match(plain.stderr, /lazy modules not found as entries of their own: src\/server\/batch-routes\.ts\n/);
});

test("a character above ASCII in a regular expression: --if-stale keeps the bundle and its snapshot, and says where; a plain build fails", (t) => {
  // A bundle that runs, only holding that file as two-byte text: the sources it would fall back to hold more, and
  // every later `npm start` would build again, to be refused again.
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  const redact = join(root, "src", "errors", "redact.ts");
  const text = readFileSync(redact, "utf8");
  assert.match(text, /\{4,\}\\u2026\$\/i;/);
  writeFileSync(redact, text.replace("{4,}\\u2026$/i;", "{4,}\u2026$/i;"));

  const ifStale = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(ifStale.status, 0, ifStale.stderr);
  assert.match(ifStale.stderr, /characters above ASCII in the bundle.*U\+2026 \(src\/errors\/redact\.ts:\d+:\d+\)/);
  assert.match(ifStale.stderr, /characters above ASCII in the snapshot's script.*U\+2026 \(src\/errors\/redact\.ts:/);
  assert.doesNotMatch(ifStale.stderr, /no bundle built/);
  assert.deepEqual(bundleState(root, {}), { isFresh: true, reason: "built from the current sources", restamp: [] });
  assert.equal(JSON.parse(readFileSync(join(root, "dist", "snapshot.json"), "utf8")).kind, "full");

  const plain = buildBundle(root);
  assert.equal(plain.status, 1);
  assert.match(plain.stderr, /characters above ASCII in the bundle, escape them in the source: .*U\+2026/);
});
