// `serve` and `demo` that cannot start say why in a few lines with README's exit code, never with a stack: a bad
// $PORT or a state.path the OS refuses is a config problem (2), a port in use is 1. And the demo leaves no state.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { type CliResult, MAIN, runCli, tempDir } from "../helpers/cli-process.ts";

/** A loopback port something else listens on until the test ends. */
async function takenPort(t: TestContext): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((resolveClose) => server.close(() => resolveClose())));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

function assertNoStack(result: CliResult): void {
  assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /^llm-gateway: /m, `an unexpected error:\n${result.stderr}`);
}

describe("demo", () => {
  test("--config: exit 2 saying the demo reads no config and how to start with that file (it was ignored)", async (t) => {
    // PORT 0: the old code started the demo; on a free port, not 12345.
    const result = await runCli(["demo", "--config", "mine.yaml"], { cwd: tempDir(t), env: { PORT: "0" } });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      "demo reads no config: it serves two built-in fake providers. To start with mine.yaml: npm start -- --config mine.yaml\n",
    );
  });

  test("a $PORT that is not a port: exit 2 naming environment PORT", async (t) => {
    const result = await runCli(["demo"], { cwd: tempDir(t), env: { PORT: "abc" } });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^Config error \(1 problem\):\nenvironment PORT: not a port number: "abc"\n$/);
    assertNoStack(result);
  });

  test("its port in use: exit 1 saying so and how to start on another port", async (t) => {
    const port = await takenPort(t);
    const result = await runCli(["demo"], { cwd: tempDir(t), env: { PORT: String(port) } });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`^Port ${port} on 127\\.0\\.0\\.1 is already in use .*PORT=${port + 1} npm run demo`),
    );
    assertNoStack(result);
  });
});

describe("serve", () => {
  test("a state.path under a file: exit 2, one problem naming state.path and the OS error", async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, "blocker"), "a file where a folder should be\n");
    const statePath = join(dir, "blocker", "sub", "state.db");
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(
      configPath,
      `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-alpha\n    models: { m: {} }\nstate:\n  path: ${JSON.stringify(statePath)}\n`,
    );
    const result = await runCli(["serve", "--config", configPath], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.trimEnd().split("\n");
    assert.equal(lines[0], "Config error (1 problem):");
    assert.equal(lines.length, 2, result.stderr);
    assert.ok(lines[1]?.startsWith(`${configPath} state.path: cannot open "${statePath}": ENOTDIR`), lines[1]);
    assertNoStack(result);
  });

  test("a state.path whose folder cannot be made (under /proc): exit 2 at once, not a start that spins", async (t) => {
    const dir = tempDir(t);
    const statePath = "/proc/llm-gateway-nope/state.db";
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(
      configPath,
      `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-alpha\n    models: { m: {} }\nstate:\n  path: ${JSON.stringify(statePath)}\n`,
    );
    const result = await runCli(["serve", "--config", configPath], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /state\.path: cannot open "\/proc\/llm-gateway-nope\/state\.db": ENOENT/);
    assertNoStack(result);
  });
});

describe("serve with Redis", () => {
  test("a config problem found while Redis is not answering: exit 2 at once, not when the other connections give up", async (t) => {
    const dir = tempDir(t);
    // A Redis that accepts connections and never answers: each store opened alongside the runtime waits up to 5 s
    // (START_READY_WAIT_MS) for it to be ready, then closes.
    const sockets: Socket[] = [];
    const mute = createServer((socket) => {
      socket.on("error", () => {});
      sockets.push(socket);
    });
    mute.listen(0, "127.0.0.1");
    await once(mute, "listening");
    t.after(() => {
      mute.close();
      for (const socket of sockets) socket.destroy();
    });
    const address = mute.address();
    assert.ok(address !== null && typeof address === "object");
    // Valid at load (the adjustments file is read when the runtime is built): the runtime fails, the stores wait.
    writeFileSync(join(dir, "broken-adjustments.yaml"), "this: is: not: valid\n  - [\n");
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(
      configPath,
      `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-alpha\n    models: { m: {} }\nscoring:\n  adjustments_file: broken-adjustments.yaml\nstate:\n  redis_url: redis://127.0.0.1:${address.port}\n`,
    );
    const child = spawn(process.execPath, [MAIN, "serve", "--config", configPath], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let stderr = "";
    let saidAtMs: number | undefined;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (saidAtMs === undefined && stderr.includes("Config error")) saidAtMs = Date.now();
    });
    const [code] = (await once(child, "exit")) as [number | null];
    const exitedAtMs = Date.now();
    assert.equal(code, 2, stderr);
    assert.match(stderr, /broken-adjustments\.yaml/);
    assert.ok(saidAtMs !== undefined);
    // Before: the process lingered ~7 s after its message, until the stores' waits for Redis ended and they closed.
    // (Well below those 7 s, with room for a loaded machine's exit.)
    assert.ok(exitedAtMs - saidAtMs < 4_500, `exited ${exitedAtMs - saidAtMs} ms after saying why`);
  });
});

describe("demo state", () => {
  test("the demo keeps its state in memory: no data/state.db (or request log) in the folder it ran in", async (t) => {
    const dir = tempDir(t);
    const child = spawn(process.execPath, [MAIN, "demo"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", PORT: "0" },
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const deadline = Date.now() + 20_000;
    let url: string | undefined;
    while (url === undefined) {
      url = /Live dashboard: (http:\/\/\S+)\/dashboard/.exec(stdout)?.[1];
      assert.ok(Date.now() < deadline && child.exitCode === null, `the demo did not start:\n${stdout}`);
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "best", messages: [{ role: "user", content: "Hi" }] }),
    });
    assert.equal(response.status, 200, await response.text());
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
    const data = join(dir, "data");
    assert.deepEqual(existsSync(data) ? readdirSync(data) : [], [], "nothing written under data/");
  });
});
