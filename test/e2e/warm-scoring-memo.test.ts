// bin/warm-caches.js writes the scoring memo's entries (src/scoring/scoring-memo.ts) of the configs a first start
// builds: `npm run demo`'s, the default config file's and one named by LLM_GATEWAY_CONFIG at that moment, so that a
// new container's or checkout's first start loads no scoring data (+3.3 MB idle RSS and ~40 ms for the process's
// life when it does: bench/README.md section 43). A start that had to compute an entry writes the memo again
// (persist, by a rename: another inode); one whose lookups were all there leaves the file alone.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { promisify } from "node:util";
import { projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT, writeFiles } from "../helpers/cli-process.ts";
import { useMock } from "../helpers/e2e.ts";
import { closeWhenTestEnds } from "../helpers/late-start.ts";
import { serveThroughBin } from "../helpers/served-entry.ts";

const START_TIMEOUT_MS = 20_000;

/** The memo file's identity: a rewrite renames a new file into place. */
function memoWrite(root: string): string {
  const stat = statSync(join(root, "data", "cache", "scoring-memo.json"));
  return `${stat.ino}:${stat.mtimeMs}`;
}

/** `bin/llm-gateway.js demo` on a port of its own, stopped once it has printed its banner (its first snapshot built). */
async function startDemo(t: TestContext, root: string, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, [join(root, "bin", "llm-gateway.js"), "demo"], {
    cwd: root,
    env: { ...env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  await closeWhenTestEnds(t, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not started in time:\n${output}`)), START_TIMEOUT_MS);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("LLM Gateway demo")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with ${code}:\n${output}`));
    });
  });
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

test("bin/warm-caches.js leaves a memo that the first start of the default config, of LLM_GATEWAY_CONFIG's and of the demo hit", async (t) => {
  // A project of its own (the memo lives in the project's data/cache/), run from its sources.
  const root = projectCopy(t, "project", ["node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  for (const folder of ["leaderboards", "model-metadata"]) {
    cpSync(join(REPO_ROOT, "data", folder), join(root, "data", folder), { recursive: true });
  }
  const mock = await useMock(t, { models: [{ id: "llama-3.3-70b-versatile" }, { id: "acme-chat-8b" }] });
  const provider = (name: string, models: string) =>
    `  - name: ${name}\n    base_url: ${mock.baseUrl}\n    api_key: \${WARM_TEST_KEY}\n${models}`;
  const common = `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nstate:\n  path: ":memory:"\nproviders:\n`;
  // The default file: one provider discovered (GET /models at the warm-up, then from the discovery cache), one listed.
  mkdirSync(join(root, "config"));
  const defaultPath = writeFiles(root, {
    "config/meta-providers.yaml": `${common}${provider("found", "")}${provider("listed", "    models:\n      gpt-oss-120b: {}\n      acme-chat-2025-01-15: {}\n")}`,
  });
  const namedPath = writeFiles(root, {
    "named.yaml": `${common}${provider("named", "    models:\n      qwen-3-32b: {}\n      another-unknown-model: {}\n")}`,
  });
  const env = {
    PATH: process.env.PATH ?? "",
    NODE_NO_WARNINGS: "1",
    NODE_COMPILE_CACHE: join(root, "compile-cache"),
    LLM_GATEWAY_BUNDLE: "0",
    WARM_TEST_KEY: "sk-warm",
  };
  // Not spawnSync: the mock upstream answering the warm-up's discovery runs in this process.
  const warm = async (extra: NodeJS.ProcessEnv) => {
    const run = await promisify(execFile)(process.execPath, [join(root, "bin", "warm-caches.js")], {
      cwd: root,
      env: { ...env, ...extra },
      encoding: "utf8",
    });
    assert.equal(run.stderr, "");
    return run.stdout;
  };
  // As at build time: the default config, then (another build, or the same one with the variable set) a named one.
  assert.match(await warm({}), /scoring memo: demo 14 models, .*meta-providers\.yaml 4 models/);
  assert.match(await warm({ LLM_GATEWAY_CONFIG: namedPath }), /scoring memo: demo 14 models, .*named\.yaml 2 models/);
  assert.ok(existsSync(join(root, "data", "cache", "scoring-memo.json")));
  const warmed = memoWrite(root);

  // Each first start: its lookups all in the memo, nothing computed, the file not written again.
  const served = await serveThroughBin(t, root, defaultPath, env);
  assert.match(served.stdout(), /"models":4/);
  await served.stop();
  assert.equal(memoWrite(root), warmed, "the default config's first start missed the memo");
  const named = await serveThroughBin(t, root, namedPath, env);
  await named.stop();
  assert.equal(memoWrite(root), warmed, "LLM_GATEWAY_CONFIG's first start missed the memo");
  await startDemo(t, root, env);
  assert.equal(memoWrite(root), warmed, "the demo's first start missed the memo");

  // The control: without the warm-up's entries, the same start computes them and writes the memo.
  rmSync(join(root, "data", "cache", "scoring-memo.json"));
  const cold = await serveThroughBin(t, root, defaultPath, env);
  await cold.stop();
  const entries = Object.keys(
    (JSON.parse(readFileSync(join(root, "data", "cache", "scoring-memo.json"), "utf8")) as { entries: object }).entries,
  );
  assert.ok(entries.some((key) => key.startsWith('["profile","found","llama-3.3-70b-versatile"')));
});

test("bin/warm-caches.js skips a config whose first snapshot cannot be built (its adjustments file missing at build time) and still succeeds", async (t) => {
  const root = projectCopy(t, "project", ["node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  for (const folder of ["leaderboards", "model-metadata"]) {
    cpSync(join(REPO_ROOT, "data", folder), join(root, "data", folder), { recursive: true });
  }
  // It loads (keys set, schema valid), but names an adjustments file mounted only at run time: its snapshot throws.
  const configPath = writeFiles(root, {
    "mounted.yaml":
      'server:\n  port: 0\n  host: 127.0.0.1\nstate:\n  path: ":memory:"\nscoring:\n  adjustments_file: /run/not-yet-mounted.yaml\n' +
      "providers:\n  - name: listed\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-warm\n    models:\n      gpt-oss-120b: {}\n",
  });
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(root, "bin", "warm-caches.js"), "--config", configPath],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", LLM_GATEWAY_BUNDLE: "0" },
        encoding: "utf8",
      },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : (error.code as number | null), stdout, stderr }),
    );
  });
  // A Docker build or npm run bench is not failed by it: said, skipped, the demo's entries written all the same.
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /scoring memo: demo 14 models, .*mounted\.yaml not warmed \(.*file not found\)/);
  const entries = Object.keys(
    (JSON.parse(readFileSync(join(root, "data", "cache", "scoring-memo.json"), "utf8")) as { entries: object }).entries,
  );
  assert.ok(entries.length > 0);
});
