// dist/ holds undici's llhttp WebAssembly as files of their own (bin/bundle-plugins.js llhttpApart), read at the first
// upstream connection, not at the start: a dist/ that lost one (copied without them, cleaned by hand) must be stale,
// as one missing a module is, so that npm start's prestart builds it again and a start runs the sources meanwhile.
// Taken as fresh, it started and answered every request with a 502 (`Cannot find module './undici-llhttp-wasm.wasm'`),
// or, without the SIMD build alone, parsed every answer with the slower one.
import assert from "node:assert/strict";
import { existsSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bundleState } from "../../bin/start-entry.js";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";

test("a dist/ missing or with a cut llhttp WebAssembly file is stale, and --if-stale builds it again", (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const build = buildBundle(root, ["--no-snapshot", "--quiet"]);
  assert.equal(build.status, 0, build.stderr);
  const dist = join(root, "dist");
  assert.equal(bundleState(root, {}).isFresh, true);

  for (const name of ["undici-llhttp-wasm.wasm", "undici-llhttp_simd-wasm.wasm"]) {
    rmSync(join(dist, name));
    const state = bundleState(root, {});
    assert.equal(state.isFresh, false, `dist/ without ${name} is taken as fresh`);
    assert.match(state.reason, new RegExp(`dist/${name.replace(".", "\\.")}`));
    const again = buildBundle(root, ["--if-stale", "--no-snapshot", "--quiet"]);
    assert.equal(again.status, 0, again.stderr);
    assert.ok(existsSync(join(dist, name)), `--if-stale left dist/ without ${name}`);
    assert.equal(bundleState(root, {}).isFresh, true);
  }
  truncateSync(join(dist, "undici-llhttp_simd-wasm.wasm"), 100);
  assert.equal(bundleState(root, {}).isFresh, false, "a cut file is taken as fresh");
});
