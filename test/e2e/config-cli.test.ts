// The config file as users write it, and `llm-gateway serve` as a real process: keys from the environment and
// `.env`, providers skipped (with a warning) when their key is unset, and config errors that stop startup with
// exit code 2 and every problem as `file:line key.path: message`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import { type CliResult, MAIN, REPO_ROOT, runCli } from "../helpers/cli-process.ts";
import { chatRequests, HELLO, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

const EXIT_WITH_PARENT = join(REPO_ROOT, "test", "helpers", "exit-with-parent.ts");
const CHILD_TIMEOUT_MS = 20_000;

/**
 * Providers whose keys come from the environment: alpha by `api_key_env_var`, beta by `${BETA_API_KEY}`, gamma by
 * an `api_key_env_var` the tests leave unset (skipped with a warning).
 */
function keyedProviders(alpha: MockUpstream, beta: MockUpstream): string {
  return `  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key_env_var: ALPHA_API_KEY
    models:
      alpha-model: {}
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: \${BETA_API_KEY}
    models:
      beta-model: {}
  - name: gamma
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: GAMMA_API_KEY
    models:
      gamma-model: {}
`;
}

/** A provider whose `${DELTA_API_KEY}` the tests leave unset. */
const DELTA_UNSET = `  - name: delta
    base_url: http://127.0.0.1:9/v1
    api_key: \${DELTA_API_KEY}
    models:
      delta-model: {}
`;

describe("keys in the config", () => {
  test("api_key_env_var and an interpolated api_key both resolve; a provider whose key is unset is skipped with a warning", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
${keyedProviders(alpha, beta)}${DELTA_UNSET}`,
      { env: { ALPHA_API_KEY: "sk-from-env-alpha", BETA_API_KEY: "sk-from-env-beta" } },
    );

    assert.equal((await postChat(gateway, { model: "alpha-model" })).status, 200);
    assert.equal((await postChat(gateway, { model: "beta-model" })).status, 200);
    assert.equal(chatRequests(alpha)[0]?.headers.authorization, "Bearer sk-from-env-alpha");
    assert.equal(chatRequests(beta)[0]?.headers.authorization, "Bearer sk-from-env-beta");

    const gammaWarning = gateway.warnings.find((warning) => warning.includes('"gamma"'));
    assert.match(gammaWarning ?? "", /skipped/);
    assert.match(gammaWarning ?? "", /GAMMA_API_KEY/);
    const deltaWarning = gateway.warnings.find((warning) => warning.includes('"delta"'));
    assert.match(deltaWarning ?? "", /skipped/);
    assert.equal(gateway.warnings.length, 2, gateway.warnings.join("\n"));

    // A skipped provider's models do not exist for clients; /health says why.
    const unknown = await postChat(gateway, { model: "gamma-model" });
    assert.equal(unknown.status, 404, unknown.text);
    const health = (await send(gateway, "GET", "/health")).json as {
      providers: { up: string[]; skipped: { name: string; reason: string }[] };
    };
    assert.deepEqual(health.providers.up, ["alpha", "beta"]);
    assert.deepEqual(health.providers.skipped.map((entry) => entry.name).sort(), ["delta", "gamma"]);
  });
});

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(dir: string, text: string): string {
  const path = join(dir, "bad.yaml");
  writeFileSync(path, text);
  return path;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Asserts exit code 2, no stack trace, and returns stderr's `file:line ...` lines. */
function configErrorLines(result: CliResult, path: string): string[] {
  assert.equal(result.code, 2, `exit code ${result.code}; stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\n\s+at |node:internal/, "a config error must not print a stack trace");
  return result.stderr.split("\n").filter((line) => line.startsWith(`${path}:`));
}

describe("config errors stop `serve` with exit code 2 and file:line key.path: message", () => {
  test("wrong types and unknown keys: every problem is listed, each at its own line", async (t) => {
    const dir = tempDir(t);
    const path = writeConfig(
      dir,
      `server:
  port: "eighty"
providers:
  - name: alpha
    base_ulr: http://127.0.0.1:1/v1
    api_key: k
    timeout_ms: -5
    models:
      some-model: { priority: high }
routing:
  max_atempts: 3
`,
    );
    const result = await runCli(["--config", path], { cwd: dir });
    const lines = configErrorLines(result, path);
    const at = escapeRegExp(path);
    const expected = [
      new RegExp(`^${at}:2 server\\.port: .+`),
      new RegExp(`^${at}:5 providers\\.0\\.base_ulr: unknown key "base_ulr"; did you mean "base_url"\\?$`),
      new RegExp(`^${at}:7 providers\\.0\\.timeout_ms: .+`),
      new RegExp(`^${at}:9 providers\\.0\\.models\\.some-model\\.priority: .+`),
      new RegExp(`^${at}:11 routing\\.max_atempts: unknown key "max_atempts"; did you mean "max_attempts"\\?$`),
    ];
    for (const pattern of expected) {
      assert.ok(
        lines.some((line) => pattern.test(line)),
        `no line matches ${pattern}; stderr:\n${result.stderr}`,
      );
    }
    assert.equal(lines.length, expected.length, result.stderr);
    assert.match(result.stderr, /5 problems/);
  });

  test("invalid YAML names the file and line", async (t) => {
    const dir = tempDir(t);
    const path = writeConfig(
      dir,
      `providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key: k
    api_key: again
`,
    );
    const result = await runCli(["--config", path], { cwd: dir });
    const lines = configErrorLines(result, path);
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? "", new RegExp(`^${escapeRegExp(path)}:5: .*unique`, "i"));

    const unclosed = writeConfig(dir, "providers: [\n  { name: alpha, base_url: http://127.0.0.1:1/v1\n");
    const second = await runCli(["--config", unclosed], { cwd: dir });
    const secondLines = configErrorLines(second, unclosed);
    assert.ok(secondLines.length >= 1, second.stderr);
    assert.match(secondLines[0] ?? "", new RegExp(`^${escapeRegExp(unclosed)}:\\d+: \\S`));
  });

  test("a duplicate provider name points at the second one; other cross-field problems are listed too", async (t) => {
    const dir = tempDir(t);
    const path = writeConfig(
      dir,
      `providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key: k
  - name: alpha
    base_url: http://127.0.0.1:2/v1
    api_key: k
meta_models:
  "fast,cheap": [alpha-model]
`,
    );
    const result = await runCli(["--config", path], { cwd: dir });
    const lines = configErrorLines(result, path);
    const at = escapeRegExp(path);
    assert.ok(
      lines.some((line) => new RegExp(`^${at}:5 providers\\.1\\.name: duplicate provider name "alpha"`).test(line)),
      result.stderr,
    );
    assert.ok(
      lines.some((line) => new RegExp(`^${at}:9 meta_models\\.fast,cheap: .+`).test(line)),
      result.stderr,
    );
  });

  test("an unknown preset, a duplicate name, a bad meta model name and $PORT are listed with the schema's problems, in file order", async (t) => {
    const dir = tempDir(t);
    const path = writeConfig(
      dir,
      `providers:
  - preset: grok
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key: k
  - name: alpha
    base_url: http://127.0.0.1:2/v1
    api_key: k
  - name: beta
    base_url: http://127.0.0.1:3/v1
    api_key: k
    timeout_ms: -5
routing:
  max_atempts: 3
meta_models:
  "a/b": [alpha-model]
`,
    );
    const at = escapeRegExp(path);
    for (const args of [
      ["check", "--config", path],
      ["--config", path],
    ]) {
      const result = await runCli(args, { cwd: dir, env: { PORT: "eighty" } });
      const lines = configErrorLines(result, path);
      const expected = [
        new RegExp(`^${at}:2 providers\\.0\\.preset: unknown preset "grok"; did you mean "groq"\\?`),
        new RegExp(`^${at}:6 providers\\.2\\.name: duplicate provider name "alpha"`),
        new RegExp(`^${at}:12 providers\\.3\\.timeout_ms: .+`),
        new RegExp(`^${at}:14 routing\\.max_atempts: unknown key "max_atempts"; did you mean "max_attempts"\\?$`),
        new RegExp(`^${at}:16 meta_models\\.a/b: .+`),
      ];
      assert.equal(lines.length, expected.length, result.stderr);
      for (const [index, pattern] of expected.entries()) assert.match(lines[index] ?? "", pattern, result.stderr);
      assert.match(result.stderr, /^environment PORT: not a port number: "eighty"$/m);
      assert.match(result.stderr, /6 problems/);
    }
  });

  test("a base_url left empty by an unset variable, or without a scheme: one problem each, naming the variable", async (t) => {
    const dir = tempDir(t);
    const path = writeConfig(
      dir,
      `providers:
  - name: a
    base_url: "\${UNSET_URL}"
    api_key: k
  - name: b
    base_url: api.groq.com/openai/v1
    api_key: k
`,
    );
    const at = escapeRegExp(path);
    for (const args of [
      ["check", "--config", path],
      ["--config", path],
    ]) {
      const result = await runCli(args, { cwd: dir });
      const lines = configErrorLines(result, path);
      assert.equal(lines.length, 2, result.stderr);
      assert.match(
        lines[0] ?? "",
        new RegExp(
          `^${at}:3 providers\\.0\\.base_url: not an http\\(s\\) URL .*environment variable UNSET_URL is not set$`,
        ),
      );
      assert.match(lines[1] ?? "", new RegExp(`^${at}:6 providers\\.1\\.base_url: not an http\\(s\\) URL`));
      assert.doesNotMatch(result.stderr, /credentials/);
    }
  });

  test("a config file that does not exist", async (t) => {
    const dir = tempDir(t);
    const path = join(dir, "missing.yaml");
    const result = await runCli(["--config", path], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`${escapeRegExp(path)}: file not found`));
  });
});

