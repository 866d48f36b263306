// The bundle's stand-ins for semver, @fastify/proxy-addr and thread-stream (bin/lazy-packages.js): each requires its
// real package from node_modules at first use, by a path fixed at build time, so a build records those packages and a
// start takes the bundle as stale once one is moved, upgraded or removed (or, missing at build time, installed); and
// each behaves as its package, minified as a start loads it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { SourceMap, type SourceMapPayload, type SourceMapping } from "node:module";
import { dirname, join } from "node:path";
import { type TestContext, test } from "node:test";
import { pathToFileURL } from "node:url";
import { bundleState } from "../../bin/start-entry.js";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT } from "../helpers/cli-process.ts";

const STAND_INS = ["@fastify/proxy-addr", "semver", "thread-stream"];

const build = buildBundle;

function builtProject(t: TestContext): string {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const built = build(root);
  assert.equal(built.status, 0, built.stderr);
  return root;
}

function versionOf(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string }).version;
}

/**
 * Replaces the project's node_modules (a link to this checkout's) by a folder of links to the same packages, less
 * `left` (names, scoped ones included): a rearranged node_modules, changed without touching the shared one.
 */
function relinkNodeModules(root: string, left: readonly string[]): void {
  const target = join(root, "node_modules");
  // The first time a link to the shared node_modules: removed as a link, never through it.
  if (lstatSync(target).isSymbolicLink()) unlinkSync(target);
  else rmSync(target, { recursive: true });
  const linkEach = (from: string, to: string, prefix: string) => {
    mkdirSync(to);
    for (const entry of readdirSync(from)) {
      const name = `${prefix}${entry}`;
      if (left.includes(name)) continue;
      if (entry.startsWith("@") && left.some((other) => other.startsWith(`${name}/`))) {
        linkEach(join(from, entry), join(to, entry), `${name}/`);
      } else {
        symlinkSync(join(from, entry), join(to, entry));
      }
    }
  };
  linkEach(join(REPO_ROOT, "node_modules"), target, "");
}

test("a stand-in's package moved, upgraded or removed after the build makes the bundle stale; --if-stale rebuilds", (t) => {
  const root = builtProject(t);
  const manifest = JSON.parse(readFileSync(join(root, "dist", "build.json"), "utf8")) as {
    packages: Record<string, { version?: unknown }>;
  };
  // Each stand-in's package and those it requires (proxy-addr's ipaddr.js), by the path the stand-in requires.
  for (const name of [...STAND_INS, "ipaddr.js"]) {
    assert.equal(
      manifest.packages[`node_modules/${name}`]?.version,
      versionOf(join(REPO_ROOT, "node_modules", name)),
      `${name} is not recorded`,
    );
  }
  assert.equal(build(root, ["--if-stale"]).stdout, "dist/ is up to date\n");

  // Removed (or moved elsewhere: the stand-in's fixed path no longer finds it).
  relinkNodeModules(root, ["semver"]);
  assert.deepEqual(bundleState(root, {}), {
    isFresh: false,
    reason: `node_modules/semver is not ${versionOf(join(REPO_ROOT, "node_modules", "semver"))} any more`,
    restamp: [],
  });
  // Upgraded: a package the stand-in's package requires, at another version.
  relinkNodeModules(root, ["@fastify/proxy-addr"]);
  mkdirSync(join(root, "node_modules", "@fastify", "proxy-addr"));
  writeFileSync(
    join(root, "node_modules", "@fastify", "proxy-addr", "package.json"),
    JSON.stringify({ name: "@fastify/proxy-addr", version: "99.0.0" }),
  );
  assert.match(bundleState(root, {}).reason, /^node_modules\/@fastify\/proxy-addr is not \d+\.\d+\.\d+ any more$/);
  const rebuilt = build(root, ["--if-stale"]);
  assert.equal(rebuilt.status, 0, rebuilt.stderr);
  assert.match(rebuilt.stdout, /^dist\/: \d+ modules/m);
  assert.equal(bundleState(root, {}).isFresh, true);
});

/**
 * The stand-ins as `npm start` loads them: minified inside a chunk of dist/, each one CommonJS module of the bundle,
 * found by its source (the text bin/lazy-packages.js generated, named `lazy-package:<path>` in the chunk's source map).
 * Returns, per stand-in path, the chunk and the name the chunk gives the function that returns its `module.exports`
 * (the one the packages that require it call): no feature of the gateway calls these packages, so no request reaches
 * them, and a probe has the chunk export that name.
 */
