// The real gateway as a separate OS process (`node src/main.ts --config <tmp yaml>`), for tests where several
// gateways must share nothing but what they are configured to share (e.g. a Redis). It listens on a free
// loopback port, logs JSON lines (kept in `logs`), and is killed when the test ends.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { closeWhenTestEnds } from "./late-start.ts";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MAIN = join(REPO_ROOT, "src", "main.ts");
const EXIT_WITH_PARENT = join(REPO_ROOT, "test", "helpers", "exit-with-parent.ts");
const START_TIMEOUT_MS = 20_000;

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface GatewayProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly pid: number | undefined;
  /** Every JSON log line the process wrote so far. */
  readonly logs: LogLine[];
  /** The config file the process was started with (a test may rewrite it and send SIGHUP). */
  readonly configPath: string;
  /** What the process wrote on stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (null when a signal ended it) once the process has exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Starts `node src/main.ts --config <file>` with `yamlText` (a `server:` block listening on 127.0.0.1:0 with
 * info logs, and a private discovery cache, are added unless present) and waits for its "listening" log line.
 * `preload`: a module the process imports first (`--import`), e.g. to inject a fault. `dotEnv`: the text of a `.env`
 * in its working directory (which it reads at start and at each reload). `configFile`: where the config is written,
 * relative to that directory (default `config.yaml`); `isConfigFlagged: false` starts it without `--config`, so that
 * it finds the file itself (the default path, or LLM_GATEWAY_CONFIG in `dotEnv`).
 */
export async function startGatewayProcess(
  t: TestContext,
  yamlText: string,
  options: {
    readonly preload?: string;
    readonly dotEnv?: string;
    readonly configFile?: string;
    readonly isConfigFlagged?: boolean;
    /**
     * Runs in the process's directory once the config (and `.env`) are written, before the start: e.g. to lay out
     * symlinks. A path it returns is given to `--config` instead of the config file's.
     */
    readonly beforeStart?: (dir: string) => string | undefined;
    /** The entry that runs `serve` (default src/main.ts), e.g. a bundle's dist/main.js. */
    readonly main?: string;
  } = {},
): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-process-"));
  let text = yamlText;
  if (!/^server:/m.test(text)) text = `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\n${text}`;
  if (!/^discovery:/m.test(text)) text = `${text}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(dir, "cache"))}\n`;
  const configPath = join(dir, options.configFile ?? "config.yaml");
  mkdirSync(dirname(configPath), { recursive: true });
  writeFileSync(configPath, text);
  if (options.dotEnv !== undefined) writeFileSync(join(dir, ".env"), options.dotEnv);
  const configArgument = options.beforeStart?.(dir) ?? configPath;
  // cwd is the temp dir so that no .env of the repository leaks into the test.
  const preload = options.preload === undefined ? [] : ["--import", options.preload];
  const child = spawn(
    process.execPath,
    [
      "--import",
      EXIT_WITH_PARENT,
      ...preload,
      options.main ?? MAIN,
      "serve",
      ...(options.isConfigFlagged === false ? [] : ["--config", configArgument]),
    ],
    {
      cwd: dir,
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
    },
  );
  const logs: LogLine[] = [];
  let stderr = "";
  let pending = "";
  let onListening: ((url: string) => void) | undefined;
  child.stdout?.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue;
      }
      logs.push(parsed);
      const match = /listening on (http:\/\/\S+?)\/v1/.exec(parsed.msg ?? "");
      if (match?.[1] !== undefined) onListening?.(match[1]);
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const killed = once(child, "exit");
    child.kill("SIGKILL");
    await killed;
  };
  await closeWhenTestEnds(t, stop);
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`gateway did not start within ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    onListening = (found) => {
      clearTimeout(timer);
      resolveUrl(found);
    };
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening: ${stderr}`));
    });
  });
  return { url, pid: child.pid, logs, configPath, stderr: () => stderr, exited, stop };
}