describe("`serve` as a process", () => {
  test("reads keys from .env, the real environment wins over .env, and SIGTERM stops it cleanly", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const dir = tempDir(t);
    writeFileSync(join(dir, ".env"), "ALPHA_API_KEY=sk-alpha-from-dotenv\nBETA_API_KEY=sk-beta-from-dotenv\n");
    const configPath = join(dir, "config.yaml");
    writeFileSync(
      configPath,
      `server:
  port: 0
  host: 127.0.0.1
  log_level: info
providers:
${keyedProviders(alpha, beta)}discovery:
  cache_dir: ${JSON.stringify(join(dir, "cache"))}
state:
  path: ${JSON.stringify(join(dir, "state.db"))}
`,
    );
    const child = spawn(process.execPath, ["--import", EXIT_WITH_PARENT, MAIN, "serve", "--config", configPath], {
      cwd: dir,
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", BETA_API_KEY: "sk-beta-from-env" },
    });
    const exited = new Promise<number | null>((resolveExit) => child.on("exit", (code) => resolveExit(code)));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no listening line in time:\n${stdout}\n${stderr}`)),
        CHILD_TIMEOUT_MS,
      );
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /listening on (http:\/\/[^\s"]+?)\/v1/.exec(stdout);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolveUrl(match[1]);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code} before listening:\n${stdout}\n${stderr}`));
      });
    });

    for (const model of ["alpha-model", "beta-model"]) {
      const response = await request(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, messages: HELLO }),
      });
      assert.equal(response.statusCode, 200, await response.body.text());
      await response.body.dump();
    }
    assert.equal(chatRequests(alpha)[0]?.headers.authorization, "Bearer sk-alpha-from-dotenv");
    assert.equal(chatRequests(beta)[0]?.headers.authorization, "Bearer sk-beta-from-env");
    assert.match(stdout, /provider \\"gamma\\" \([^)]+:\d+\) skipped[^\n]*GAMMA_API_KEY/);

    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
  });
});
