// The esbuild set-up that bin/build.js's bundle (dist/) and bin/build-snapshot.js's script (dist/snapshot.cjs) share:
// what stays out of a bundle, what gets a stand-in, and the options both build with. Kept in one place so that the
// snapshot a start deserializes is built as the bundle it stands for, not by a copy that drifted.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { lazyPackages } from "./lazy-packages.js";

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

/**
 * fast-json-stringify stays out, but not `fast-json-stringify/lib/serializer`, which Fastify's error serializer
 * requires when it loads (esbuild's `external` takes a package's subpaths too). Left out, dist/ required it from
 * node_modules at every start (dist/ was not whole without them); in the snapshot's script, run at build time from
 * node_modules, it is user-land CommonJS, after which Node refuses to start from the snapshot (ERR_INTERNAL_ASSERTION,
 * `!hasStartedUserCJSExecution()` in initializeModuleLoaders).
 */
const onlyBareExternals = {
  name: "only-bare-externals",
  setup(build) {
    build.onResolve({ filter: /^fast-json-stringify$/ }, (args) => ({ path: args.path, external: true }));
  },
};

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
 * undici's HTTP/1 parser, llhttp, is WebAssembly shipped as base64 text in two modules of ~72 KB each (with SIMD and
 * without), which undici requires at its first connection (`lazyllhttp`, client-h1.js), never before. Bundled, both
 * were source text of a module every start loads, held by its heap, and, in the start-up snapshot, by the blob Node
 * keeps in memory as well (bench/README.md section 41). Here each becomes a file of the build's output folder, the
 * WebAssembly's bytes decoded from undici's module (54 KB), and a stand-in that reads it there at that first require
 * (relative to dist/: the `require` of bin/build.js's banner and of the snapshot's), so dist/ stays whole without
 * node_modules. Read, not required: a module there would be compiled under whichever V8 flags its first user found
 * (`llm-gateway providers` probes with the start-up holds on, a served request without), and Node's compile cache
 * keeps one entry per file, which the other rejects. dist/build.json records undici, so another version makes dist/
 * stale and the next build decodes its files.
 */
export const llhttpApart = {
  name: "llhttp-apart",
  setup(build) {
    const { outdir, outfile } = build.initialOptions;
    build.onResolve({ filter: /^\.\.\/llhttp\/llhttp(_simd)?-wasm\.js$/ }, (args) =>
      /node_modules[\\/]undici[\\/]lib[\\/]dispatcher[\\/]/.test(args.importer)
        ? { path: join(args.resolveDir, args.path), namespace: "llhttp-wasm" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "llhttp-wasm" }, (args) => {
      const base64 = /\bwasmBase64 = '([A-Za-z0-9+/=]+)'/.exec(readFileSync(args.path, "utf8"))?.[1];
      if (base64 === undefined) return { errors: [{ text: `no wasmBase64 in ${args.path}: undici changed it` }] };
      const name = `undici-${basename(args.path, ".js")}.wasm`;
      const dir = outdir ?? dirname(outfile);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, name), Buffer.from(base64, "base64"));
      return {
        loader: "js",
        contents: `"use strict";
const file = ${JSON.stringify(`./${name}`)};
let bytes;
Object.defineProperty(module, "exports", {
  get: () => (bytes ??= require("node:fs").readFileSync(require.resolve(file))),
});
`,
      };
    });
  },
};

/**
 * The files of `dir` that are no module (llhttp's WebAssembly, llhttpApart above) and their sizes, which dist/build.json
 * records: the bundle reads them at run time (the first upstream connection), so a dist/ without one of them, or with
 * one cut short, is stale (bin/start-entry.js): run, every upstream request would fail (`Cannot find module`), and a
 * missing SIMD build would be replaced by the slower one without a word.
 */
export function bundleAssets(dir) {
  const assets = {};
  for (const name of readdirSync(dir).filter((file) => file.endsWith(".wasm"))) {
    assets[name] = statSync(join(dir, name)).size;
  }
  return assets;
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
 * The esbuild options of both builds for the project at `root`: one Node 24 bundle, ASCII only (one non-ASCII
 * character in a module makes V8 hold its whole source as two-byte text, twice the memory, and decode it more
 * slowly), licence comments in *.LEGAL.txt, a linked source map (not read at run time; for reading a minified stack
 * trace) and esbuild's metafile (the inputs dist/build.json records). `minify: false` keeps names readable in CPU
 * profiles and heap snapshots. EXTERNAL_PACKAGES left out (fast-json-stringify's subpaths bundled). Plugins: `first`,
 * then the shared ones (onlyBareExternals, lazyAssert, bin/lazy-packages.js's stand-ins, which records its packages
 * in `standIns`, withoutZodLocales), then `last`; esbuild asks them in that order.
 */
export function bundleOptions({ root, minify, standIns, first = [], last = [] }) {
  return {
    bundle: true,
    platform: "node",
    target: "node24",
    minify,
    sourcemap: "linked",
    metafile: true,
    absWorkingDir: root,
    logLevel: "warning",
    charset: "ascii",
    legalComments: "external",
    external: EXTERNAL_PACKAGES.filter((name) => name !== "fast-json-stringify"),
    plugins: [
      ...first,
      onlyBareExternals,
      lazyAssert(ASSERT_IMPORTERS),
      lazyPackages(LAZY_PACKAGE_NAMES, LAZY_PACKAGE_IMPORTERS, root, standIns),
      withoutZodLocales,
      llhttpApart,
      ...last,
    ],
  };
}

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
