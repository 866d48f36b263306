// Which code a start runs (bin/start-entry.js): the bundle only while it holds the sources as they are now.
import assert from "node:assert/strict";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { bundleState, MANIFEST_FORMAT, packageStamp, restampBundle } from "../bin/start-entry.js";
import { tempDir } from "./helpers/cli-process.ts";

const BUILT_AT_MS = Date.UTC(2026, 0, 1);

/** A project root with one source, one package and a manifest written at BUILT_AT_MS. */
function project(t: TestContext, manifest?: unknown): string {
  const root = tempDir(t);
  mkdirSync(join(root, "src"), { recursive: true });
  mkdirSync(join(root, "node_modules", "@scope", "pkg"), { recursive: true });
  mkdirSync(join(root, "dist"), { recursive: true });
  writeFileSync(join(root, "src", "main.ts"), "export {};\n");
  const before = new Date(BUILT_AT_MS - 60_000);
  utimesSync(join(root, "src", "main.ts"), before, before);
  writeFileSync(join(root, "node_modules", "@scope", "pkg", "package.json"), '{"version":"1.2.3"}');
  const body = manifest ?? {
    format: MANIFEST_FORMAT,
    node: process.version,
    builtAtMs: BUILT_AT_MS,
    sources: ["src/main.ts"],
    packages: { "node_modules/@scope/pkg": packageStamp(root, "node_modules/@scope/pkg") },
  };
  writeFileSync(join(root, "dist", "build.json"), typeof body === "string" ? body : JSON.stringify(body));
  return root;
}

test("a bundle built after its sources, with its packages' versions, is used", (t) => {
  assert.deepEqual(bundleState(project(t), {}), {
    isFresh: true,
    reason: "built from the current sources",
    restamp: [],
  });
});

test("the same version installed again is read, then recorded again (restamp) so that starts only stat it", (t) => {
  const root = project(t);
  const path = join(root, "node_modules", "@scope", "pkg", "package.json");
  writeFileSync(path, '{ "version": "1.2.3", "description": "reinstalled" }');
  const state = bundleState(root, {});
  assert.deepEqual(state, {
    isFresh: true,
    reason: "built from the current sources",
    restamp: ["node_modules/@scope/pkg"],
  });
  restampBundle(root, state.restamp);
  assert.deepEqual(bundleState(root, {}).restamp, []);
  // Recorded again, not trusted blindly: another version in the same place is still seen.
  writeFileSync(path, '{ "version": "1.2.4", "description": "reinstalled" }');
  assert.equal(bundleState(root, {}).isFresh, false);
});

test("a source edited after the build makes the bundle stale", (t) => {
  const root = project(t);
  const after = new Date(BUILT_AT_MS + 1_000);
  utimesSync(join(root, "src", "main.ts"), after, after);
  const state = bundleState(root, {});
  assert.equal(state.isFresh, false);
  assert.match(state.reason, /src\/main\.ts changed after the build/);
});

test("a bundle built by another Node is stale (it holds values read from the Node that built it)", (t) => {
  const root = project(t, {
    format: MANIFEST_FORMAT,
    node: "v24.0.0-other",
    builtAtMs: BUILT_AT_MS,
    sources: [],
    packages: {},
  });
  assert.match(bundleState(root, {}).reason, /built by Node v24\.0\.0-other, this is v/);
});

test("a package installed in another version makes the bundle stale", (t) => {
  const root = project(t);
  writeFileSync(join(root, "node_modules", "@scope", "pkg", "package.json"), '{"version":"1.2.4"}');
  const state = bundleState(root, {});
  assert.equal(state.isFresh, false);
  assert.match(state.reason, /node_modules\/@scope\/pkg is not 1\.2\.3/);
});

test("a source or a package that is gone makes the bundle stale", (t) => {
  const withoutSource = project(t, {
    format: MANIFEST_FORMAT,
    node: process.version,
    builtAtMs: BUILT_AT_MS,
    sources: ["src/gone.ts"],
    packages: {},
  });
  assert.match(bundleState(withoutSource, {}).reason, /src\/gone\.ts is gone/);
  const withoutPackage = project(t, {
    format: MANIFEST_FORMAT,
    node: process.version,
    builtAtMs: BUILT_AT_MS,
    sources: [],
    packages: { "node_modules/gone": { version: "1.0.0", size: 20, mtimeMs: BUILT_AT_MS } },
  });
  assert.equal(bundleState(withoutPackage, {}).isFresh, false);
});

test("a package recorded as missing keeps the bundle fresh while absent and makes it stale once installed (never restamped)", (t) => {
  const root = project(t, {
    format: MANIFEST_FORMAT,
    node: process.version,
    builtAtMs: BUILT_AT_MS,
    sources: [],
    packages: { "node_modules/optional": { isMissing: true } },
  });
  assert.deepEqual(bundleState(root, {}), { isFresh: true, reason: "built from the current sources", restamp: [] });
  mkdirSync(join(root, "node_modules", "optional"));
  writeFileSync(join(root, "node_modules", "optional", "package.json"), '{"version":"1.0.0"}');
  assert.deepEqual(bundleState(root, {}), {
    isFresh: false,
    reason: "node_modules/optional was installed after the build",
    restamp: [],
  });
});

test("no manifest, a broken one or one of another format: the sources run", (t) => {
  const root = project(t);
  assert.equal(bundleState(root, { LLM_GATEWAY_BUNDLE: "0" }).isFresh, false, "LLM_GATEWAY_BUNDLE=0");
  assert.equal(bundleState(project(t, "{not json"), {}).isFresh, false);
  const old = { format: 1, builtAtMs: BUILT_AT_MS, sources: [], packages: { "node_modules/@scope/pkg": "1.2.3" } };
  assert.equal(bundleState(project(t, old), {}).isFresh, false, "format 1");
  assert.equal(bundleState(project(t, { format: MANIFEST_FORMAT, sources: [], packages: {} }), {}).isFresh, false);
  assert.match(bundleState(tempDir(t), {}).reason, /no bundle/);
});