function standInsOf(root: string): Map<string, { chunk: string; binding: string }> {
  const found = new Map<string, { chunk: string; binding: string }>();
  for (const file of readdirSync(join(root, "dist")).filter((name) => name.endsWith(".js"))) {
    const path = join(root, "dist", file);
    const map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")) as SourceMapPayload);
    const lines = readFileSync(path, "utf8").split("\n");
    lines.forEach((line, lineIndex) => {
      for (const match of line.matchAll(/"(\.\.\/[^"]*)"/g)) {
        const source = `lazy-package:${match[1]}`;
        const isStandIn = (column: number) => {
          const entry = map.findEntry(lineIndex, column);
          return "originalSource" in entry && (entry as SourceMapping).originalSource.endsWith(source);
        };
        if (!isStandIn(match.index)) continue;
        // Back to the first column mapped to the stand-in: where the bundle's wrapper of the module starts.
        let column = match.index;
        while (column > 0 && isStandIn(column - 1)) column -= 1;
        const binding = /^var ([\w$]+)=/.exec(line.slice(column))?.[1];
        assert.ok(binding !== undefined, `${source} in ${file} does not start as esbuild's CommonJS wrapper`);
        found.set(match[1] ?? "", { chunk: path, binding });
      }
    });
  }
  return found;
}

