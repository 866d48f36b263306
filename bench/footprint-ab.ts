// A/B of gateway footprint: starts each checkout's bin/llm-gateway.js in turn (pinned to core 1), the bench's config,
// ready = first /health 200 (polled every 5 ms with the key), idle = VmRSS 1 s later; optional load with wrk on core 0.
// CPU is every live thread's run time from /proc/<pid>/task/*/schedstat (ns; utime+stime comes in 10 ms ticks, which
// hid differences of a few ms until bench/README.md section 34). --first-request: then one chat request (JSON), and a
// second, each timed (wall ms, CPU ms): what a first request pays for what a start leaves for later.
// usage: node bench/footprint-ab.ts --rounds N [--load S] [--first-request] [--env K=V] [--node-arg A] dirA dirB ...
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, get, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    load: { type: "string", default: "0" },
    env: { type: "string", multiple: true, default: [] },
    smaps: { type: "boolean", default: false },
    "first-request": { type: "boolean", default: false },
    "node-arg": { type: "string", multiple: true, default: [] },
  },
});
const rounds = Number(values.rounds);
const loadS = Number(values.load);
const nodeBin = process.execPath;
const extraEnv = Object.fromEntries(
  (values.env as string[]).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const work = mkdtempSync(join(tmpdir(), "footprint-ab-"));
const compileCache = process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), "node-compile-cache");
const KEY = "bench-client-key";
const HEADERS = { "content-type": "application/json", authorization: `Bearer ${KEY}` };
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Say hello in one short sentence." },
];
const bodies = {
  json: JSON.stringify({ model: "bench-model", messages, max_tokens: 32 }),
  stream: JSON.stringify({ model: "bench-model", messages, max_tokens: 32, stream: true }),
};

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? Number.NaN);
}
function cpuMs(pid: number): number {
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
async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const a = s.address();
  const p = typeof a === "object" && a !== null ? a.port : 0;
  s.close();
  await once(s, "close");
  return p;
}
function health(port: number): Promise<number> {
  return new Promise((resolve) => {
    const r = get({ host: "127.0.0.1", port, path: "/health", headers: HEADERS, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on("error", () => resolve(0));
    r.on("timeout", () => r.destroy());
  });
}

function chat(port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", headers: HEADERS },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    r.on("error", reject);
    r.end(body);
  });
}

const firstDir = positionals[0] as string;
const mock = spawn("taskset", ["-c", "0", nodeBin, join(firstDir, "bench/mock-upstream.ts")], {
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, NODE_COMPILE_CACHE: compileCache },
});
const mockPort: number = await new Promise((resolve) => {
  let buf = "";
  mock.stdout?.setEncoding("utf8").on("data", (t: string) => {
    buf += t;
    const m = /\{"port":(\d+)\}/.exec(buf);
    if (m) resolve(Number(m[1]));
  });
});
process.on("exit", () => mock.kill("SIGKILL"));

