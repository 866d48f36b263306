// The first five minutes of a new user, run as users run them (child processes): no key, a terminal, a port in
// use, --version, a missing config file, meta models that cannot answer, an unknown route.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import {
  ANSI_ESCAPE,
  hasPseudoTerminal,
  MAIN,
  REPO_ROOT,
  runCli,
  tempDir,
  writeFiles,
} from "../helpers/cli-process.ts";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string })
  .version;

const KEYED_PROVIDERS = `providers:
  - name: groq
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: GROQ_API_KEY
    models:
      llama: {}
  - name: cerebras
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: CEREBRAS_API_KEY
    models:
      llama: {}
state:
  path: ":memory:"
`;

describe("the first five minutes", () => {
  test("no key for any provider: one short block naming the variables, npm run demo and check; exit 2", async (t) => {
    const dir = tempDir(t);
    const path = writeFiles(dir, { "config.yaml": KEYED_PROVIDERS });
    const result = await runCli(["serve", "--config", path], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^No provider is enabled in .*config\.yaml/);
    // Each with the file and line of its entry.
    assert.match(result.stderr, /^ {2}groq \(.*config\.yaml:\d+\): GROQ_API_KEY$/m);
    assert.match(result.stderr, /^ {2}cerebras \(.*config\.yaml:\d+\): CEREBRAS_API_KEY$/m);
    assert.match(result.stderr, /npm run demo/);
    assert.match(result.stderr, /npx llm-gateway check/);
    assert.ok(result.stderr.split("\n").length < 15, result.stderr);
    assert.equal(result.stdout, "", "no JSON warning lines, no `listening`");
    assert.doesNotMatch(result.stderr, /"level"/);
  });

  test("no config file and no key: the message points to npm run demo too", async (t) => {
    const result = await runCli(["serve"], { cwd: tempDir(t), env: { PORT: "0" } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no provider key in the environment or \.env/);
    assert.match(result.stderr, /npm run demo/);
  });

  test("--version and -v print the package version", async (t) => {
    const dir = tempDir(t);
    for (const flag of ["--version", "-v"]) {
      const result = await runCli([flag], { cwd: dir });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `llm-gateway ${PACKAGE_VERSION}\n`);
    }
  });

  test("check without a config file says the file is missing instead of `Config OK`", async (t) => {
    const dir = tempDir(t);
    const result = await runCli(["check"], { cwd: dir, env: { GROQ_API_KEY: "gsk-test" } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^No config file: .*config\/meta-providers\.yaml does not exist/m);
    assert.doesNotMatch(result.stdout, /Config OK/);
    const json = await runCli(["check", "--json"], { cwd: dir, env: { GROQ_API_KEY: "gsk-test" } });
    const parsed = JSON.parse(json.stdout) as { config: string | null; missing_config_file?: string };
    assert.equal(parsed.config, null);
    assert.match(parsed.missing_config_file ?? "", /meta-providers\.yaml$/);
  });

  test("a port in use: one line naming the port and PORT=, exit 1, no stack trace", async (t) => {
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    t.after(() => blocker.close());
    const address = blocker.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "config.yaml": `server:\n  port: ${port}\n  host: 127.0.0.1\n${KEYED_PROVIDERS}`,
    });
    const result = await runCli(["serve", "--config", path], { cwd: dir, env: { GROQ_API_KEY: "gsk-test" } });
    assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? "", new RegExp(`^Port ${port} on 127\\.0\\.0\\.1 is already in use.*PORT=${port + 1}`));
    assert.doesNotMatch(result.stderr, /\n\s+at |node:internal/);
  });

  test("on a terminal the log is readable lines (coloured), not JSON; piped it is JSON", async (t) => {
    const dir = tempDir(t);
    if (!(await hasPseudoTerminal(dir))) {
      t.skip("util-linux `script` is not available to give the gateway a terminal");
      return;
    }
    const mock = await useMock(t);
    const path = writeFiles(dir, {
      "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\nstate:\n  path: ":memory:"\n`,
    });
    const output = await runUntil(t, ["serve", "--config", path], dir, /listening on http/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing ANSI colour codes to read the text.
    const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
    assert.match(plain, /^\d\d:\d\d:\d\d INFO {2}LLM Gateway listening on http:\/\/127\.0\.0\.1:\d+\/v1 /m);
    assert.match(output, ANSI_ESCAPE);
    assert.doesNotMatch(output, /\{"level"/);

    // log.format: json keeps JSON lines even on a terminal.
    const jsonPath = writeFiles(dir, {
      "json.yaml": `server:\n  port: 0\n  host: 127.0.0.1\nlog:\n  format: json\nproviders:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\nstate:\n  path: ":memory:"\n`,
    });
    const jsonOutput = await runUntil(t, ["serve", "--config", jsonPath], dir, /listening on http/);
    assert.match(jsonOutput, /^\{"level":30,.*"msg":"LLM Gateway listening on http/m);

    const piped = await startGatewayProcess(
      t,
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\n`,
    );
    assert.ok(
      piped.logs.some((line) => /listening on/.test(line.msg)),
      "JSON log lines when not a terminal",
    );
  });

  test("unknown routes are logged once per route at warn", async (t) => {
    const mock = await useMock(t);
    const gateway = await startGatewayProcess(
      t,
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\n`,
    );
    for (const path of ["/v1/nope", "/v1/nope", "/v1/nope?x=1", "/v2/other"]) {
      const response = await request(`${gateway.url}${path}`);
      assert.equal(response.statusCode, 404);
      await response.body.text();
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
    const warnings = gateway.logs.filter((line) => /^unknown route/.test(line.msg));
    assert.deepEqual(
      warnings.map((line) => [line.level, line.route]),
      [
        [40, "GET /v1/nope"],
        [40, "GET /v2/other"],
      ],
    );
  });

  test("meta models are listed in /v1/models only when a member is served", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-a
    models:
      m: {}
meta_models:
  best: [m]
  ghost: [not-served-anywhere]
  picky: { min_context: 100000000 }
`,
    );
    const listed = ((await send(gateway, "GET", "/v1/models")).json as { data: { id: string }[] }).data.map(
      (entry) => entry.id,
    );
    assert.ok(listed.includes("best"), listed.join(", "));
    assert.ok(!listed.includes("ghost"), "a meta model with no served member answers 404: not listed");
    assert.ok(!listed.includes("picky"), listed.join(", "));
    assert.ok(listed.includes("m"));
  });
  test("a client's allowed models naming models nothing serves are named in a warning at start", async (t) => {
    const mock = await useMock(t);
    const gateway = await startGatewayProcess(
      t,
      `server:\n  api_keys:\n    - { key: k-ci, name: ci, models: [m, m-typo] }\n    - { key: k-ghost, name: ghost, models: [nowhere, other/m] }\n    - { key: k-fine, name: fine, models: [m] }\nproviders:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\n`,
    );
    const warned = gateway.logs.filter((line) => line.level === 40 && /^client/.test(line.msg)).map((line) => line.msg);
    assert.deepEqual(warned, [
      "client `ci`: no provider serves `m-typo` of its models; the others are allowed",
      "client `ghost`: none of its models (`nowhere`, `other/m`) is served: it may use no model (403)",
    ]);
  });

  test("meta models naming models nothing serves are named in a warning at start and at reload", async (t) => {
    const mock = await useMock(t);
    const config = (meta: string) =>
      `providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-a\n    models:\n      m: {}\n${meta}`;
    const gateway = await startGatewayProcess(
      t,
      config(
        "meta_models:\n  best: [m, mm-typo]\n  ghost: [not-served-anywhere]\n  picky: { min_context: 100000000 }\n  fine: [m]\n",
      ),
    );
    const warned = () =>
      gateway.logs.filter((line) => line.level === 40 && /^meta model/.test(line.msg)).map((line) => line.msg);
    assert.deepEqual(warned(), [
      "meta model `best`: no provider serves `mm-typo`; the others are used",
      "meta model `ghost`: no provider serves any of its models (`not-served-anywhere`); requests for it get 404",
      "meta model `picky`: its filter matches no model the providers serve (requests for it get 404)",
    ]);
    writeFileSync(gateway.configPath, `${readFileSync(gateway.configPath, "utf8").replace("mm-typo", "other-typo")}`);
    process.kill(gateway.pid as number, "SIGHUP");
    const deadline = performance.now() + 5_000;
    while (!warned().some((message) => message.includes("other-typo"))) {
      assert.ok(performance.now() < deadline, `no warning after the reload: ${JSON.stringify(warned())}`);
      await new Promise((resolveWait) => setTimeout(resolveWait, 20));
    }
  });
});

/** Every process below `pid` (Linux /proc; `script` is util-linux anyway), deepest last. */
function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const listed = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (listed !== "") children.push(...listed.split(/\s+/).map(Number));
    }
  } catch {
    children = [];
  }
  for (const child of children) found.push(child, ...descendantsOf(child));
  return found;
}

/** Runs the CLI under a pseudo-terminal until its output matches, then stops it and everything it started. */
async function runUntil(t: TestContext, args: readonly string[], cwd: string, pattern: RegExp): Promise<string> {
  const command = [process.execPath, MAIN, ...args].map((part) => `'${part.replaceAll("'", "'\\''")}'`).join(" ");
  const child: ChildProcess = spawn("script", ["-qec", command, "/dev/null"], {
    cwd,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", TERM: "xterm" },
  });
  const stop = (): void => {
    if (child.exitCode === null && child.pid !== undefined) {
      // `script` runs the gateway in a session of its own (the pseudo-terminal's), outside `script`'s process
      // group: killing the group alone left the gateway running, and the terminal's hangup only makes it reload.
      for (const pid of [...descendantsOf(child.pid), -child.pid]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  };
  t.after(stop);
  let output = "";
  return new Promise((resolveOutput, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no match for ${pattern} in time:\n${output}`));
    }, 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        stop();
        resolveOutput(output);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      if (!pattern.test(output)) reject(new Error(`exited without a match:\n${output}`));
    });
  });
}
