// The parts of bin/build.js's esbuild set-up that bench/startup-snapshot.js builds its one-file bundle with too: what
// stays out of a bundle, what gets a stand-in, and two plugins. Kept in one place so the experiment measures the
// bundle `npm start` runs, not a copy that drifted.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * prom-client (first /metrics scrape) and ioredis (state.redis_url) load only when used, and so do Fastify's schema
 * compilers and its inject() (no route has a JSON schema; src/server/build-server.ts): bundled, they would be source
 * text held in memory for code that never runs.
 */
export const EXTERNAL_PACKAGES = [
  ...["prom-client", "ioredis"],
  ...["@fastify/ajv-compiler", "@fastify/fast-json-stringify-compiler", "ajv", "fast-json-stringify"],
  "light-my-request",
];

/** Who gets bin/lazy-assert.cjs for `node:assert` (lazyAssert). */
export const ASSERT_IMPORTERS = /node_modules[\\/](fastify|find-my-way|sonic-boom|thread-stream|undici)[\\/]/;

/** bin/lazy-packages.js's stand-ins: these packages, when required from those importers (bin/build.js says why). */
export const LAZY_PACKAGE_NAMES = ["semver", "thread-stream", "@fastify/proxy-addr"];
export const LAZY_PACKAGE_IMPORTERS = /node_modules[\\/](fastify|pino)[\\/]/;

/** `node:assert` in these packages resolves to bin/lazy-assert.cjs, which says why. */
export function lazyAssert(importers) {
  const standIn = fileURLToPath(new URL("lazy-assert.cjs", import.meta.url));
  return {
    name: "lazy-assert",
    setup(build) {
      build.onResolve({ filter: /^(node:)?assert$/ }, (args) =>
        importers.test(args.importer) ? { path: standIn } : undefined,
      );
    },
  };
}

/**
 * zod's `z` namespace re-exports every locale's error messages (`z.locales`, ~40 languages), so a bundle that
 * imports `z` would hold them all. The gateway answers in English, which zod's schemas register themselves (from
 * `locales/en.js`, untouched): the namespace of the others is left empty.
 */
export const withoutZodLocales = {
  name: "without-zod-locales",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /node_modules[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)
        ? { path: "zod-locales", namespace: "empty-module" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "empty-module" }, () => ({ contents: "export {};", loader: "js" }));
  },
};

/**
 * Where the JavaScript files esbuild wrote (its metafile's outputs, relative to `root`) hold a character above ASCII:
 * "file:line:column U+XXXX", one per file. `charset: "ascii"` escapes strings, templates and identifiers but leaves a
 * regular expression's characters as they are (esbuild 0.28), and one such character makes V8 hold the whole file's
 * source as two-byte text: the start-up snapshot's script (1.8 MB) took 3.6 MB of every start's heap for a `…` and a
 * Chinese error text in two regular expressions (bench/README.md section 37). Escape it in the source (`\u2026`).
 */
export function nonAsciiOutputs(metafile, root) {
  const found = [];
  for (const output of Object.keys(metafile.outputs)) {
    if (!/\.[cm]?js$/.test(output)) continue;
    const text = readFileSync(join(root, output), "utf8");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
    const at = text.search(/[^\x00-\x7f]/);
    if (at === -1) continue;
    const before = text.slice(0, at).split("\n");
    const code = (text.codePointAt(at) ?? 0).toString(16).toUpperCase().padStart(4, "0");
    found.push(`${output}:${before.length}:${(before.at(-1)?.length ?? 0) + 1} U+${code}`);
  }
  return found;
}
