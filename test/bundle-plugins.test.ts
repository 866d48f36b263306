// bin/bundle-plugins.js's check of what esbuild wrote: a character above ASCII (left by `charset: "ascii"` in a
// regular expression) doubles what V8 holds of a file's source, so bin/build.js refuses the bundle and says where.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { nonAsciiOutputs } from "../bin/bundle-plugins.js";
import { tempDir } from "./helpers/cli-process.ts";

test("nonAsciiOutputs names each JavaScript output holding a character above ASCII, with its line and column", (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, "ascii.js"), 'export const a = /x\\u2026$/i, b = "\\u2026";\n');
  writeFileSync(join(root, "regex.js"), "const a = 1;\nexport const b = /key\u2026$/i;\n");
  writeFileSync(join(root, "chunk.cjs"), "module.exports = /\u6700\u5927/;\n");
  // Source maps hold the sources as written: not loaded by a start, not checked.
  writeFileSync(join(root, "regex.js.map"), '{"sourcesContent":["\u2026"]}');
  const outputs = Object.fromEntries(["ascii.js", "regex.js", "chunk.cjs", "regex.js.map"].map((file) => [file, {}]));
  assert.deepEqual(nonAsciiOutputs({ outputs }, root), ["regex.js:2:22 U+2026", "chunk.cjs:1:19 U+6700"]);
});

test("nonAsciiOutputs also names the source the character came from, read from the output's source map", async (t) => {
  // The build's outputs are in a staging folder it removes when it refuses them: the source is what can be edited.
  const root = tempDir(t);
  mkdirSync(join(root, "src"));
  writeFileSync(join(root, "src", "a.ts"), 'export const a = "\u2026";\n');
  writeFileSync(join(root, "src", "b.ts"), "export const b = 1;\n\nexport const cut = /key\u2026$/i;\n");
  writeFileSync(join(root, "src", "main.ts"), 'export { a } from "./a.ts";\nexport { b, cut } from "./b.ts";\n');
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [join(root, "src", "main.ts")],
    outdir: join(root, "dist.1.tmp"),
    absWorkingDir: root,
    bundle: true,
    format: "esm",
    minify: true,
    charset: "ascii",
    sourcemap: "linked",
    metafile: true,
    logLevel: "silent",
  });
  const [found] = nonAsciiOutputs(result.metafile, root);
  assert.match(found ?? "", /^dist\.1\.tmp\/main\.js:\d+:\d+ U\+2026 \(src\/b\.ts:3:\d+\)$/);
});
