// `serve` without any config file: the real process (`node src/main.ts`) in an empty directory with only a .env.
// Every preset whose key variable is set is enabled, one log line says which and which keys are missing, and a
// preset's base URL can be pointed at a local mock with LLM_GATEWAY_PRESET_<PRESET>_BASE_URL.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { useMock } from "../helpers/e2e.ts";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MAIN = join(REPO_ROOT, "src", "main.ts");
const EXIT_WITH_PARENT = join(REPO_ROOT, "test", "helpers", "exit-with-parent.ts");
const START_TIMEOUT_MS = 20_000;

interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

interface Run {
  readonly dir: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly stderr: () => string;
}

/** `node src/main.ts serve [args]` in a fresh directory holding only `.env`; no inherited keys. */
function run(t: TestContext, dotEnv: string, args: readonly string[] = []): Run {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-no-config-"));
  writeFileSync(join(dir, ".env"), dotEnv);
  const child = spawn(process.execPath, ["--import", EXIT_WITH_PARENT, MAIN, "serve", ...args], {
    cwd: dir,
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
  });
  const logs: LogLine[] = [];
  let stderr = "";
  let pending = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  });
  return { dir, child, logs, stderr: () => stderr };
}

async function listening(started: Run): Promise<string> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const line of started.logs) {
      const match = /listening on (http:\/\/\S+?)\/v1/.exec(line.msg ?? "");
      if (match?.[1] !== undefined) return match[1];
    }
    if (started.child.exitCode !== null) break;
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
  assert.fail(`the gateway did not start: ${started.stderr()}`);
}

async function exitCode(started: Run): Promise<number | null> {
  if (started.child.exitCode !== null) return started.child.exitCode;
  const [code] = (await once(started.child, "exit")) as [number | null];
  return code;
}

describe("serve without a config file", () => {
  test("enables the presets whose keys are set, logs them and the missing keys, serves their models", async (t) => {
    const mock = await useMock(t, { models: [{ id: "llama-3.3-70b-versatile" }, { id: "openai/gpt-oss-20b" }] });
    const started = run(
      t,
      ["GROQ_API_KEY=gsk-from-dotenv", `LLM_GATEWAY_PRESET_GROQ_BASE_URL=${mock.baseUrl}`, "PORT=0", ""].join("\n"),
    );
    const url = await listening(started);

    const presetLine = started.logs.find((line) => (line.msg ?? "").startsWith("no config file"));
    assert.ok(presetLine !== undefined, "no startup line about presets");
    assert.match(
      presetLine.msg ?? "",
      /^no config file \(config\/meta-providers\.yaml\): enabled presets groq; no key for /,
    );
    assert.match(presetLine.msg ?? "", /openrouter \(OPENROUTER_API_KEY\)/);
    assert.match(presetLine.msg ?? "", /gemini \(GEMINI_API_KEY or GOOGLE_API_KEY\)/);
    assert.deepEqual(presetLine.presets, ["groq"]);

    // Discovery went to the mock with the key from .env.
    assert.equal(mock.requests[0]?.headers.authorization, "Bearer gsk-from-dotenv");
    const response = await request(`${url}/v1/models`);
    const listed = ((await response.body.json()) as { data: { id: string; owned_by: string }[] }).data;
    assert.deepEqual(
      listed.filter((entry) => entry.owned_by === "groq").map((entry) => entry.id),
      ["gpt-oss-20b", "llama-3.3-70b"],
    );
  });

  test("stays in the no-config mode until a restart: a config file created later is not read by a reload", async (t) => {
    if (process.platform === "win32") return;
    const mock = await useMock(t, { models: [{ id: "llama-3.3-70b-versatile" }] });
    const started = run(
      t,
      ["GROQ_API_KEY=gsk-from-dotenv", `LLM_GATEWAY_PRESET_GROQ_BASE_URL=${mock.baseUrl}`, "PORT=0", ""].join("\n"),
    );
    const url = await listening(started);
    mkdirSync(join(started.dir, "config"));
    writeFileSync(
      join(started.dir, "config", "meta-providers.yaml"),
      `server:\n  api_keys: [client-key]\nproviders:\n  - name: other\n    base_url: ${mock.baseUrl}\n    api_key: sk-other\n    models:\n      other-model: {}\n`,
    );
    assert.ok(started.child.pid !== undefined);
    process.kill(started.child.pid, "SIGHUP");
    const deadline = Date.now() + 5_000;
    while (
      !started.logs.some((line) => /^config reload/.test(line.msg ?? "") && !/next restart/.test(line.msg ?? ""))
    ) {
      assert.ok(Date.now() < deadline, "the reload was not logged");
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
    const response = await request(`${url}/v1/models`);
    assert.equal(response.statusCode, 200, "no client key is required: the file is not applied");
    const listed = ((await response.body.json()) as { data: { id: string; owned_by: string }[] }).data;
    assert.ok(listed.some((entry) => entry.owned_by === "groq"));
    assert.ok(!listed.some((entry) => entry.owned_by === "other" || entry.id === "other-model"));
    assert.ok(
      started.logs.some((line) => /config file would now be .*meta-providers\.yaml.*next restart/.test(line.msg ?? "")),
      "the file found is named, for the next restart",
    );
  });

  test("with no key at all it says which variables to set and exits 2", async (t) => {
    const started = run(t, "PORT=0\n");
    assert.equal(await exitCode(started), 2);
    assert.match(started.stderr(), /no provider key in the environment or \.env/);
    assert.match(started.stderr(), /groq: GROQ_API_KEY/);
  });

  test("an explicit --config that does not exist is still an error (exit 2)", async (t) => {
    const started = run(t, "GROQ_API_KEY=gsk\nPORT=0\n", ["--config", "missing.yaml"]);
    assert.equal(await exitCode(started), 2);
    assert.match(started.stderr(), /missing\.yaml: file not found/);
  });
});
