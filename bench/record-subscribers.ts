// What each finished-request subscriber costs per record, in-process (no HTTP noise): metrics, the request log
// (JSON + redaction + batched appends to its segment files), the dashboard's recent activity, the `routed` log
// line's fields.
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

/** A record as the pipeline leaves it for a JSON chat request answered at the first attempt. */
function record(index: number): RequestRecord {
  const now = Date.now();
  const key = "mock/bench-model";
  return {
    id: `req-bench-${index}`,
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "bench-model",
    isStream: false,
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
        durationMs: 1,
        tokensIn: 12,
        tokensOut: 12,
      },
    ],
    continuations: [],
    queueWaitMs: 0,
    servedBy: { deploymentKey: key, provider: "mock", model: "bench-model", cost: "paid" },
    tokensIn: 12,
    tokensOut: 12,
    status: 200,
    outcome: "success",
    timeToHeadersMs: 2,
    durationMs: 2,
  };
}

const live = staticLiveState([], { modelNames: ["bench-model"], nowMs: () => Date.now() });
const dir = mkdtempSync(join(tmpdir(), "bench-subscribers-"));

async function measure(name: string, make: () => { observe: (r: RequestRecord) => void; done?: () => Promise<void> }) {
  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    const subscriber = make();
    const records = Array.from({ length: count }, (_, index) => record(index));
    const started = process.cpuUsage();
    for (const item of records) subscriber.observe(item);
    await subscriber.done?.();
    const used = process.cpuUsage(started);
    runs.push((used.user + used.system) / count);
  }
  runs.sort((a, b) => a - b);
  process.stdout.write(`${name.padEnd(40)} ${(runs[2] as number).toFixed(2)} µs per record\n`);
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
  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    const log = newRequestLog();
    const write = async (records: readonly RequestRecord[]) => {
      for (let index = 0; index < records.length; index++) {
        log.observe(records[index] as RequestRecord);
        if ((index + 1) % batch === 0) await log.flush();
      }
      await log.flush();
    };
    await write(Array.from({ length: 10_000 }, (_, index) => record(index)));
    const records = Array.from({ length: count }, (_, index) => record(10_000 + index));
    const started = process.cpuUsage();
    await write(records);
    const used = process.cpuUsage(started);
    await log.close();
    runs.push((used.user + used.system) / count);
  }
  runs.sort((a, b) => a - b);
  process.stdout.write(
    `${"request log, files, full, batches of 750".padEnd(40)} ${(runs[2] as number).toFixed(2)} µs per record\n`,
  );
}
