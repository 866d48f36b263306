// Throughput at high concurrency: wrk when installed (C, one thread, so a single core drives the load with room
// to spare), otherwise autocannon (the devDependency; a Node load generator needs more CPU per request, so on
// two cores its figures are lower and closer together — the report says which tool ran).
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export type LoadTool = "wrk" | "autocannon";

export interface LoadRequest {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

export function isWrkInstalled(): boolean {
  const result = spawnSync("wrk", ["--version"], { stdio: "ignore" });
  return result.error === undefined;
}

export interface LoadOptions {
  readonly tool: LoadTool;
  readonly connections: number;
  readonly durationS: number;
  /** Prefix for the command, e.g. `["taskset", "-c", "0"]`. */
  readonly pin: readonly string[];
  readonly workDir: string;
}

export async function runLoad(request: LoadRequest, options: LoadOptions): Promise<LoadResult> {
  return options.tool === "wrk" ? runWrk(request, options) : runAutocannon(request, options);
}

const WRK_MARKER = "BENCH_RESULT";

async function runWrk(request: LoadRequest, options: LoadOptions): Promise<LoadResult> {
  const script = join(options.workDir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  // Lua long brackets: the body needs no escaping as long as it holds no `]==]`.
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = [==[${request.body}]==]`,
      ...Object.entries(request.headers).map(([name, value]) => `wrk.headers["${name}"] = "${value}"`),
      "done = function(summary, latency, requests)",
      "  local e = summary.errors",
      `  io.write(string.format("${WRK_MARKER} %d %d %d %d %f %f\\n", summary.requests, summary.duration,`,
      "    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))",
      "end",
      "",
    ].join("\n"),
  );
  const args = [
    "wrk",
    "-t1",
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    request.url,
  ];
  const output = await runCommand([...options.pin, ...args], options.durationS * 1000 + 30_000);
  const line = output.split("\n").find((text) => text.startsWith(WRK_MARKER));
  if (line === undefined) throw new Error(`wrk printed no result:\n${output}`);
  const [requests, durationUs, socketErrors, statusErrors, p50Us, p99Us] = line.split(" ").slice(1).map(Number);
  return {
    requestsPerSecond: (requests ?? 0) / ((durationUs ?? 1) / 1e6),
    requests: requests ?? 0,
    errors: (socketErrors ?? 0) + (statusErrors ?? 0),
    latencyP50Ms: (p50Us ?? Number.NaN) / 1000,
    latencyP99Ms: (p99Us ?? Number.NaN) / 1000,
  };
}

async function runAutocannon(request: LoadRequest, options: LoadOptions): Promise<LoadResult> {
  const cli = createRequire(import.meta.url).resolve("autocannon");
  // From a file: a large prompt would not fit in one command-line argument.
  const bodyFile = join(options.workDir, `body-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(bodyFile, request.body);
  const args = [
    process.execPath,
    cli,
    "-c",
    String(options.connections),
    "-d",
    String(options.durationS),
    "-m",
    "POST",
    "-i",
    bodyFile,
    ...Object.entries(request.headers).flatMap(([name, value]) => ["-H", `${name}=${value}`]),
    "-j",
    "-n",
    request.url,
  ];
  const output = await runCommand([...options.pin, ...args], options.durationS * 1000 + 30_000);
  const line = output
    .trim()
    .split("\n")
    .reverse()
    .find((text) => text.startsWith("{"));
  if (line === undefined) throw new Error(`autocannon printed no result:\n${output}`);
  const result = JSON.parse(line) as {
    duration: number;
    requests: { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    latency: { p50: number; p99: number };
  };
  return {
    requestsPerSecond: result.requests.total / result.duration,
    requests: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

/** Runs a command to its end (killed after `timeoutMs`) and returns its stdout. */
function runCommand(command: readonly string[], timeoutMs: number): Promise<string> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.reject(new Error("empty command"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (part: string) => {
      stdout += part;
    });
    child.stderr.setEncoding("utf8").on("data", (part: string) => {
      stderr += part;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${file} ${args.slice(0, 3).join(" ")} ... exited with ${code}:\n${stderr}${stdout}`));
    });
  });
}