function wrk(port: number, body: string, conns: number, seconds: number): number {
  const script = join(work, `wrk-${conns}-${body.length}.lua`);
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

type Row = {
  ready: number;
  cpu: number;
  idle: number;
  loaded?: number;
  hwm?: number;
  cpuPerJson?: number;
  cpuPerStream?: number;
  firstMs?: number;
  firstCpu?: number;
  secondMs?: number;
  secondCpu?: number;
};
const results = new Map<string, Row[]>();

async function one(dir: string): Promise<Row> {
  const port = await freePort();
  const vdir = join(work, dir.replaceAll("/", "_"));
  mkdirSync(vdir, { recursive: true });
  const cfg = join(vdir, "gateway.yaml");
  writeFileSync(
    cfg,
    `server:\n  host: 127.0.0.1\n  port: ${port}\n  log_level: warn\n  api_keys: [${KEY}]\nproviders:\n  - name: mock\n    base_url: http://127.0.0.1:${mockPort}/v1\n    api_key: bench-upstream-key\n    models:\n      bench-model: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(vdir, "cache"))}\nstate:\n  path: ${JSON.stringify(join(vdir, `state-${port}.db`))}\n`,
  );
  const logFd = openSync(join(vdir, "gateway.log"), "w");
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: compileCache };
  for (const n of ["PORT", "HOST", "ALLOWED_BEARER_TOKENS", "LLM_GATEWAY_CONFIG", "NODE_OPTIONS"]) delete env[n];
  Object.assign(env, extraEnv);
  const t0 = performance.now();
  const child: ChildProcess = spawn(
    "taskset",
    [
      "-c",
      "1",
      nodeBin,
      ...(values["node-arg"] as string[]),
      join(dir, "bin/llm-gateway.js"),
      "serve",
      "--config",
      cfg,
    ],
    { cwd: vdir, env, stdio: ["ignore", logFd, "inherit"] },
  );
  closeSync(logFd);
  const pid = child.pid as number;
  const deadline = Date.now() + 20000;
  while ((await health(port)) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`not ready: ${dir}`);
    await sleep(5);
  }
  const ready = performance.now() - t0;
  const cpu = cpuMs(pid);
  await sleep(1000);
  const row: Row = { ready, cpu, idle: statusKb(pid, "VmRSS") };
  if (values["first-request"]) {
    for (const which of ["first", "second"] as const) {
      const c0 = cpuMs(pid);
      const t1 = performance.now();
      const status = await chat(port, bodies.json);
      row[`${which}Ms`] = performance.now() - t1;
      row[`${which}Cpu`] = cpuMs(pid) - c0;
      if (status !== 200) throw new Error(`${which} request: status ${status} (${dir})`);
    }
  }
  if (loadS > 0) {
    wrk(port, bodies.json, 64, 1); // warm-up
    let c0 = cpuMs(pid);
    const nJson = wrk(port, bodies.json, 64, loadS);
    let c1 = cpuMs(pid);
    row.cpuPerJson = ((c1 - c0) * 1000) / nJson;
    c0 = cpuMs(pid);
    const nStream = wrk(port, bodies.stream, 32, loadS);
    c1 = cpuMs(pid);
    row.cpuPerStream = ((c1 - c0) * 1000) / nStream;
    row.loaded = statusKb(pid, "VmRSS");
    row.hwm = statusKb(pid, "VmHWM");
  }
  if (values.smaps) spawnSync("cp", [`/proc/${pid}/smaps`, join(vdir, `smaps-${Date.now()}`)]);
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
  return row;
}

for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? positionals : [...positionals].reverse();
  for (const dir of order) {
    const row = await one(dir);
    (results.get(dir) ?? results.set(dir, []).get(dir))?.push(row);
    process.stderr.write(
      `round ${r} ${dir}: ${JSON.stringify(row, (_k, v) => (typeof v === "number" ? Math.round(v * 10) / 10 : v))}\n`,
    );
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};
for (const [dir, rows] of results) {
  const fmt = (k: keyof Row, d = 0) => {
    const xs = rows.map((x) => x[k]).filter((x): x is number => x !== undefined);
    if (xs.length === 0) return "";
    return `${k} ${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`;
  };
  process.stdout.write(
    `${dir} N=${rows.length}: ${[
      "idle",
      "ready",
      "cpu",
      "loaded",
      "hwm",
      "cpuPerJson",
      "cpuPerStream",
      "firstMs",
      "firstCpu",
      "secondMs",
      "secondCpu",
    ]
      .map((k) => fmt(k as keyof Row))
      .filter(Boolean)
      .join("; ")}\n`,
  );
}
// Paired: the median of each round's difference against the first checkout (rows are kept in round order), which
// removes most of what a busy machine adds to both starts of a round.
const baseRows = results.get(firstDir) ?? [];
for (const [dir, rows] of results) {
  if (dir === firstDir) continue;
  const paired = (k: keyof Row) => {
    const ds = rows.flatMap((row, i) => {
      const a = baseRows[i]?.[k];
      const b = row[k];
      return a === undefined || b === undefined ? [] : [b - a];
    });
    return `${k} ${median(ds).toFixed(1)} (${Math.min(...ds).toFixed(1)}..${Math.max(...ds).toFixed(1)}, ${ds.filter((d) => d < 0).length}/${ds.length} lower)`;
  };
  process.stdout.write(`${dir} - ${firstDir} paired: ${paired("cpu")}; ${paired("idle")}\n`);
}
mock.kill("SIGKILL");
process.exit(0);
