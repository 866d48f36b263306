// A/B of gateway footprint: starts each checkout's bin/llm-gateway.js in turn (pinned to core 1), the bench's config,
// ready = first /health 200 (polled every 5 ms with the key), idle = VmRSS 1 s later; optional load with wrk on core 0.
// CPU is every live thread's run time from /proc/<pid>/task/*/schedstat (ns; utime+stime comes in 10 ms ticks, which
// hid differences of a few ms until bench/README.md section 34). --first-request: then one chat request (JSON), and a
// second, each timed (wall ms, CPU ms): what a first request pays for what a start leaves for later.
// usage: node bench/footprint-ab.ts --rounds N [--load S] [--first-request] [--env K=V] [--node-arg A] [--no-snapshot]
//   dirA dirB ...
// Each checkout starts as its `npm start` does: from its start-up snapshot (`node --snapshot-blob dist/snapshot.blob`,
// after its `bin/build.js --if-stale`, npm's prestart; bench/README.md section 36), or without one for a checkout
// from before it. --no-snapshot starts every checkout without it (`node bin/llm-gateway.js`, its bundle or sources);
// a variant `dir::none` that one alone, and `dir::blob` from the given blob. A variant's own Node flags and environment
// follow `|` (`dir|--v8-pool-size=2|MALLOC_ARENA_MAX=2`, ab-helpers.ts `variantExtras`): one checkout, several starts.
import { type ChildProcess, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import {
  BODIES as bodies,
  cpuMs,
  HEADERS,
  median,
  npmStartNodeArgs,
  startGateway,
  startMock,
  statusKb,
  variantExtras,
  wrk as wrkIn,
} from "./ab-helpers.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    load: { type: "string", default: "0" },
    env: { type: "string", multiple: true, default: [] },
    smaps: { type: "boolean", default: false },
    "first-request": { type: "boolean", default: false },
    "node-arg": { type: "string", multiple: true, default: [] },
    "no-snapshot": { type: "boolean", default: false },
  },
});
const rounds = Number(values.rounds);
const loadS = Number(values.load);
const extraEnv = Object.fromEntries(
  (values.env as string[]).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const work = mkdtempSync(join(tmpdir(), "footprint-ab-"));

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

const firstDir = variantExtras(positionals[0] as string).base.split("::")[0] as string;
/** Each variant's Node flags before bin/llm-gateway.js: from its snapshot as `npm start`, built before any round. */
const startArgs = new Map(
  positionals.map((variant) => {
    const { base } = variantExtras(variant);
    const [dir = base, blob] = base.split("::");
    if (blob === "none" || (blob === undefined && values["no-snapshot"])) return [variant, []];
    return [variant, blob === undefined ? npmStartNodeArgs(dir) : ["--snapshot-blob", blob]];
  }),
);
const { port: mockPort, process: mock } = await startMock(firstDir);
const wrk = (port: number, body: string, conns: number, seconds: number) => wrkIn(work, port, body, conns, seconds);

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
// The gateway being measured: stopped with this script, also when a start times out or the run is interrupted (a
// thrown error left it running, holding a core).
let current: ChildProcess | undefined;
process.on("exit", () => current?.kill("SIGKILL"));
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

async function one(variant: string): Promise<Row> {
  const extras = variantExtras(variant);
  const [dir = extras.base] = extras.base.split("::");
  const vdir = join(work, variant.replaceAll(/[/:|=]/g, "_"));
  const started = await startGateway({
    dir,
    variantDir: vdir,
    mockPort,
    env: { ...extraEnv, ...extras.env },
    nodeArgs: [...(values["node-arg"] as string[]), ...extras.nodeArgs, ...(startArgs.get(variant) ?? [])],
  });
  const { pid, port, child } = started;
  current = child;
  const ready = started.readyMs;
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
const baseRows = results.get(positionals[0] as string) ?? [];
for (const [dir, rows] of results) {
  if (dir === positionals[0]) continue;
  const paired = (k: keyof Row) => {
    const ds = rows.flatMap((row, i) => {
      const a = baseRows[i]?.[k];
      const b = row[k];
      return a === undefined || b === undefined ? [] : [b - a];
    });
    return `${k} ${median(ds).toFixed(1)} (${Math.min(...ds).toFixed(1)}..${Math.max(...ds).toFixed(1)}, ${ds.filter((d) => d < 0).length}/${ds.length} lower)`;
  };
  const loaded = rows.some((row) => row.loaded !== undefined) ? `; ${paired("loaded")}` : "";
  process.stdout.write(`${dir} - ${positionals[0]} paired: ${paired("cpu")}; ${paired("idle")}${loaded}\n`);
}
mock.kill("SIGKILL");
process.exit(0);
