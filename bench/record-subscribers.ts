// What each finished-request subscriber costs per record, in-process (no HTTP noise): metrics, the request log
// (JSON + redaction + batched appends to its segment files), the dashboard's recent activity, the `routed` log
// line's fields. Each for the record of a JSON chat request and for the record of the bench's stream (16 SSE chunks,
// no usage report), both shaped as the gateway builds them (copied from `/v1/gateway/requests` of a gateway under the
// bench's config).
// Usage: node bench/record-subscribers.ts [records]. Prints µs per record, median of 5 runs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileRequestLogBackend } from "../src/observability/file-request-log.ts";
import { staticLiveState } from "../src/observability/live-state.ts";
import { GatewayMetrics } from "../src/observability/metrics.ts";
import { RecentActivity } from "../src/observability/recent-activity.ts";
import { RequestLog } from "../src/observability/request-log.ts";
import type { RequestRecord } from "../src/observability/request-record.ts";
import { routedLogFields } from "../src/observability/routed-log.ts";

const count = Number(process.argv[2] ?? 20_000);
const clock = { now: () => Date.now() };

type Shape = "json" | "stream";

/**
 * A record as the pipeline leaves it for a chat request answered at the first attempt: JSON (the provider's usage
 * on the attempt and the record), or the bench's stream (a first token on the attempt and the record; no usage,
 * since the mock's stream reports none and the client did not ask for it).
 */
function record(index: number, shape: Shape): RequestRecord {
  const now = Date.now();
  const key = "mock/bench-model";
  const isStream = shape === "stream";
  const tokens = isStream ? 0 : 12;
  return {
    id: `req-bench-${index}`,
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "bench-model",
    isStream,
    startedAtMs: now,
    candidates: [
      { deploymentKey: key, provider: "mock", model: "bench-model", publicName: "bench-model", score: 7.53 },
    ],
    skips: [],
    attempts: [
      {
        provider: "mock",
        model: "bench-model",
        deploymentKey: key,
        role: "primary",
        status: 200,
        outcome: "success",
        reason: "ok",
        startedAtMs: now,
        headersMs: 1,
        ...(isStream ? { firstTokenMs: 1, durationMs: 3 } : { durationMs: 1, tokensIn: tokens, tokensOut: tokens }),
      },
    ],
    continuations: [],
    queueWaitMs: 0,
    servedBy: { deploymentKey: key, provider: "mock", model: "bench-model", cost: "paid" },
    tokensIn: tokens,
    tokensOut: tokens,
    status: 200,
    outcome: "success",
    timeToHeadersMs: 2,
    ...(isStream ? { timeToFirstTokenMs: 2, durationMs: 4 } : { durationMs: 2 }),
  };
}

const live = staticLiveState([], { modelNames: ["bench-model"], nowMs: () => Date.now() });
const dir = mkdtempSync(join(tmpdir(), "bench-subscribers-"));

const SHAPES: readonly Shape[] = ["json", "stream"];

/** The median of five runs per shape, the shapes' runs interleaved (drift on a shared machine lands on both). */
async function perShape(run: (shape: Shape) => Promise<number>): Promise<Record<Shape, number>> {
  const runs: Record<Shape, number[]> = { json: [], stream: [] };
  for (let index = 0; index < 5; index++) {
    for (const shape of SHAPES) runs[shape].push(await run(shape));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[2] as number;
  return { json: median(runs.json), stream: median(runs.stream) };
}

function report(name: string, perRecord: Record<Shape, number>): void {
  const figures = SHAPES.map((shape) => `${shape} ${perRecord[shape].toFixed(2)}`).join("  ");
  process.stdout.write(`${name.padEnd(40)} ${figures} µs per record\n`);
}

async function measure(name: string, make: () => { observe: (r: RequestRecord) => void; done?: () => Promise<void> }) {
  const perRecord = await perShape(async (shape) => {
    const subscriber = make();
    const records = Array.from({ length: count }, (_, index) => record(index, shape));
    const started = process.cpuUsage();
    for (const item of records) subscriber.observe(item);
    await subscriber.done?.();
    const used = process.cpuUsage(started);
    return (used.user + used.system) / count;
  });
  report(name, perRecord);
}

await measure("metrics (prom-client)", () => new GatewayMetrics(live, { includeProcessMetrics: false }));
let dbIndex = 0;
/** A request log in new segment files, with the default retention. */
function newRequestLog(): RequestLog {
  return new RequestLog(new FileRequestLogBackend(join(dir, `log-${dbIndex++}.db`)), {
    clock,
    maxEntries: 10_000,
    maxAgeMs: 86_400_000,
    isContentKept: false,
    secrets: () => ["bench-upstream-key"],
  });
}
await measure("request log, files, incl. flush", () => {
  const log = newRequestLog();
  return { observe: log.observe, done: () => log.close() };
});
await measureFullLog();
await measure("recent activity (dashboard)", () => new RecentActivity(clock));
let sink = 0;
await measure("routed log fields + JSON", () => ({
  observe: (item) => {
    sink += JSON.stringify(routedLogFields(item)).length;
  },
}));
if (sink < 0) process.stdout.write("\n");

/**
 * The request log as a long-running gateway has it: already full (max_entries rows), written every 750 records (a
 * 0.5 s batch at 1,500 req/s), each write applying retention. The measurement above starts from an empty file and
 * writes once, so it never pays for retention.
 */
async function measureFullLog(): Promise<void> {
  const batch = 750;
  const perRecord = await perShape(async (shape) => {
    const log = newRequestLog();
    const write = async (records: readonly RequestRecord[]) => {
      for (let index = 0; index < records.length; index++) {
        log.observe(records[index] as RequestRecord);
        if ((index + 1) % batch === 0) await log.flush();
      }
      await log.flush();
    };
    await write(Array.from({ length: 10_000 }, (_, index) => record(index, shape)));
    const records = Array.from({ length: count }, (_, index) => record(10_000 + index, shape));
    const started = process.cpuUsage();
    await write(records);
    const used = process.cpuUsage(started);
    await log.close();
    return (used.user + used.system) / count;
  });
  report("request log, files, full, batches of 750", perRecord);
}
