// The parts of bin/build.js's esbuild set-up that bench/startup-snapshot.js builds its one-file bundle with too: what
// stays out of a bundle, what gets a stand-in, and two plugins. Kept in one place so the experiment measures the
// bundle `npm start` runs, not a copy that drifted.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
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
 * "file:line:column U+XXXX (source:line:column)", one per file, the source read from the output's linked map when
 * there is one. `charset: "ascii"` escapes strings, templates and identifiers but leaves a regular expression's
 * characters as they are, and a tagged template's (String.raw`…`) (esbuild 0.28): one makes V8 hold the whole file's
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
    const column = before.at(-1)?.length ?? 0;
    // The build removes its outputs when it refuses them: the source is the place to look (and to escape it).
    const source = sourceAt(root, output, before.length - 1, column);
    found.push(`${output}:${before.length}:${column + 1} U+${code}${source === undefined ? "" : ` (${source})`}`);
  }
  return found;
}

const VLQ_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * "source:line:column" (1-based, relative to `root`) that `output`'s linked source map (`output.map`) gives for its
 * 0-based `line` and `column`; undefined without a map or a mapping there.
 */
function sourceAt(root, output, line, column) {
  const mapPath = join(root, `${output}.map`);
  if (!existsSync(mapPath)) return undefined;
  let map;
  try {
    map = JSON.parse(readFileSync(mapPath, "utf8"));
  } catch {
    // Only a hint: a map that cannot be read must not end npm start's prestart.
    return undefined;
  }
  const lines = String(map.mappings ?? "").split(";");
  // Every field but the generated column is relative to the previous segment's across lines: decode up to `line`.
  const state = [0, 0, 0, 0];
  let best;
  for (let at = 0; at <= line && at < lines.length; at++) {
    let generated = 0;
    for (const segment of (lines[at] ?? "").split(",")) {
      if (segment === "") continue;
      const fields = [];
      let value = 0;
      let shift = 0;
      for (const char of segment) {
        const digit = VLQ_DIGITS.indexOf(char);
        value += (digit & 31) << shift;
        shift += 5;
        if ((digit & 32) === 0) {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      generated += fields[0] ?? 0;
      if (fields.length < 4) continue;
      for (let field = 1; field < 4; field++) state[field] += fields[field];
      if (at === line && generated <= column) best = [state[1], state[2], state[3]];
    }
  }
  const file = best === undefined ? undefined : map.sources?.[best[0]];
  if (file === undefined) return undefined;
  const path = normalize(relative(root, join(root, dirname(output), file)));
  return `${path}:${best[1] + 1}:${best[2] + 1}`;
}