test("each stand-in, minified in dist/ as a start loads it, loads its package at first use and behaves as it, subclassed too", (t) => {
  const root = builtProject(t);
  const standIns = standInsOf(root);
  assert.deepEqual(
    [...standIns.keys()].sort(),
    STAND_INS.map((name) => `../node_modules/${name}/index.js`),
  );
  const worker = join(root, "thread-stream-worker.mjs");
  const written = join(root, "written.txt");
  writeFileSync(
    worker,
    `import { appendFileSync } from "node:fs";
import { Writable } from "node:stream";
export default ({ path }) => new Writable({ write(chunk, _, done) { appendFileSync(path, chunk); done(); } });
`,
  );
  const exported = [...standIns].map(([path, { chunk, binding }], index) => ({
    path,
    url: pathToFileURL(chunk).href,
    binding,
    name: `standIn${index}`,
  }));
  const probe = join(root, "stand-ins-probe.mjs");
  writeFileSync(
    probe,
    `import { createRequire, registerHooks } from "node:module";
import { existsSync, readFileSync } from "node:fs";
const exported = ${JSON.stringify(exported)};
// The chunks as built, plus an export of each stand-in's module: nothing else of them is changed.
registerHooks({
  load(url, context, nextLoad) {
    const loaded = nextLoad(url, context);
    const added = exported.filter((entry) => entry.url === url);
    if (added.length === 0) return loaded;
    const names = added.map(({ binding, name }) => binding + " as " + name).join(", ");
    return { ...loaded, source: String(loaded.source) + "\\nexport { " + names + " };\\n" };
  },
});
const modules = new Map();
for (const { path, url, name } of exported) modules.set(path, (await import(url))[name]());
// The bundle's require (its banner's) resolves from dist/, and shares Node's one cache of CommonJS modules.
const require = createRequire(${JSON.stringify(join(root, "dist", "probe.js"))});
const isLoaded = (name) => Object.keys(require.cache).some((file) => file.includes(\`/node_modules/\${name}/\`));
const out = {};
const semver = modules.get("../node_modules/semver/index.js");
const proxyAddr = modules.get("../node_modules/@fastify/proxy-addr/index.js");
const ThreadStream = modules.get("../node_modules/thread-stream/index.js");
out.loadedBeforeUse = ["semver", "@fastify/proxy-addr", "thread-stream"].filter(isLoaded);
// As Fastify calls it for a plugin that declares the Fastify it needs.
out.satisfies = [semver.satisfies("5.12.8", "^5.0.0"), semver.satisfies("4.29.1", "5.x"), "coerce" in semver];
// Listed, written and deleted as the package itself (a write kept on the stand-in would never be read back).
out.keys = [Object.keys(semver).includes("satisfies"), Object.keys(proxyAddr).includes("compile"), Object.keys({ ...semver }).length === Object.keys(require("semver")).length];
semver.probeMark = 7;
out.writes = [require("semver").probeMark, semver.probeMark, delete semver.probeMark, "probeMark" in require("semver")];
// As Fastify's request.ip with trustProxy: the client is the first address, from the socket back, not trusted.
const request = { socket: { remoteAddress: "10.0.0.2" }, headers: { "x-forwarded-for": "203.0.113.7, 10.0.0.1" } };
out.addresses = [
  proxyAddr(request, (address) => address.startsWith("10.")),
  proxyAddr(request, proxyAddr.compile(["10.0.0.0/8"])),
  proxyAddr(request, () => false),
  proxyAddr.all(request),
];
// As pino's transports: a worker thread writing through the destination its module returns; and a class of the
// caller's own that extends it keeps its methods and fields.
class CountingStream extends ThreadStream {
  lines = 0;
  writeLine(line) {
    this.lines += 1;
    return this.write(line + "\\n");
  }
}
const stream = new CountingStream({ filename: ${JSON.stringify(`file://${worker}`)}, workerData: { path: ${JSON.stringify(written)} }, sync: true });
out.isThreadStream = stream instanceof ThreadStream && stream instanceof CountingStream;
out.wrote = typeof stream.writeLine === "function" && stream.writeLine("through the worker");
out.lines = stream.lines;
stream.end();
await new Promise((resolve, reject) => { stream.once("close", resolve); stream.once("error", reject); });
out.workerWrote = existsSync(${JSON.stringify(written)}) ? readFileSync(${JSON.stringify(written)}, "utf8") : null;
out.loadedAfterUse = ["semver", "@fastify/proxy-addr", "ipaddr.js", "thread-stream"].filter(isLoaded);
process.stdout.write(JSON.stringify(out));
`,
  );
  const run = spawnSync(process.execPath, [probe], { cwd: root, encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), {
    loadedBeforeUse: [],
    satisfies: [true, false, true],
    keys: [true, true, true],
    writes: [7, 7, true, false],
    addresses: ["203.0.113.7", "203.0.113.7", "10.0.0.2", ["10.0.0.2", "10.0.0.1", "203.0.113.7"]],
    isThreadStream: true,
    wrote: true,
    lines: 1,
    workerWrote: "through the worker\n",
    loadedAfterUse: ["semver", "@fastify/proxy-addr", "ipaddr.js", "thread-stream"],
  });
});

test("a project without node_modules of its own (its packages in a parent folder's, as npm workspaces hoist them) is bundled", (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "package.json"]);
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dirname(root), "node_modules"));
  const built = build(root);
  assert.equal(built.status, 0, built.stderr);
  assert.equal(bundleState(root, {}).isFresh, true);
  // Each stand-in's path, relative to dist/, reaches its package in the parent folder's node_modules.
  const standIns = standInsOf(root);
  assert.equal(standIns.size, STAND_INS.length);
  for (const path of standIns.keys()) assert.ok(existsSync(join(root, "dist", path)), path);
});

/**
 * A project whose Fastify and proxy-addr are real folders of its own node_modules (a package requires from where it
 * is), without ipaddr.js (proxy-addr's dependency), and with its sources copied (linked, esbuild would resolve their
 * packages from this checkout's node_modules).
 */
function projectWithoutIpaddr(t: TestContext): string {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  relinkNodeModules(root, ["fastify", "@fastify/proxy-addr", "ipaddr.js"]);
  for (const name of ["fastify", "@fastify/proxy-addr"]) {
    cpSync(join(REPO_ROOT, "node_modules", name), join(root, "node_modules", name), {
      recursive: true,
      dereference: true,
    });
  }
  return root;
}

test("a package a stand-in's package requires, not installed at build time, makes the bundle stale once installed", (t) => {
  const root = projectWithoutIpaddr(t);
  const built = build(root);
  assert.equal(built.status, 0, built.stderr);
  const packagesOf = () =>
    (
      JSON.parse(readFileSync(join(root, "dist", "build.json"), "utf8")) as {
        packages: Record<string, { version?: string; isMissing?: true }>;
      }
    ).packages;
  // Where Node would find it, from proxy-addr's folder up to the project's node_modules.
  for (const place of ["node_modules/@fastify/proxy-addr/node_modules/ipaddr.js", "node_modules/ipaddr.js"]) {
    assert.deepEqual(packagesOf()[place], { isMissing: true }, place);
  }
  assert.equal(bundleState(root, {}).isFresh, true);

  cpSync(join(REPO_ROOT, "node_modules", "ipaddr.js"), join(root, "node_modules", "ipaddr.js"), {
    recursive: true,
    dereference: true,
  });
  assert.deepEqual(bundleState(root, {}), {
    isFresh: false,
    reason: "node_modules/ipaddr.js was installed after the build",
    restamp: [],
  });
  const rebuilt = build(root, ["--if-stale"]);
  assert.equal(rebuilt.status, 0, rebuilt.stderr);
  assert.equal(
    packagesOf()["node_modules/ipaddr.js"]?.version,
    versionOf(join(REPO_ROOT, "node_modules", "ipaddr.js")),
  );
  assert.equal(bundleState(root, {}).isFresh, true);
});

test("a package a stand-in's package requires, linked from outside any node_modules (npm link, a file: override): --if-stale does not fail the start", (t) => {
  const root = projectWithoutIpaddr(t);
  // ipaddr.js a link to a fork outside any node_modules.
  const fork = join(dirname(root), "forks", "ipaddr.js");
  cpSync(join(REPO_ROOT, "node_modules", "ipaddr.js"), fork, { recursive: true, dereference: true });
  symlinkSync(fork, join(root, "node_modules", "ipaddr.js"));
  const built = build(root, ["--if-stale"]);
  assert.equal(built.status, 0, built.stderr);
  // No bundle, as for a stand-in's own package that cannot be placed: the start runs the sources.
  assert.match(built.stderr, /ipaddr\.js resolved to .*\nbin\/build\.js: no bundle built/);
  assert.equal(bundleState(root, {}).isFresh, false);
  assert.deepEqual(
    readdirSync(dirname(join(root, "dist"))).filter((name) => name.startsWith("dist.")),
    [],
    "the build's staging folder is left",
  );
});
