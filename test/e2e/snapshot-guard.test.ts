// The start-up snapshot's load-time guard (bin/snapshot-guard.js): a module that draws a UUID when it loads ends the
// snapshot build with a message naming the call and the module, and `npm run build` fails (exit 1, said loudly); npm
// start's prestart (--if-stale) warns, and the start runs dist/ from a blob of Node alone. (The real build, with the
// guard, is full: test/e2e/snapshot-start.test.ts.) And what the guard is for: two processes started from the same
// blob give out different ids.
import assert from "node:assert/strict";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT, writeFiles } from "../helpers/cli-process.ts";
import { useMock } from "../helpers/e2e.ts";
import { serveThroughBin } from "../helpers/served-entry.ts";

/** A copy of the project whose `serve` imports a module that calls randomUUID() when it loads. */
function projectCallingAtLoad(t: TestContext): string {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  copyFileSync(
    join(REPO_ROOT, "test", "fixtures", "snapshot-guard", "load-time-uuid.ts"),
    join(root, "src", "load-time-uuid.ts"),
  );
  const serve = join(root, "src", "cli", "serve.ts");
  writeFileSync(serve, `import "../load-time-uuid.ts";\n${readFileSync(serve, "utf8")}`);
  return root;
}

/** node_modules as `npm ci --omit=dev` leaves it: every package of this checkout's but esbuild. */
function linkProductionPackages(root: string): void {
  mkdirSync(join(root, "node_modules"));
  for (const name of readdirSync(join(REPO_ROOT, "node_modules"))) {
    if (name === "esbuild" || name === "@esbuild") continue;
    symlinkSync(join(REPO_ROOT, "node_modules", name), join(root, "node_modules", name));
  }
}

const snapshotKind = (root: string) =>
  (JSON.parse(readFileSync(join(root, "dist", "snapshot.json"), "utf8")) as { kind?: string }).kind;

test("a module calling randomUUID() at load ends the snapshot build, naming the call and the module; npm run build fails", (t) => {
  const root = projectCallingAtLoad(t);
  const build = buildBundle(root);
  // Before, the build exited 0: a Dockerfile's or CI's `npm run build` went on with no snapshot, and no one saw it.
  assert.equal(build.status, 1, build.stderr);
  assert.match(build.stderr, /BUILD FAILED: the start-up snapshot could not be built/);
  assert.match(build.stderr, /no start-up snapshot: load-time calls while the start-up snapshot was built/);
  // The call's place in the sources (not the minified script's), and the module that imported it.
  assert.match(
    build.stderr,
    /^crypto\.randomUUID\(\)\n\s+at src\/load-time-uuid\.ts:5:\d+\n\s+at src\/cli\/serve\.ts:1:1$/m,
  );
  assert.equal(snapshotKind(root), "node-only");
});

