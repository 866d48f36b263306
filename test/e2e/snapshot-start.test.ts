// The start-up snapshot `npm start` and `npm run demo` start from (`node --snapshot-blob dist/snapshot.blob
// bin/llm-gateway.js serve`; bin/build-snapshot.js): built with dist/ in a copy of the project, it serves from a heap in
// which every module is already evaluated, and every start that cannot use it still starts (Node exits on a missing
// blob or on another Node's, so the prestart build always leaves one this Node can start).
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { once } from "node:events";
import { cpSync, existsSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT, writeFiles } from "../helpers/cli-process.ts";
import { useMock } from "../helpers/e2e.ts";
import { type ServedEntry, serveThroughBin } from "../helpers/served-entry.ts";

const LINKED = ["src", "data", "config", "node_modules", "package.json"];
const env = { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" };

function record(root: string): { kind?: string; node?: { version?: string } } {
  return JSON.parse(readFileSync(join(root, "dist", "snapshot.json"), "utf8"));
}

/** What the listening line says the process runs: snapshot, bundle or sources (src/cli/serve.ts). */
function code(served: ServedEntry): unknown {
  const line = served
    .stdout()
    .split("\n")
    .find((text) => text.includes("listening on http"));
  return (JSON.parse(line ?? "{}") as { code?: unknown }).code;
}

test("npm start's snapshot serves chat, /metrics and the dashboard; LLM_GATEWAY_BUNDLE=0 and another Node's blob still start", async (t) => {
  const root = projectCopy(t, "project", LINKED);
  const build = buildBundle(root);
  assert.equal(build.status, 0, build.stderr);
  assert.equal(record(root).kind, "full");
  const blob = ["--snapshot-blob", join(root, "dist", "snapshot.blob")];

  const mock = await useMock(t);
  const configPath = writeFiles(root, {
    "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nlog:\n  format: json\nproviders:\n  - name: mock\n    base_url: ${mock.baseUrl}\n    api_key: mock-key\n    models:\n      m: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(root, "discovery"))}\nstate:\n  path: ":memory:"\n`,
  });
  const served = await serveThroughBin(t, root, configPath, env, blob);
  assert.equal(code(served), "snapshot");
  const chat = await fetch(`${served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Say hello" }] }),
  });
  const answer = (await chat.json()) as { choices?: { message?: { content?: unknown } }[] };
  assert.equal(chat.status, 200, JSON.stringify(answer));
  assert.equal(typeof answer.choices?.[0]?.message?.content, "string");
  // prom-client loads at the first scrape, from node_modules: a snapshot's script has no import() and its own
  // require loads built-ins only.
  const metrics = await fetch(`${served.url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^llm_gateway_requests_total\{/m);
  const dashboard = await fetch(`${served.url}/dashboard`);
  assert.equal(dashboard.status, 200);
  assert.match(await dashboard.text(), /<title>LLM Gateway<\/title>/);
  await served.stop();

  // The checkout reached through a symbolic link (a deploy's `current` link, say): the same checkout, so the snapshot,
  // as `node <link>/bin/llm-gateway.js` runs its bundle.
  const link = join(root, "..", "linked-project");
  symlinkSync(root, link);
  const throughLink = await serveThroughBin(t, link, configPath, env, [
    "--snapshot-blob",
    join(link, "dist", "snapshot.blob"),
  ]);
  assert.equal(code(throughLink), "snapshot");
  await throughLink.stop();

  // undici takes its response header limit from node:http's maxHeaderSize, which a stand-in in the snapshot held as
  // it was at build time: a run-time --max-http-header-size (NODE_OPTIONS) must still be the limit. `providers` makes
  // its requests before anything else loads node:http.
  const upstream = createServer({ maxHeaderSize: 1 << 20 }, (_request, response) => {
    response.setHeader("x-large", "x".repeat(30_000));
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ object: "list", data: [{ id: "m", object: "model" }] }));
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  t.after(() => upstream.close());
  const largeConfig = writeFiles(root, {
    "large.yaml": `providers:\n  - name: large\n    base_url: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1\n    api_key: k\n    models:\n      m: {}\nstate:\n  path: ":memory:"\n`,
  });
  const probe = await promisify(execFile)(
    process.execPath,
    [...blob, join(root, "bin", "llm-gateway.js"), "providers", "--json", "--config", largeConfig],
    { cwd: root, env: { ...env, NODE_OPTIONS: "--max-http-header-size=65536" } },
  ).catch((error: { stdout?: string; stderr?: string }) => ({
    stdout: error.stdout ?? "",
    stderr: error.stderr ?? "",
  }));
  assert.equal(JSON.parse(probe.stdout).providers[0]?.status, "ok", probe.stdout + probe.stderr);

  // NODE_OPTIONS' --import preloads (telemetry, say) run before the command, as without the snapshot: Node itself
  // skips them when it starts from one. Resolved from the working folder, in order, NODE_OPTIONS' first.
  writeFiles(root, {
    "preload-a.mjs": 'process.stdout.write("preloaded a\\n");\n',
    "preload-b.mjs": 'process.stdout.write("preloaded b\\n");\n',
  });
  const preloaded = spawnSync(
    process.execPath,
    ["--import", "./preload-b.mjs", ...blob, join(root, "bin", "llm-gateway.js"), "--version"],
    { cwd: root, env: { ...env, NODE_OPTIONS: "--import=./preload-a.mjs" }, encoding: "utf8" },
  );
  assert.equal(preloaded.status, 0, preloaded.stderr);
  assert.match(preloaded.stdout, /^preloaded a\npreloaded b\nllm-gateway \d/);

  // A --loader / --experimental-loader: Node skips it from a snapshot too, and the snapshot's modules are loaded
  // already, so the start falls back to bin/llm-gateway.js with the loader registered, and says so. The loader must
  // see the modules load, as without the snapshot.
  writeFiles(root, {
    "loader.mjs":
      'import { writeSync } from "node:fs";\nexport async function resolve(specifier, context, next) {\n  if (specifier.endsWith("main.js")) writeSync(1, "loader saw " + specifier + "\\n");\n  return next(specifier, context);\n}\n',
  });
  const withLoader = spawnSync(process.execPath, [...blob, join(root, "bin", "llm-gateway.js"), "--version"], {
    cwd: root,
    env: { ...env, NODE_OPTIONS: "--loader ./loader.mjs" },
    encoding: "utf8",
  });
  assert.equal(withLoader.status, 0, withLoader.stderr);
  assert.match(withLoader.stdout, /^loader saw \.\.\/dist\/main\.js$/m);
  assert.match(withLoader.stdout, /^llm-gateway \d/m);
  assert.match(withLoader.stderr, /--experimental-loader is set, which Node skips .*: started without the snapshot/);

  // LLM_GATEWAY_BUNDLE=0 runs the sources, as bin/llm-gateway.js does, though the blob holds the bundle's heap.
  const fromSources = await serveThroughBin(t, root, configPath, { ...env, LLM_GATEWAY_BUNDLE: "0" }, blob);
  assert.equal(code(fromSources), "sources");
  await fromSources.stop();

  // A blob another Node built (Node would exit with code 14): the prestart build replaces it.
  const stale = record(root);
  writeFileSync(join(root, "dist", "snapshot.json"), JSON.stringify({ ...stale, node: { version: "v0.0.0" } }));
  const prestart = buildBundle(root, ["--if-stale"]);
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.equal(record(root).kind, "full");
  assert.equal(record(root).node?.version, process.version);

  // The container: the image's runtime stage runs bin/warm-caches.js over the dist/ its build stage made, then its CMD,
  // which must start from that snapshot as npm start does.
  const warm = spawnSync(process.execPath, [join(root, "bin", "warm-caches.js")], {
    cwd: root,
    env: { ...env, NODE_COMPILE_CACHE: join(root, "compile-cache") },
    encoding: "utf8",
  });
  assert.equal(warm.status, 0, warm.stderr);
  const command = /^CMD (\[.*\])$/m.exec(readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8"))?.[1];
  const [node, ...nodeArgs] = JSON.parse(command ?? "[]") as string[];
  assert.equal(node, "node");
  assert.deepEqual(nodeArgs.slice(-2), ["bin/llm-gateway.js", "serve"]);
  const inContainer = await serveThroughBin(t, root, configPath, env, nodeArgs.slice(0, -2));
  assert.equal(code(inContainer), "snapshot");
  await inContainer.stop();
});

test("without a bundle (LLM_GATEWAY_BUNDLE=0 at the prestart), npm start gets a blob of Node alone that runs bin/llm-gateway.js", async (t) => {
  const root = projectCopy(t, "project", LINKED);
  rmSync(join(root, "dist"), { recursive: true, force: true });
  // What a snapshot build interrupted in dist/ (Ctrl-C at npm start's prestart) left: its blob (~8 MB) and files.
  const leftovers = ["snapshot.blob.999999.tmp", "snapshot-config.999999.json", "snapshot-node-only.999999.cjs"];
  cpSync(join(REPO_ROOT, "package.json"), join(root, "dist", leftovers[0] ?? ""));
  for (const name of leftovers.slice(1)) writeFileSync(join(root, "dist", name), "{}");
  const prestart = spawnSync(process.execPath, [join(root, "bin", "build.js"), "--if-stale", "--quiet"], {
    cwd: root,
    env: { ...env, LLM_GATEWAY_BUNDLE: "0" },
    encoding: "utf8",
  });
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.equal(record(root).kind, "node-only");
  assert.deepEqual(
    leftovers.filter((name) => existsSync(join(root, "dist", name))),
    [],
  );
  const version = spawnSync(
    process.execPath,
    ["--snapshot-blob", join(root, "dist", "snapshot.blob"), join(root, "bin", "llm-gateway.js"), "--version"],
    { cwd: root, env, encoding: "utf8" },
  );
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, /^llm-gateway \d+\.\d+\.\d+/);

  // A blob cut short or emptied (a full disk, a copy interrupted): Node crashes on it (SIGSEGV, or an assertion),
  // so the prestart build does not take it as one this Node can start.
  writeFileSync(join(root, "dist", "snapshot.blob"), "");
  const again = spawnSync(process.execPath, [join(root, "bin", "build.js"), "--if-stale", "--quiet"], {
    cwd: root,
    env: { ...env, LLM_GATEWAY_BUNDLE: "0" },
    encoding: "utf8",
  });
  assert.equal(again.status, 0, again.stderr);
  const afterEmptied = spawnSync(
    process.execPath,
    ["--snapshot-blob", join(root, "dist", "snapshot.blob"), join(root, "bin", "llm-gateway.js"), "--version"],
    { cwd: root, env, encoding: "utf8" },
  );
  assert.equal(afterEmptied.status, 0, afterEmptied.stderr.slice(0, 300));
});

test("the dashboard page, read when the snapshot is built: once it changes, a start runs the sources and the prestart build makes a new snapshot", async (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  // A copy of the sources: the page's time is changed below.
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  assert.equal(buildBundle(root).status, 0);
  const configPath = writeFiles(root, {
    "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\nlog:\n  format: json\nproviders:\n  - name: p\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n    models:\n      m: {}\nstate:\n  path: ":memory:"\n`,
  });
  const blob = ["--snapshot-blob", join(root, "dist", "snapshot.blob")];
  // Edited after the build (not later than now: a file from the future is newer than any build).
  const now = new Date();
  utimesSync(join(root, "src", "server", "dashboard.html"), now, now);
  const fromSources = await serveThroughBin(t, root, configPath, env, blob);
  assert.equal(code(fromSources), "sources");
  await fromSources.stop();

  const prestart = buildBundle(root, ["--if-stale"]);
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.match(prestart.stdout, /start-up snapshot built/);
  const rebuilt = await serveThroughBin(t, root, configPath, env, blob);
  assert.equal(code(rebuilt), "snapshot");
  await rebuilt.stop();

  // The scripts that write dist/ shape what it holds (the snapshot's stand-ins, the bundle's plugins): one changed
  // since the build (a git pull with a fix to them) makes the prestart build build again, not keep the old blob.
  const later = new Date();
  utimesSync(join(root, "bin", "build-snapshot.js"), later, later);
  const afterPull = buildBundle(root, ["--if-stale"]);
  assert.equal(afterPull.status, 0, afterPull.stderr);
  assert.match(afterPull.stdout, /^dist\/: \d+ modules/m);
});

test("a blob of Node alone left by LLM_GATEWAY_BUNDLE=0 over a fresh dist/: the next prestart builds the snapshot, warning of no failure", (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  assert.equal(buildBundle(root).status, 0);
  // The page edited: dist/ is fresh, its snapshot is not; a start with the bundle off leaves a blob of Node alone.
  const now = new Date();
  utimesSync(join(root, "src", "server", "dashboard.html"), now, now);
  const bundleOff = spawnSync(process.execPath, [join(root, "bin", "build.js"), "--if-stale", "--quiet"], {
    cwd: root,
    env: { ...env, LLM_GATEWAY_BUNDLE: "0" },
    encoding: "utf8",
  });
  assert.equal(bundleOff.status, 0, bundleOff.stderr);
  assert.equal(record(root).kind, "node-only");
  // Before: the prestart kept that blob for good (every start without the snapshot), saying a build had failed.
  const prestart = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.doesNotMatch(prestart.stderr, /warning/);
  assert.equal(record(root).kind, "full");
});
