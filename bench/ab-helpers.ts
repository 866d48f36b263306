// What the A/B scripts share (bench/footprint-ab.ts: starts one gateway at a time; bench/windows-ab.ts: gateways side
// by side, loaded in turn): the bench's mock on the load core, each gateway's config, readiness, CPU of a process, and
// `wrk` runs on the load core.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, get } from "node:http";
import { join } from "node:path";

export const KEY = "bench-client-key";
export const HEADERS = { "content-type": "application/json", authorization: `Bearer ${KEY}` };
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Say hello in one short sentence." },
];
/** The bench's two workloads: a small chat completion, and the same streamed (16 SSE chunks from the mock). */
export const BODIES = {
  json: JSON.stringify({ model: "bench-model", messages, max_tokens: 32 }),
  stream: JSON.stringify({ model: "bench-model", messages, max_tokens: 32, stream: true }),
};
export const COMPILE_CACHE = process.env.NODE_COMPILE_CACHE ?? join(process.env.TMPDIR ?? "/tmp", "node-compile-cache");

export function statusKb(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? Number.NaN);
}

/** Every live thread's run time, ms (schedstat's ns; utime+stime comes in 10 ms ticks). */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read: its time is gone with it (as for threads ended before).
    }
  }
  return ns / 1e6;
}

/**
 * Run time per kind of thread, ms: `main` (the event loop), and the others by name (`V8Worker`: the garbage
 * collector's and compilers' helpers; `libuv-worker`: the thread pool, e.g. the request log's appends).
 */
export function cpuMsByThread(pid: number): Map<string, number> {
  const byKind = new Map<string, number>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const kind = task === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
      byKind.set(kind, (byKind.get(kind) ?? 0) + ns / 1e6);
    } catch {
      // Gone between the listing and the read (see cpuMs).
    }
  }
  return byKind;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const a = s.address();
  const p = typeof a === "object" && a !== null ? a.port : 0;
  s.close();
  await once(s, "close");
  return p;
}

export function health(port: number): Promise<number> {
  return new Promise((resolve) => {
    const r = get({ host: "127.0.0.1", port, path: "/health", headers: HEADERS, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on("error", () => resolve(0));
    r.on("timeout", () => r.destroy());
  });
}

/** The bench's mock upstream from `dir`, on core 0; resolves to its port. Killed when this process exits. */
export function startMock(dir: string): Promise<{ port: number; process: ChildProcess }> {
  return startBenchChild("0", join(dir, "bench/mock-upstream.ts"), {});
}

/**
 * The bench's bare proxy from `dir` (`bench/bare-proxy.ts`: node:http in, undici out, the answer piped back) on core 1
 * in front of the mock at `mockPort`, the floor issue 14's ratio goals are read against. Killed when this process exits.
 */
export function startBareProxy(dir: string, mockPort: number): Promise<{ port: number; process: ChildProcess }> {
  return startBenchChild("1", join(dir, "bench/bare-proxy.ts"), {
    BENCH_UPSTREAM_ORIGIN: `http://127.0.0.1:${mockPort}`,
  });
}

/** A bench script pinned to `core` that prints `{"port":N}` once listening; resolves to that port. */
async function startBenchChild(
  core: string,
  script: string,
  env: NodeJS.ProcessEnv,
): Promise<{ port: number; process: ChildProcess }> {
  const child = spawn("taskset", ["-c", core, process.execPath, script], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env },
  });
  process.on("exit", () => child.kill("SIGKILL"));
  const port: number = await new Promise((resolve, reject) => {
    let buf = "";
    child.once("exit", (code) => reject(new Error(`${script} exited (${code}) before it listened`)));
    child.stdout?.setEncoding("utf8").on("data", (t: string) => {
      buf += t;
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
  });
  return { port, process: child };
}

/** `wrk` on core 0 for `seconds`; the requests it completed. */
export function wrk(workDir: string, port: number, body: string, conns: number, seconds: number): number {
  const script = join(workDir, `wrk-${conns}-${body.length}.lua`);
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = [==[${body}]==]`,
      ...Object.entries(HEADERS).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
      'done = function(s, l, r) io.write(string.format("RESULT %d %d\\n", s.requests, s.errors.status + s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout)) end',
    ].join("\n"),
  );
  const out = spawnSync(
    "taskset",
    [
      "-c",
      "0",
      "wrk",
      "-t1",
      `-c${conns}`,
      `-d${seconds}s`,
      "--timeout",
      "10s",
      "-s",
      script,
      `http://127.0.0.1:${port}/v1/chat/completions`,
    ],
    { encoding: "utf8" },
  ).stdout;
  const m = /RESULT (\d+) (\d+)/.exec(out);
  if (m?.[2] !== "0") process.stderr.write(`wrk errors: ${m?.[2]}\n`);
  return Number(m?.[1] ?? 0);
}