test("npm start's prestart with a module calling randomUUID() at load warns, and the start runs dist/ without the snapshot", async (t) => {
  const root = projectCallingAtLoad(t);
  const prestart = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.match(prestart.stderr, /no start-up snapshot: load-time calls while the start-up snapshot was built/);
  assert.match(prestart.stderr, /warning: the gateway starts from dist\/ without a start-up snapshot/);
  assert.equal(snapshotKind(root), "node-only");
  // The next start's prestart finds dist/ up to date, and says again that it has no snapshot.
  const next = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(next.status, 0, next.stderr);
  assert.match(next.stderr, /warning: dist\/ has no start-up snapshot/);
  // As npm start runs it: from the blob of Node alone, which runs bin/llm-gateway.js, which runs dist/.
  const served = await serveFromBlob(t, root);
  assert.match(served.stdout(), /"code":"bundle"/);
  const response = await fetch(`${served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Say hello" }] }),
  });
  assert.equal(response.status, 200, await response.text());
  await served.stop();
});

function configFor(baseUrl: string, root: string): string {
  return `server:\n  port: 0\n  host: 127.0.0.1\nlog:\n  format: json\nproviders:\n  - name: mock\n    base_url: ${baseUrl}\n    api_key: mock-key\n    models:\n      m: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(root, "discovery"))}\nstate:\n  path: ":memory:"\n`;
}

/** `root` served as `npm start` and the image run it: from dist/'s blob, which runs bin/llm-gateway.js, over a mock. */
async function serveFromBlob(t: TestContext, root: string) {
  const mock = await useMock(t);
  const configPath = writeFiles(root, { "config.yaml": configFor(mock.baseUrl, root) });
  const env = { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" };
  return await serveThroughBin(t, root, configPath, env, ["--snapshot-blob", join(root, "dist", "snapshot.blob")]);
}

test("two processes started from the same blob give their first requests different ids", async (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const build = buildBundle(root);
  assert.equal(build.status, 0, build.stderr);
  const mock = await useMock(t);
  const configPath = writeFiles(root, {
    "config.yaml": configFor(mock.baseUrl, root),
  });
  const env = { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" };
  const firstIds = async (): Promise<{ responseId: unknown; requestRandom: string }> => {
    const served = await serveThroughBin(t, root, configPath, env, [
      "--snapshot-blob",
      join(root, "dist", "snapshot.blob"),
    ]);
    assert.match(served.stdout(), /"code":"snapshot"/);
    const response = await fetch(`${served.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", input: "Say hello" }),
    });
    const body = (await response.json()) as { id?: unknown };
    assert.equal(response.status, 200, JSON.stringify(body));
    // req-<pid>-<time>-<counter>-<11 random base64url characters> (src/server/build-server.ts).
    const requestRandom = (response.headers.get("x-request-id") ?? "").slice(-11);
    await served.stop();
    return { responseId: body.id, requestRandom };
  };
  const first = await firstIds();
  const second = await firstIds();
  assert.match(String(first.responseId), /^resp_[0-9a-f]{32}$/);
  assert.notEqual(first.responseId, second.responseId);
  assert.equal(first.requestRandom.length, 11);
  assert.notEqual(first.requestRandom, second.requestRandom);
});

test("npm run build without esbuild (npm ci --omit=dev) fails, saying so; npm start's prestart goes on from the sources", (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "package.json"]);
  linkProductionPackages(root);
  const build = buildBundle(root);
  // Before: exit 0, no bundle and no snapshot built (a build asked for that built nothing went unseen).
  assert.equal(build.status, 1, build.stdout);
  assert.match(build.stdout, /esbuild is not installed/);
  const prestart = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(prestart.status, 0, prestart.stderr);
  assert.match(prestart.stdout, /esbuild is not installed/);
  assert.equal(snapshotKind(root), "node-only");
});

test("--no-snapshot (the Dockerfile's SNAPSHOT=skip) builds dist/ with a blob of Node alone and exits 0; its start runs dist/", async (t) => {
  // A project whose snapshot cannot be built: asked for none, nothing fails, and no snapshot build is tried.
  const root = projectCallingAtLoad(t);
  const build = buildBundle(root, ["--no-snapshot"]);
  // Before: the option was unknown, the snapshot was built and failed (exit 1), as an emulated cross-arch build's does.
  assert.equal(build.status, 0, build.stderr);
  assert.doesNotMatch(build.stderr, /load-time calls|BUILD FAILED/);
  assert.match(build.stdout, /--no-snapshot: no start-up snapshot; the gateway starts from dist\//);
  assert.equal(snapshotKind(root), "node-only");
  // The image's runtime stage has no esbuild: its bin/warm-caches.js (--if-stale) keeps dist/ and the blob, no warning.
  rmSync(join(root, "node_modules"));
  linkProductionPackages(root);
  const warm = buildBundle(root, ["--if-stale", "--quiet"]);
  assert.equal(warm.status, 0, warm.stderr);
  assert.doesNotMatch(`${warm.stdout}${warm.stderr}`, /warning|esbuild is not installed/);
  assert.equal(snapshotKind(root), "node-only");
  // As the image's command runs it: the blob of Node alone runs bin/llm-gateway.js, which runs dist/.
  const served = await serveFromBlob(t, root);
  assert.match(served.stdout(), /"code":"bundle"/);
  await served.stop();
});
