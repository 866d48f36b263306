// `bin/llm-gateway.js serve` as a user starts it (a child process), with Node reporting every compile-cache read on
// stderr: for the tests of what a start loads (test/e2e/start-caches.test.ts, test/e2e/bundle.test.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { closeWhenTestEnds } from "./late-start.ts";

const START_TIMEOUT_MS = 20_000;

export interface ServedEntry {
  readonly child: ChildProcess;
  /** The base URL it listens on (without /v1). */
  readonly url: string;
  /** Its stdout so far. */
  stdout(): string;
  /** Node's compile-cache report so far (its stderr). */
  debug(): string;
  /** Stops it (SIGKILL) and returns Node's compile-cache report (its stderr). */
  stop(): Promise<string>;
}

/**
 * Starts `<root>/bin/llm-gateway.js serve --config <configPath>` and resolves once it listens. `nodeArgs` go before
 * the script (`--snapshot-blob dist/snapshot.blob`, as `npm start` passes it).
 */
export async function serveThroughBin(
  t: TestContext,
  root: string,
  configPath: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): Promise<ServedEntry> {
  const script = [join(root, "bin", "llm-gateway.js"), "serve", "--config", configPath];
  const child = spawn(process.execPath, [...nodeArgs, ...script], {
    cwd: root,
    // Node reports every compile-cache read (accepted or rejected) on stderr.
    env: { ...env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  await closeWhenTestEnds(t, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let debug = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    debug += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening in time:\n${stdout}`)), START_TIMEOUT_MS);
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/listening on http/.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${stdout}\n${debug.slice(-2_000)}`));
    });
  });
  const url = /listening on (http:\/\/\S+?)\/v1/.exec(stdout)?.[1] ?? "";
  return {
    child,
    url,
    stdout: () => stdout,
    debug: () => debug,
    stop: async () => {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
      return debug;
    },
  };
}
