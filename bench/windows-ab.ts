// A/B of CPU per request: gateways side by side on core 1 (the bench's config, each from its checkout's
// bin/llm-gateway.js: the bundle when fresh, else the sources), loaded in turn by `wrk` on core 0 in short windows,
// the order rotated every window, so that a shared machine's drift lands on all of them. CPU per request is the
// gateway's every thread's run time over the window (schedstat) divided by the requests `wrk` completed; each
// variant is compared with the first by the median of the per-window ratios (bench/README.md, sections 8 and 35).
// A variant is a checkout directory, optionally `@` a YAML file appended to its config (`dir@lean.yaml`), then its own
// Node flags and environment after `|` (`dir|--v8-pool-size=2|MALLOC_ARENA_MAX=2`, ab-helpers.ts `variantExtras`).
// With --threads, also each kind of thread's CPU per request (the main thread, V8's workers, the thread pool).
// usage: node bench/windows-ab.ts [--windows N] [--window-s S] [--workload stream|json] [--connections C] [--threads]
//        variant...
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  BODIES,
  cpuMs,
  cpuMsByThread,
  median,
  type StartedGateway,
  startGateway,
  startMock,
  variantExtras,
  wrk,
} from "./ab-helpers.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    windows: { type: "string", default: "12" },
    "window-s": { type: "string", default: "3" },
    workload: { type: "string", default: "stream" },
    connections: { type: "string" },
    threads: { type: "boolean", default: false },
  },
});
const workload = values.workload === "json" ? "json" : "stream";
const body = BODIES[workload];
// Issue 14 states its stream goal at 32 connections and its JSON goals at 64 (as bench/gateway.ts loads them).
const connections = Number(values.connections ?? (workload === "json" ? 64 : 32));
const windowS = Number(values["window-s"]);
const work = mkdtempSync(join(tmpdir(), "windows-ab-"));
const variants = positionals.map((label, index) => {
  const { base: text, nodeArgs, env } = variantExtras(label);
  const at = text.indexOf("@");
  const dir = at === -1 ? text : text.slice(0, at);
  return { label, dir, extraYaml: at === -1 ? "" : readFileSync(text.slice(at + 1), "utf8"), index, nodeArgs, env };
});
if (variants.length < 2) throw new Error("usage: node bench/windows-ab.ts [options] variantA variantB ...");

// Exits, so that the mock and the gateways are stopped (ab-helpers.ts): the default end by a signal left them running.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));
const mock = await startMock((variants[0] as { dir: string }).dir);
const gateways: StartedGateway[] = [];
for (const variant of variants) {
  gateways.push(
    await startGateway({
      dir: variant.dir,
      variantDir: join(work, `v${variant.index}`),
      mockPort: mock.port,
      extraYaml: variant.extraYaml,
      nodeArgs: variant.nodeArgs,
      env: variant.env,
    }),
  );
}
process.on("exit", () => {
  for (const gateway of gateways) gateway.child.kill("SIGKILL");
});

interface WindowResult {
  readonly cpuUs: number;
  readonly rps: number;
  /** CPU µs per request by kind of thread (with --threads). */
  readonly threads: Map<string, number>;
}

/** One window of one gateway: CPU µs per request and requests per second. */
function window(gateway: StartedGateway, seconds: number): WindowResult {
  const before = cpuMs(gateway.pid);
  const threadsBefore = values.threads ? cpuMsByThread(gateway.pid) : new Map<string, number>();
  const requests = Math.max(1, wrk(work, gateway.port, body, connections, seconds));
  const threads = new Map<string, number>();
  if (values.threads) {
    for (const [kind, ms] of cpuMsByThread(gateway.pid)) {
      threads.set(kind, ((ms - (threadsBefore.get(kind) ?? 0)) * 1000) / requests);
    }
  }
  return { cpuUs: ((cpuMs(gateway.pid) - before) * 1000) / requests, rps: requests / seconds, threads };
}

for (const gateway of gateways) window(gateway, 2); // warm-up: the optimizing compilers reach the request path
const rows: WindowResult[][] = variants.map(() => []);
const windows = Number(values.windows);
for (let index = 0; index < windows; index++) {
  const order = variants.map((_, at) => (at + index) % variants.length);
  const line: string[] = [];
  for (const at of order) {
    const result = window(gateways[at] as StartedGateway, windowS);
    (rows[at] as WindowResult[]).push(result);
    line.push(`${at}: ${result.cpuUs.toFixed(0)} µs ${result.rps.toFixed(0)}/s`);
  }
  process.stderr.write(`window ${index}  ${line.join("  ")}\n`);
}
const base = rows[0] as WindowResult[];
for (const variant of variants) {
  const own = rows[variant.index] as WindowResult[];
  const cpu = own.map((row) => row.cpuUs);
  let text = `${variant.label}: ${workload}, CPU µs per request median ${median(cpu).toFixed(1)} (${Math.min(...cpu).toFixed(0)}-${Math.max(...cpu).toFixed(0)}), req/s median ${median(own.map((row) => row.rps)).toFixed(0)}`;
  if (variant.index > 0) {
    const ratios = own.map((row, at) => row.cpuUs / (base[at] as { cpuUs: number }).cpuUs);
    const rpsRatios = own.map((row, at) => row.rps / (base[at] as { rps: number }).rps);
    text += `; against the first: CPU per request ${median(ratios).toFixed(3)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}, ${ratios.filter((ratio) => ratio < 1).length}/${ratios.length} lower), req/s ${median(rpsRatios).toFixed(3)}x`;
  }
  if (values.threads) {
    const kinds = [...new Set(own.flatMap((row) => [...row.threads.keys()]))];
    const perKind = kinds.map((kind) => `${kind} ${median(own.map((row) => row.threads.get(kind) ?? 0)).toFixed(1)}`);
    text += `; by thread, µs per request: ${perKind.join(", ")}`;
  }
  process.stdout.write(`${text}\n`);
}
mock.process.kill("SIGKILL");
process.exit(0);