/**
 * The Node flags `npm start` gives checkout `dir`'s gateway: `--snapshot-blob dist/snapshot.blob`, after its
 * `bin/build.js --if-stale --quiet` (npm's prestart) has made sure dist/ and that blob are ones this Node can start
 * (Node exits on a missing blob or another Node's). None for a checkout from before the start-up snapshot (no
 * bin/build-snapshot.js): `npm start` ran bin/llm-gateway.js without one there.
 */
export function npmStartNodeArgs(dir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (!existsSync(join(dir, "bin", "build-snapshot.js"))) return [];
  const built = spawnSync(process.execPath, [join(dir, "bin", "build.js"), "--if-stale", "--quiet"], {
    cwd: dir,
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (built.status !== 0) throw new Error(`${dir}: bin/build.js --if-stale failed (${built.status})`);
  return ["--snapshot-blob", join(dir, "dist", "snapshot.blob")];
}

export interface StartedGateway {
  readonly pid: number;
  readonly port: number;
  readonly child: ChildProcess;
  /** From spawn to the first `/health` 200, ms. */
  readonly readyMs: number;
}

/**
 * `dir`'s bin/llm-gateway.js (its bundle when fresh, else its sources) on core 1 with the bench's config, its files
 * under `variantDir`; `extraYaml` is appended to the config (e.g. `request_log: { enabled: false }`). `nodeArgs` go
 * before the script: `npmStartNodeArgs(dir)` starts it as `npm start` does, from its start-up snapshot.
 */
export async function startGateway(options: {
  readonly dir: string;
  readonly variantDir: string;
  readonly mockPort: number;
  readonly extraYaml?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly nodeArgs?: readonly string[];
}): Promise<StartedGateway> {
  const { dir, variantDir, mockPort } = options;
  const port = await freePort();
  mkdirSync(variantDir, { recursive: true });
  const cfg = join(variantDir, "gateway.yaml");
  writeFileSync(
    cfg,
    `server:\n  host: 127.0.0.1\n  port: ${port}\n  log_level: warn\n  api_keys: [${KEY}]\nproviders:\n  - name: mock\n    base_url: http://127.0.0.1:${mockPort}/v1\n    api_key: bench-upstream-key\n    models:\n      bench-model: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(variantDir, "cache"))}\nstate:\n  path: ${JSON.stringify(join(variantDir, `state-${port}.db`))}\n${options.extraYaml ?? ""}`,
  );
  const logFd = openSync(join(variantDir, "gateway.log"), "w");
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE };
  for (const n of ["PORT", "HOST", "ALLOWED_BEARER_TOKENS", "LLM_GATEWAY_CONFIG", "NODE_OPTIONS"]) delete env[n];
  Object.assign(env, options.env ?? {});
  const t0 = performance.now();
  const child = spawn(
    "taskset",
    [
      "-c",
      "1",
      process.execPath,
      ...(options.nodeArgs ?? []),
      join(dir, "bin/llm-gateway.js"),
      "serve",
      "--config",
      cfg,
    ],
    { cwd: variantDir, env, stdio: ["ignore", logFd, "inherit"] },
  );
  closeSync(logFd);
  const pid = child.pid as number;
  // Stopped with the script, from its spawn: a start that times out, or a script ended (by an error, or a signal its
  // script turns into an exit) while the gateway starts, left it running on the gateway core.
  const stop = (): void => {
    child.kill("SIGKILL");
  };
  process.on("exit", stop);
  child.once("exit", () => process.off("exit", stop));
  const deadline = Date.now() + 60000; // generous: other sessions share the two cores (a start took 9 s at load average 14)
  while ((await health(port)) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) {
      stop();
      throw new Error(`not ready: ${dir}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { pid, port, child, readyMs: performance.now() - t0 };
}

/**
 * A variant's own Node flags and environment, after `|` in its text (`dir|--v8-pool-size=2|MALLOC_ARENA_MAX=2`): a
 * part starting with `-` goes on Node's command line, `NAME=value` into the environment. `base` is the text before
 * the first `|` (the checkout, with the script's own suffixes).
 */
export function variantExtras(text: string): {
  readonly base: string;
  readonly nodeArgs: string[];
  readonly env: Record<string, string>;
} {
  const [base = text, ...parts] = text.split("|");
  const nodeArgs = parts.filter((part) => part.startsWith("-"));
  const env = Object.fromEntries(
    parts
      .filter((part) => !part.startsWith("-"))
      .map((part) => {
        const equals = part.indexOf("=");
        // Without a name (`FOO`, `=2`), slicing at indexOf's -1 ran the variant with {FO: "FOO"}: a typo measured.
        if (equals < 1) {
          throw new Error(`variant "${text}": "${part}" is neither a Node flag (-...) nor NAME=value`);
        }
        return [part.slice(0, equals), part.slice(equals + 1)];
      }),
  );
  return { base, nodeArgs, env };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}
