// Runs the CLI as users do: `node src/main.ts <command> ...` as a child process in a temp directory, with an
// environment that holds no provider keys unless a test passes them.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const MAIN = join(REPO_ROOT, "src", "main.ts");
const CHILD_TIMEOUT_MS = 30_000;
/**
 * Node's compile cache for the CLI's runs, as bin/llm-gateway.js turns it on for users: without it each run loaded
 * Node's TypeScript stripper and stripped and compiled the ~420 modules a command loads again, about twice the CPU
 * of a cached run (cli-commands.test.ts alone spawns dozens). Node checks an entry against its file's content, so
 * an edited source is never run from a stale one. Kept in the OS temp folder across runs, apart from users' cache.
 */
const COMPILE_CACHE_DIR = join(tmpdir(), "llm-gateway-test-compile-cache");

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd: string;
  /** Added to a minimal environment (PATH and the compile cache only): no keys leak in from the developer's shell. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run under a pseudo-terminal (util-linux `script`), so that stdout is a TTY. stdout and stderr then arrive
   * together in `stdout`, with CRLF line ends.
   */
  readonly isTty?: boolean;
}

/** Runs `node src/main.ts ...args` to its end; rejects if it does not exit within 30 s. */
export function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  const env = {
    PATH: process.env.PATH ?? "",
    NODE_NO_WARNINGS: "1",
    NODE_COMPILE_CACHE: COMPILE_CACHE_DIR,
    ...options.env,
  };
  const [command, commandArgs] =
    options.isTty === true
      ? ["script", ["-qec", [process.execPath, MAIN, ...args].map(shellQuote).join(" "), "/dev/null"]]
      : [process.execPath, [MAIN, ...args]];
  return new Promise((resolveResult, reject) => {
    const child = spawn(command, commandArgs, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`llm-gateway ${args.join(" ")} did not exit in time:\n${stdout}\n${stderr}`));
    }, CHILD_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveResult({ code, stdout, stderr });
    });
  });
}

/** Whether `script` (util-linux) is there to give a child a pseudo-terminal. */
export async function hasPseudoTerminal(cwd: string): Promise<boolean> {
  return new Promise((resolveResult) => {
    const child = spawn("script", ["-qec", "true", "/dev/null"], { cwd, stdio: "ignore" });
    child.on("error", () => resolveResult(false));
    child.on("close", (code) => resolveResult(code === 0));
  });
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** A temp directory removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (name -> content) into `dir`; returns the path of the first one. */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): string {
  let first: string | undefined;
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    writeFileSync(path, content);
    first ??= path;
  }
  if (first === undefined) throw new Error("writeFiles: no files given");
  return first;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting the ESC of ANSI escape codes is the point.
export const ANSI_ESCAPE = /\u001b\[/;
