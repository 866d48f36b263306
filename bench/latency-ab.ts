// A/B of latency at concurrency 1 (issue 14's first-byte goal: a streamed answer's first byte within 0.3 ms of the
// bare proxy's): gateways side by side on core 1 (the bench's config, each from its checkout's bin/llm-gateway.js, as
// windows-ab.ts starts them), with `--bare` the bench's bare proxy beside them, the bench's mock on core 0 and this
// script, the client, pinned there too. Each window measures every target in turn (the order rotated every window)
// with bench/latency-client.ts, the bench's own raw-socket client: one keep-alive connection, one request at a time,
// for `--window-s` seconds per workload. A target's figure is the median over windows of its per-window p50; a
// comparison is the median of the per-window differences, so a shared machine's drift lands on every target alike.
// usage: node bench/latency-ab.ts [--windows N] [--window-s S] [--workload stream|json|both] [--bare] variant...
//        a variant is a checkout directory, optionally `@` a YAML file appended to its config (`dir@lean.yaml`)
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BODIES, HEADERS, median, startBareProxy, startGateway, startMock, wrk } from "./ab-helpers.ts";
import { measureSequential, percentile, rawPostRequest } from "./latency-client.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    windows: { type: "string", default: "12" },
    "window-s": { type: "string", default: "2" },
    workload: { type: "string", default: "both" },
    bare: { type: "boolean", default: false },
  },
});
type Workload = "json" | "stream";
const workloads: readonly Workload[] =
  values.workload === "json" ? ["json"] : values.workload === "stream" ? ["stream"] : ["stream", "json"];
const windowMs = Number(values["window-s"]) * 1000;
const windows = Number(values.windows);
const work = mkdtempSync(join(tmpdir(), "latency-ab-"));
const variants = positionals.map((text) => {
  const at = text.indexOf("@");
  return {
    label: text,
    dir: at === -1 ? text : text.slice(0, at),
    extraYaml: at === -1 ? "" : readFileSync(text.slice(at + 1), "utf8"),
  };
});
if (variants.length < 1) throw new Error("usage: node bench/latency-ab.ts [options] [--bare] variantA variantB ...");
const firstDir = (variants[0] as { dir: string }).dir;

// The client on the load core, as bench/gateway.ts runs its concurrency-1 client: never on the proxies' core.
spawnSync("taskset", ["-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
const mock = await startMock(firstDir);
interface Target {
  readonly label: string;
  readonly port: number;
  stop(): void;
}
const targets: Target[] = [];
// Registered before the starts: a start that fails (not ready in time on a busy machine) must not leave the targets
// started before it running.
process.on("exit", () => {
  for (const target of targets) target.stop();
  mock.process.kill("SIGKILL");
});
if (values.bare) {
  const bare = await startBareProxy(firstDir, mock.port);
  targets.push({ label: "bare proxy", port: bare.port, stop: () => bare.process.kill("SIGKILL") });
}
for (const [index, variant] of variants.entries()) {
  const gateway = await startGateway({
    dir: variant.dir,
    variantDir: join(work, `v${index}`),
    mockPort: mock.port,
    extraYaml: variant.extraYaml,
  });
  targets.push({ label: variant.label, port: gateway.port, stop: () => gateway.child.kill("SIGKILL") });
}
const CHAT_PATH = "/v1/chat/completions";
/** Every answer checked, as the bench does: a fast error page must never pass for a fast answer. */
const isValid: Record<Workload, (body: string) => boolean> = {
  json: (body) => body.includes('"choices"'),
  stream: (body) => body.endsWith("data: [DONE]\n\n"),
};

/** One run of one target: p50 and p90 of the time to the first body byte (stream) or to the whole answer (JSON). */
async function run(target: Target, workload: Workload, durationMs: number, warmupRequests: number) {
  const samples = await measureSequential({
    port: target.port,
    raw: rawPostRequest(target.port, CHAT_PATH, BODIES[workload], HEADERS),
    warmupRequests,
    durationMs,
    maxRequests: 200_000,
    isValid: (response) => response.status === 200 && isValid[workload](response.body),
  });
  if (samples.errors > 0)
    throw new Error(`${target.label}, ${workload}: ${samples.errors} errors: ${samples.firstError}`);
  const figure = workload === "stream" ? samples.firstByteMs : samples.totalMs;
  return { p50: percentile(figure, 50), p90: percentile(figure, 90), count: figure.length };
}

// Warm-up as the bench's: load at its connection counts until the optimizing compilers reach the request path, then
// sequential requests.
for (const target of targets) {
  wrk(work, target.port, BODIES.json, 64, 2);
  wrk(work, target.port, BODIES.stream, 32, 2);
  for (const workload of workloads) await run(target, workload, 500, 500);
}
const p50s = new Map<string, number[]>();
for (let index = 0; index < windows; index++) {
  const line: string[] = [];
  for (let step = 0; step < targets.length; step++) {
    const target = targets[(step + index) % targets.length] as Target;
    for (const workload of workloads) {
      const result = await run(target, workload, windowMs, 50);
      const key = `${target.label}\u0000${workload}`;
      p50s.set(key, [...(p50s.get(key) ?? []), result.p50]);
      line.push(
        `${target.label} ${workload} p50 ${result.p50.toFixed(3)} p90 ${result.p90.toFixed(3)} (${result.count})`,
      );
    }
  }
  process.stderr.write(`window ${index}: ${line.join("; ")}\n`);
}

const figureName: Record<Workload, string> = { stream: "first byte", json: "whole JSON answer" };
const ms = (value: number): string => value.toFixed(3);
for (const workload of workloads) {
  const base = targets[0] as Target;
  const baseRuns = p50s.get(`${base.label}\u0000${workload}`) ?? [];
  for (const target of targets) {
    const own = p50s.get(`${target.label}\u0000${workload}`) ?? [];
    let text = `${target.label}: ${workload} ${figureName[workload]} p50, median of ${own.length} windows ${ms(median(own))} ms (${ms(Math.min(...own))}-${ms(Math.max(...own))})`;
    if (target !== base) {
      const differences = own.map((value, at) => value - (baseRuns[at] as number));
      text += `; minus ${base.label}: median ${ms(median(differences))} ms (${ms(Math.min(...differences))} to ${ms(Math.max(...differences))}, lower in ${differences.filter((difference) => difference < 0).length}/${differences.length})`;
    }
    process.stdout.write(`${text}\n`);
  }
}
process.exit(0);
