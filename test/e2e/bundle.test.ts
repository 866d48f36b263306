// The bundle `npm start`, the container and the benchmark start from (bin/build.js -> dist/): built in a copy of
// the project (its own dist/, the sources and packages linked), warmed as the Dockerfile does, then started
// through bin/llm-gateway.js. Everything a start reads by path must be found from dist/ (presets, the dashboard
// page, the shipped data), undici must be one copy, and the compile cache must hold the bundle's modules.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { bundleState } from "../../bin/start-entry.js";
import { projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT, writeFiles } from "../helpers/cli-process.ts";
import { useMock } from "../helpers/e2e.ts";
import { serveThroughBin } from "../helpers/served-entry.ts";

const execFileAsync = promisify(execFile);

test("the bundle serves chat, a preset, the dashboard and /metrics, from its own compile-cache entries", async (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const cacheDir = join(root, "compile-cache");
  const env = { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", NODE_COMPILE_CACHE: cacheDir };

  const build = spawnSync(process.execPath, [join(root, "bin", "build.js")], { cwd: root, env, encoding: "utf8" });
  assert.equal(build.status, 0, build.stderr);
  assert.match(build.stdout, /^dist\/: \d+ modules/m);
  assert.deepEqual(bundleState(root, {}), { isFresh: true, reason: "built from the current sources", restamp: [] });
  // ASCII only, the start-up snapshot's script too: one character above it makes V8 hold the file's whole source as
  // two-byte text (bin/bundle-plugins.js nonAsciiOutputs; esbuild's charset leaves regular expressions as written).
  for (const file of readdirSync(join(root, "dist")).filter((name) => /\.c?js$/.test(name))) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
    assert.doesNotMatch(readFileSync(join(root, "dist", file), "latin1"), /[^\x00-\x7f]/, file);
  }
  // undici's HTTP/1 parser (WebAssembly as base64 text, ~72 KB for each of its two builds) is required at the first
  // upstream connection: its bytes are files of their own (bin/bundle-plugins.js llhttpApart), in no module a start
  // loads, the snapshot's script included (whose source is held twice, in the blob and in the heap). The chat
  // requests below read one through the bundle's require.
  const wasmText = "AGFzbQ"; // "\0asm", WebAssembly's magic number, in base64
  const withWasm = readdirSync(join(root, "dist")).filter(
    (name) => /\.c?js$/.test(name) && readFileSync(join(root, "dist", name), "latin1").includes(wasmText),
  );
  assert.deepEqual(withWasm, [], "no module of dist/ holds llhttp's WebAssembly");
  for (const name of ["undici-llhttp-wasm.wasm", "undici-llhttp_simd-wasm.wasm"]) {
    assert.equal(
      readFileSync(join(root, "dist", name))
        .subarray(0, 4)
        .toString("latin1"),
      "\0asm",
      name,
    );
  }
  const manifest = JSON.parse(readFileSync(join(root, "dist", "build.json"), "utf8")) as {
    sources: string[];
    packages: Record<string, unknown>;
  };
  assert.ok(manifest.sources.some((path) => path.endsWith("src/pipeline/handle-request.ts")));
  assert.ok(Object.keys(manifest.packages).some((dir) => dir.endsWith("node_modules/fastify")));
  // undici is bundled (one copy, with its http2 stand-in); what loads only when used is not.
  assert.ok(Object.keys(manifest.packages).some((dir) => dir.endsWith("node_modules/undici")));
  assert.ok(!Object.keys(manifest.packages).some((dir) => /node_modules\/(prom-client|ioredis)$/.test(dir)));

  // zod's English messages (the other locales are left out of the bundle): a config error reads the same from the
  // bundle as from the sources.
  const badConfig = writeFiles(root, { "bad.yaml": 'server:\n  port: "abc"\nproviders: []\n' });
  const check = (bundle: "1" | "0") =>
    spawnSync(process.execPath, [join(root, "bin", "llm-gateway.js"), "check", "--config", badConfig], {
      cwd: root,
      env: { ...env, LLM_GATEWAY_BUNDLE: bundle },
      encoding: "utf8",
    });
  const fromBundle = check("1");
  assert.equal(fromBundle.status, 2, fromBundle.stderr);
  assert.match(fromBundle.stderr, /server\.port: Invalid input: expected number, received string/);
  assert.equal(fromBundle.stderr, check("0").stderr);

  const warm = spawnSync(process.execPath, [join(root, "bin", "warm-caches.js")], { cwd: root, env, encoding: "utf8" });
  assert.equal(warm.status, 0, warm.stderr);
  assert.match(warm.stdout, /caches warm: bundle/);

  const mock = await useMock(t);
  const configPath = writeFiles(root, {
    "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nlog:\n  format: json\nproviders:\n  - preset: groq\n    base_url: ${mock.baseUrl}\n    api_key: gsk-test\n    models:\n      m: {}\n  - name: down\n    base_url: http://127.0.0.1:9/v1\n    api_key: down-key\n    models:\n      down-model: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(root, "discovery"))}\nstate:\n  path: ":memory:"\n`,
  });
  // `providers` loads its HTTP client only when run. From the bundle, `import("undici")` gave a namespace without
  // undici's named exports: every probe failed with a TypeError, shown as "unreachable". (Not spawnSync: the mock
  // answers from this process.)
  const probed = await execFileAsync(
    process.execPath,
    [join(root, "bin", "llm-gateway.js"), "providers", "--config", configPath],
    { cwd: root, env: { ...env, LLM_GATEWAY_BUNDLE: "1" }, encoding: "utf8" },
  ).then(
    (done) => ({ ...done, code: 0 }),
    (error: unknown) => error as { code?: unknown; stdout?: string; stderr?: string },
  );
  assert.equal(probed.code, 1, `${probed.stdout}\n${probed.stderr}`); // `down` does not answer
  assert.match(probed.stdout ?? "", /^groq +ok +\d+ ms +\d+ models/m);
  assert.match(probed.stdout ?? "", /^down +unreachable +\d+ ms +ECONNREFUSED/m);
  assert.ok(
    mock.requests.some((request) => request.path === "/v1/models"),
    "the probe reached the mock",
  );

  const builtinsPath = join(root, "loaded-builtins.txt");
  const served = await serveThroughBin(t, root, configPath, {
    ...env,
    NODE_OPTIONS: `--import=${pathToFileURL(join(REPO_ROOT, "test", "helpers", "loaded-builtins.mjs")).href}`,
    LOADED_BUILTINS_PATH: builtinsPath,
  });
  // Idle: Fastify's and undici's `node:http2` / `node:https` are stand-ins until used (bin/build.js), so neither
  // they nor `tls` are loaded; nor `node:assert`, which the packages call only on conditions that hold
  // (bin/lazy-assert.cjs); nor `fs/promises` and readline, which an ES import of `node:fs` loads
  // (src/async-fs.ts, bin/build.js).
  served.child.kill("SIGUSR2");
  const builtins = await waitForFile(builtinsPath);
  assert.ok(builtins.includes("\nhttp\n"), "the list holds what is loaded");
  for (const name of ["http2", "https", "tls", "assert", "internal/fs/promises", "internal/readline/interface"]) {
    assert.ok(!builtins.includes(`\n${name}\n`), `${name} is loaded`);
  }
  // The Responses and Messages doors, and the Files and Batch routes, load at their first request
  // (src/server/lazy-routes.ts): an idle gateway has read none of their code, neither their own files nor their
  // sources inside any file it loaded (told by the source maps).
  const lazyFiles = (manifest as { lazyFiles?: string[] }).lazyFiles ?? [];
  // Their own files, and any chunk only they use.
  assert.ok(
    lazyFiles.some((file) => /^protocol-routes-\w+\.js$/.test(file)),
    lazyFiles.join(" "),
  );
  assert.ok(
    lazyFiles.some((file) => /^batch-routes-\w+\.js$/.test(file)),
    lazyFiles.join(" "),
  );
  const idleFiles = loadedDistFiles(served.debug());
  assert.ok(idleFiles.has("main.js") && idleFiles.size > 10, [...idleFiles].join(" "));
  for (const file of lazyFiles) assert.ok(!idleFiles.has(file), `${file} is loaded`);
  const doorSources =
    /src\/(server\/(protocol-routes|protocol-adapters|messages-adapter|responses-adapter|conversation-routes|batch-routes)|protocols\/(messages|responses)\/(stream-mapping|response-mapping)|protocols\/responses\/(stream-events|stream-message-item|stream-reasoning-item|stream-tool-call-items)|pipeline\/(batch-runner|active-batch|batch-activation|batch-end|batch-line-order|batch-line-run|batch-results))\.ts$/;
  for (const file of idleFiles) {
    const map = JSON.parse(readFileSync(join(root, "dist", `${file}.map`), "utf8")) as { sources: string[] };
    assert.deepEqual(
      map.sources.filter((source) => doorSources.test(source)),
      [],
      `${file}, loaded by an idle gateway, holds a lazy door's code`,
    );
  }
  // The chat pipeline (src/server/forwarding-route.ts) loads at the first request, and the packages a dependency
  // requires at load but calls only for features the gateway does not use (semver, thread-stream, proxy-addr) are
  // stand-ins until used (bin/lazy-packages.js): an idle gateway has read none of them, from dist/ or from
  // node_modules.
  const firstUse =
    /src\/pipeline\/handle-request\.ts$|node_modules\/(semver|thread-stream|@fastify\/proxy-addr|ipaddr\.js)\//;
  const idleSources = sourcesOf(root, idleFiles);
  assert.ok(
    idleSources.some((source) => source.endsWith("src/pipeline/endpoints.ts")),
    "the maps name the sources",
  );
  assert.deepEqual(
    // The stand-ins themselves are named `lazy-package:<path>` in the maps.
    idleSources.filter((source) => !source.startsWith("lazy-package:") && firstUse.test(source)),
    [],
    "an idle gateway loaded code it needs only at a first request, or never",
  );
  assert.doesNotMatch(served.debug(), /node_modules\/(semver|thread-stream|@fastify\/proxy-addr|ipaddr\.js)\//);
  // Each stand-in requires its package by a path relative to dist/: one that does not resolve would fail only the
  // first use of the feature (a trusted proxy, a pino transport, a plugin's Fastify version).
  const standInPaths = readdirSync(join(root, "dist"))
    .filter((file) => file.endsWith(".js"))
    .flatMap((file) => [...readFileSync(join(root, "dist", file), "utf8").matchAll(/"(\.\.\/node_modules\/[^"]+)"/g)])
    .map((match) => match[1] as string);
  assert.deepEqual([...new Set(standInPaths.map((path) => path.split("/").slice(2, -1).join("/")))].sort(), [
    "@fastify/proxy-addr",
    "semver",
    "thread-stream",
  ]);
  for (const path of standInPaths) assert.ok(existsSync(join(root, "dist", path)), `${path} does not resolve`);
  const listening = served
    .stdout()
    .split("\n")
    .find((line) => line.includes("listening on http"));
  assert.equal((JSON.parse(listening ?? "{}") as { code?: unknown }).code, "bundle");
  const url = served.url;

  const chat = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Say hello" }] }),
  });
  const answer = (await chat.json()) as { choices?: { message?: { content?: unknown } }[] };
  assert.equal(chat.status, 200, JSON.stringify(answer));
  assert.equal(typeof answer.choices?.[0]?.message?.content, "string");
  assert.equal(chat.headers.get("x-gateway-provider"), "groq");
  // The minified bundle keeps the error classes' names for the logs (src/errors/gateway-error.ts, ERROR_CLASSES).
  const down = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "down-model", messages: [{ role: "user", content: "Say hello" }] }),
  });
  assert.equal(down.status, 502, await down.text());
  // The log line may reach the pipe a moment after the answer.
  let logged: string | undefined;
  for (let tries = 0; tries < 100 && logged === undefined; tries++) {
    logged = served
      .stdout()
      .split("\n")
      .find((line) => line.includes("No upstream could serve"));
    if (logged === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The line names the class (no stack: every upstream failing is an outcome, not a fault in the code).
  assert.match(logged ?? "", /"type":"UpstreamUnavailableError"/);
  const dashboard = await fetch(`${url}/dashboard`);
  assert.equal(dashboard.status, 200);
  assert.match(await dashboard.text(), /^<!doctype html>/i);
  const scrape = await fetch(`${url}/metrics`);
  assert.equal(scrape.status, 200);
  assert.match(await scrape.text(), /llm_gateway_requests_total\{[^}]*provider="groq"/);
  // A lazy door from the bundle: its first request loads it (a Messages answer in Anthropic's shape).
  const messages = await fetch(`${url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "Say hello" }] }),
  });
  const message = (await messages.json()) as { type?: unknown; content?: { text?: unknown }[] };
  assert.equal(messages.status, 200, JSON.stringify(message));
  assert.equal(message.type, "message");
  assert.equal(typeof message.content?.[0]?.text, "string");
  // And the Files routes' (a listing, empty).
  const files = await fetch(`${url}/v1/files`);
  assert.equal(files.status, 200);
  assert.deepEqual(((await files.json()) as { data?: unknown }).data, []);
  for (const file of lazyFiles) assert.ok(loadedDistFiles(served.debug()).has(file), `${file} was not loaded`);
  assert.ok(
    sourcesOf(root, loadedDistFiles(served.debug())).some((source) =>
      source.endsWith("src/pipeline/handle-request.ts"),
    ),
    "the chat requests loaded the pipeline",
  );
  const debug = await served.stop();

  const accepted = debug.match(/V8 code cache for .* was accepted/g) ?? [];
  assert.deepEqual(
    debug.match(/V8 code cache for .* was rejected/g) ?? [],
    [],
    "modules whose cached code was thrown away",
  );
  assert.ok(
    accepted.some((line) => line.includes("/dist/chunk-")),
    "the bundle's chunks did not come from the cache",
  );
  assert.deepEqual(
    debug.match(/for ESM file:\S+\.ts\b/g) ?? [],
    [],
    "a start from the bundle loaded TypeScript sources",
  );
});

/** The sources bundled into these files of dist/ (from their source maps). */
function sourcesOf(root: string, files: Iterable<string>): string[] {
  return [...files].flatMap(
    (file) => (JSON.parse(readFileSync(join(root, "dist", `${file}.map`), "utf8")) as { sources: string[] }).sources,
  );
}

/** The files of dist/ the process has loaded, from Node's compile-cache report (one line per file it read). */
function loadedDistFiles(debug: string): Set<string> {
  return new Set([...debug.matchAll(/file:\/\/\S*?\/dist\/([\w.-]+?\.js)\b/g)].map((match) => match[1] as string));
}

async function waitForFile(path: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      return `\n${readFileSync(path, "utf8")}`;
    } catch {
      await sleep(20);
    }
  }
  throw new Error(`${path} was not written`);
}

test("a build that fails leaves no bundle, and does not stop a start (--if-stale exits 0)", (t) => {
  const root = projectCopy(t, "broken", ["node_modules"]);
  mkdirSync(join(root, "src", "cli"), { recursive: true });
  writeFiles(root, {
    "src/main.ts": "export const broken: number = ;\n",
    "src/cli/start-up-holds.ts": "export {};\n",
    "src/cli/warm-scoring-data.ts": "export {};\n",
  });
  const build = (args: readonly string[]) =>
    spawnSync(process.execPath, [join(root, "bin", "build.js"), ...args], { cwd: root, encoding: "utf8" });
  const plain = build([]);
  assert.equal(plain.status, 1, plain.stderr);
  assert.match(plain.stderr, /no bundle built; the gateway runs its sources/);
  assert.equal(build(["--if-stale", "--quiet"]).status, 0);
  // dist/ holds no bundle, only the blob of Node alone that `npm start` needs (bin/build-snapshot.js).
  assert.deepEqual(readdirSync(root).sort(), ["bin", "dist", "node_modules", "src"], "a staging folder is left");
  assert.deepEqual(readdirSync(join(root, "dist")).sort(), ["snapshot.blob", "snapshot.json"]);
});
